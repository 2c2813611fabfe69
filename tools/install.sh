#!/usr/bin/env bash
# Installs pdtt from this checkout on a fresh Debian 12 machine:
# dependencies, build, /usr/local/sbin/pdtt-agent (+ pdtt_xdp_user), the
# systemd unit (not enabled), the logrotate file and an example
# /etc/pdtt.conf (never over an existing one). Running it again changes
# nothing that is already current.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${PDTT_BUILD_DIR:-$here/build}
# Beside the binary in /usr/local; /etc/systemd/system stays the admin's.
unitdir=/usr/local/lib/systemd/system

"$here/tools/install-deps.sh"
cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" --target pdtt-agent
cmake --install "$build" --prefix /usr/local >/dev/null
echo "installed: $(command -v pdtt-agent) ($(pdtt-agent --version))"

# put SRC DEST: install a file of ours; -C leaves an identical one untouched.
put() {
    local state=installed
    cmp -s "$1" "$2" && state=current
    install -C -D -m 0644 "$1" "$2"
    printf "%-10s %s\n" "$state:" "$2"
}
put "$here/conf/pdtt-agent.service" "$unitdir/pdtt-agent.service"
put "$here/conf/logrotate.pdtt" /etc/logrotate.d/pdtt
# The config is the admin's once it exists.
if [ -e /etc/pdtt.conf ] || [ -L /etc/pdtt.conf ]; then
    echo "kept:      /etc/pdtt.conf (the example is $here/conf/pdtt.conf)"
else
    install -m 0644 "$here/conf/pdtt.conf" /etc/pdtt.conf
    echo "installed: /etc/pdtt.conf (an example: every key commented out)"
fi

# Without a running systemd (a container, a chroot) there is nothing to reload.
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload || echo "warning: systemctl daemon-reload failed" >&2
fi
cat <<EOF

To run pdtt-agent as a service:
  1. set 'interface = NAME' in /etc/pdtt.conf (ip -br link lists them)
  2. systemctl enable --now pdtt-agent
EOF
if [ ! -d /run/systemd/system ]; then
    echo "(this host does not run systemd: start pdtt-agent another way)"
fi
