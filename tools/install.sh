#!/usr/bin/env bash
# Installs pdtt from this checkout on a fresh Debian 12 machine:
# dependencies, build, and /usr/local/sbin/pdtt-agent (+ pdtt_xdp_user).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${PDTT_BUILD_DIR:-$here/build}

"$here/tools/install-deps.sh"
cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" --target pdtt-agent
cmake --install "$build" --prefix /usr/local >/dev/null
echo "installed: $(command -v pdtt-agent) ($(pdtt-agent --version))"
