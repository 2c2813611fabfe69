#!/usr/bin/env bash
# The unit tests under AddressSanitizer and UndefinedBehaviorSanitizer, and
# the libFuzzer targets (tests/fuzz/) each fuzzed for a bounded time: a
# second build directory (clang, -O1), only the targets those tests need.
# A leak, an overflow, undefined behaviour or a fuzz finding fails it.
# tools/run-tests.sh runs it; usage: sanitize-tests.sh [BUILD_DIR]. No root.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build-asan}

rm -rf "$build"
CC=clang CXX=clang++ cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=Debug \
    -DCMAKE_C_FLAGS_DEBUG="-O1 -g" -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g" -DPDTT_SANITIZE=ON -DPDTT_FUZZ=ON
cmake --build "$build" -j"$(nproc)" --target unit-tests
# abort_on_error: a finding is a crash that ctest (and libFuzzer) sees.
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
# The format test checks sources, not code: the plain build ran it.
ctest --test-dir "$build" -L 'unit|fuzz' -E '^format$' --output-on-failure --timeout 600
