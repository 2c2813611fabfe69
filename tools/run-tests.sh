#!/usr/bin/env bash
# Builds everything from scratch and runs every test (unit and real-kernel).
# Needs root: the integration tests load BPF programs and make namespaces.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${PDTT_BUILD_DIR:-$here/build-test}

if [ "$(id -u)" -ne 0 ]; then
    echo "run-tests.sh: run as root (tests load BPF programs and create namespaces)" >&2
    exit 3
fi
"$here/tools/install-deps.sh"
# bpffs and tracefs may be missing on a fresh machine; the agent needs neither
# but bpftool (used by tests to look for leftovers) is happier with bpffs.
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf || true

rm -rf "$build"
cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build "$build" -j"$(nproc)"
# A root test that fails is run once more: these move real traffic on a
# shared 2-core machine; a test that fails twice fails the run.
ctest --test-dir "$build" --output-on-failure --timeout 600 --repeat until-pass:2 "$@"
# The unit tests again under ASan and UBSan, and the fuzz targets: 5 min
# 12 s more, measured on 2 cores shared with other builds and ccache off
# (3.5 min building, 1 min 50 s testing, 80 s of it fuzzing).
"$here/tools/sanitize-tests.sh" "$build-asan"
