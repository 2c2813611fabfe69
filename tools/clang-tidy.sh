#!/usr/bin/env bash
# clang-tidy, with the checks of .clang-tidy, over the agent's own C++
# (agent/, sinks/, tools/*.cpp) and the headers they include from there and
# from common/, using the compile commands of a configured build. Exits 1 on
# any finding.
#
#   tools/clang-tidy.sh                  every source file
#   tools/clang-tidy.sh --changed [REF]  files changed since the merge base
#                                        with REF (default main), and the
#                                        sources that include a changed
#                                        header (directly or not); all of
#                                        them when .clang-tidy changed
#   tools/clang-tidy.sh FILE...          these source files (paths from the
#                                        top of the repository)
#
# PDTT_BUILD_DIR: the build (default: build); PDTT_TIDY_JOBS: parallel runs
# (default: nproc); PDTT_TIDY_TIMEOUT: seconds per file (default 300).
set -euo pipefail
shopt -s nullglob
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
build=${PDTT_BUILD_DIR:-$here/build}
jobs=${PDTT_TIDY_JOBS:-$(nproc)}
per_file=${PDTT_TIDY_TIMEOUT:-300}

die() {
    echo "clang-tidy.sh: $*" >&2
    exit 2
}

tidy=$(command -v clang-tidy-14 || command -v clang-tidy || true)
[ -n "$tidy" ] || die "no clang-tidy: apt-get install clang-tidy"
[ -f "$build/compile_commands.json" ] ||
    die "no $build/compile_commands.json: configure first (cmake -S . -B build)"
# Sources include the generated skeleton header.
cmake --build "$build" --target pdtt_skel_gen >/dev/null || die "cannot generate the BPF skeleton in $build"

all_sources() {
    ls agent/*.cpp sinks/*.cpp tools/*.cpp
}

# `#include "a.hpp"` or "b.h", for the headers given one a line.
include_pattern() {
    sed 's|.*/||; s|\.|\\.|g' | paste -sd'|' | sed 's|.*|#include "(&)"|'
}

# Sources to check again since the commit $1.
changed_sources() {
    local changed headers grown
    changed=$( (git diff --name-only "$1" -- .clang-tidy agent common sinks tools kern
        git ls-files --others --exclude-standard agent common sinks tools kern) | sort -u)
    if grep -qx .clang-tidy <<<"$changed"; then
        all_sources
        return
    fi
    # Changed headers and the headers that include them, to a fixed point.
    headers=$(grep -E '\.(h|hpp)$' <<<"$changed" || true)
    while [ -n "$headers" ]; do
        grown=$( (echo "$headers"
            grep -lE "$(include_pattern <<<"$headers")" agent/*.h* common/*.h* sinks/*.h* kern/*.h || true) | sort -u)
        [ "$grown" = "$headers" ] && break
        headers=$grown
    done
    all_sources | while read -r src; do
        if grep -qxF "$src" <<<"$changed" ||
            { [ -n "$headers" ] && grep -qE "$(include_pattern <<<"$headers")" "$src"; }; then
            echo "$src"
        fi
    done
}

case ${1:-} in
--changed)
    base=$(git merge-base HEAD "${2:-main}") || die "no merge base with '${2:-main}'"
    mapfile -t files < <(changed_sources "$base")
    ;;
-h | --help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
"") mapfile -t files < <(all_sources) ;;
*) files=("${@#"$here"/}") ;;
esac
if [ ${#files[@]} -eq 0 ]; then
    echo "clang-tidy.sh: no files to check"
    exit 0
fi
for f in "${files[@]}"; do
    grep -qF "\"file\": \"$here/$f\"" "$build/compile_commands.json" || die "$f is not in $build/compile_commands.json"
done

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
echo "clang-tidy.sh: $(basename "$tidy") over ${#files[@]} files, $jobs at a time"
start=$SECONDS
# One log per file, printed whole afterwards: parallel output does not mix.
# shellcheck disable=SC2016 # sh -c expands its own positional parameters
printf '%s\n' "${files[@]}" |
    xargs -P "$jobs" -I{} sh -c 'timeout "$1" "$2" -p "$3" --quiet --warnings-as-errors="*" \
            "$4/$5" >"$6/$(echo "$5" | tr / _).log" 2>&1 ||
        echo "$5 (exit $?)" >>"$6/failed"' sh "$per_file" "$tidy" "$build" "$here" {} "$logs" || true

for f in "${files[@]}"; do
    log="$logs/$(echo "$f" | tr / _).log"
    # Drop clang-tidy's own tallies; keep diagnostics and their context.
    grep -vE "^[0-9]+ (warnings?|errors?) generated\.$|^Error while processing " "$log" || true
done
findings=$(cat "$logs"/*.log | grep -E "^/.*:[0-9]+:[0-9]+: (warning|error): " | sort -u || true)
echo "clang-tidy.sh: $((SECONDS - start)) s"
if [ -s "$logs/failed" ] || [ -n "$findings" ]; then
    if [ -n "$findings" ]; then
        echo "clang-tidy.sh: $(wc -l <<<"$findings") findings:"
        grep -oE "\[[a-z0-9.,-]+\]$" <<<"$findings" | sort | uniq -c | sort -rn
    fi
    # Exit 1 is a finding; 124 is the per-file timeout.
    [ -s "$logs/failed" ] && echo "clang-tidy.sh: not clean: $(sort "$logs/failed" | paste -sd' ')"
    exit 1
fi
echo "clang-tidy.sh: clean"
