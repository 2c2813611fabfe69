#!/usr/bin/env bash
# Checks the shipped systemd unit (least privilege). Steps:
#   verify     systemd-analyze verify has nothing to say about it
#   security   systemd-analyze security: exposure at most 3.5
#   options    the agent accepts the options ExecStart= gives it
#   caps       the agent on lo with only the unit's capabilities (setpriv):
#              bytes attributed, a final report, exit 0
#   sandbox    the agent on lo under the whole unit, started by a real
#              systemd (a root user manager in a private mount namespace, as
#              PID 1 may not be systemd): the sandbox applied, bytes
#              attributed and written below /var/log, a final report, exit 0
#   logrotate  logrotate -d accepts conf/logrotate.pdtt (when installed)
# Usage, as root: tools/check-unit.sh PDTT-AGENT [UNIT-FILE]
# Runs every step and exits 1 if any failed. Needs the lo interface to itself
# (CTest: unit_sandbox, label root, RUN_SERIAL).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
agent=$(realpath "${1:?usage: check-unit.sh PDTT-AGENT [UNIT-FILE]}")
unit=$(realpath "${2:-$here/conf/pdtt-agent.service}")
name=$(basename "$unit")
max_exposure=35   # tenths: at most 3.5
failed=()

die() {
    echo "check-unit.sh: $*" >&2
    exit 1
}
fail() {
    echo "FAIL $1: $2"
    failed+=("$1")
}
pass() { echo "ok   $1: $2"; }

[ "$(id -u)" -eq 0 ] || die "run as root (the agent loads BPF programs)"
[ -x "$agent" ] || die "$agent is not executable"
for t in systemd-analyze setpriv unshare python3 jq; do
    command -v "$t" >/dev/null || die "$t is missing (tools/install-deps.sh installs it)"
done

tmp=$(mktemp -d /tmp/pdtt-check-unit.XXXXXX)
pid=''
trap '[ -z "$pid" ] || kill -KILL "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT

# key NAME: the value of NAME= in the unit (the last one wins, as in systemd).
key() { sed -n "s/^$1=//p" "$unit" | tail -n 1; }
exec_start=$(key ExecStart)
exec_path=${exec_start%% *}
exec_args=${exec_start#"$exec_path"}
# CAP_BPF CAP_NET_ADMIN -> +bpf,+net_admin (setpriv's spelling)
caps=$(key CapabilityBoundingSet | tr 'A-Z ' 'a-z\n' | sed -n 's/^cap_/+/p' | paste -sd, -)
groups=$(key SupplementaryGroups | tr ' ' ',')
[ -n "$caps" ] || die "$unit has no CapabilityBoundingSet="

# Moves a known number of bytes over lo as root; the agent must see them.
traffic() {
    python3 -c '
import socket, time
srv = socket.create_server(("127.0.0.1", 0))
cli = socket.create_connection(srv.getsockname())
peer, _ = srv.accept()
cli.sendall(b"x" * 100000)
got = 0
while got < 100000:
    got += len(peer.recv(65536))
time.sleep(0.2)'
}

# wait_for FILE TEXT: until the agent says it is ready (10 s at most).
wait_for() {
    for _ in $(seq 50); do
        grep -q "$2" "$1" 2>/dev/null && return 0
        sleep 0.2
    done
    return 1
}

# stop PID: SIGINT, and the agent must be gone within 5 s (its own limit: 2 s).
# Sets rc to its exit status, or "hung". Not in a subshell: it waits.
stop() {
    kill -INT "$1" 2>/dev/null || true
    for _ in $(seq 25); do kill -0 "$1" 2>/dev/null || break; sleep 0.2; done
    rc=0
    if kill -0 "$1" 2>/dev/null; then
        kill -KILL "$1"
        rc=hung
    fi
    local status=0
    wait "$1" 2>/dev/null || status=$?
    [ "$rc" = hung ] || rc=$status
}

# root_report FILE: the final JSON report holds root's bytes (-t 60: the
# only report in a run of a few seconds is the final one).
root_report() {
    jq -e -s 'any(.[]; .type == "user_report" and .user == "root" and .tx_bytes >= 100000)' \
        "$1" >/dev/null 2>&1
}

# --- verify: ExecStart must exist; before installation, point it at $agent.
verify_unit=$unit
note="with $exec_path"
if [ ! -x "$exec_path" ]; then
    mkdir "$tmp/verify"
    verify_unit=$tmp/verify/$name
    sed "s|^ExecStart=$exec_path|ExecStart=$agent|" "$unit" >"$verify_unit"
    note="with $agent in place of $exec_path, not installed"
fi
# verify exits 0 on unknown keys and bad values: any output is a failure.
if out=$(systemd-analyze verify --man=no "$verify_unit" 2>&1) && [ -z "$out" ]; then
    pass verify "no warnings ($note)"
else
    fail verify "$out"
fi

# --- security: --threshold makes the exit status say it.
if out=$(systemd-analyze security --offline=true --threshold=$max_exposure "$unit" 2>&1); then
    pass security "$(grep 'Overall exposure level' <<<"$out" | sed 's/.*: //')"
else
    fail security "$(grep 'Overall exposure level' <<<"$out" || echo "$out")"
fi

# --- options: the agent parses every option before acting on --help.
# shellcheck disable=SC2086  # the unit's arguments, split as systemd does
if out=$("$agent" $exec_args --help 2>&1 >/dev/null); then
    pass options "accepted:$exec_args"
else
    fail options "$out"
fi

# --- caps: what the agent can do with the unit's bounding set alone.
mkdir "$tmp/caps"
setpriv ${groups:+--groups "$groups"} --inh-caps=-all --bounding-set=-all,"$caps" \
    "$agent" -c /dev/null -i lo -t 60 -l "$tmp/caps/pdtt" --stdout json \
    >"$tmp/caps/out" 2>"$tmp/caps/err" &
pid=$!
wait_for "$tmp/caps/err" monitoring || true
traffic
sleep 1
stop "$pid"
pid=''
if [ "$rc" = 0 ] && root_report "$tmp/caps/out" && [ -s "$tmp/caps/pdtt-root.log" ]; then
    pass caps "works with ${caps//+/} only${groups:+ (groups $groups)}"
else
    fail caps "exit $rc with ${caps//+/}; stderr: $(tail -n 3 "$tmp/caps/err")"
fi

# --- sandbox: a systemd user manager, as root, runs the unit for real. In a
# private mount namespace it is told it was booted with systemd.
sandbox() {
    set -Eeuo pipefail
    trap 'echo "line $LINENO failed: $BASH_COMMAND"' ERR
    # Globals, for the EXIT trap.
    # The manager's runtime dir holds the notify socket, so the service must
    # see it: not below /tmp (PrivateTmp= hides it), nor /run, which a
    # sandboxed service of this root user manager sees as an empty tmpfs
    # (systemd 252), so READY=1 went nowhere. /var/lib is read-only there,
    # which a datagram to a socket does not mind.
    run=/var/lib/pdtt-check-unit.$$
    prefix=/var/log/pdtt-check-unit.$$
    cgroups=()
    mgr=''
    local h
    # shellcheck disable=SC2317  # run by the EXIT trap
    cleanup() {
        if [ -n "$mgr" ]; then
            kill -TERM "$mgr" 2>/dev/null || true
            for _ in $(seq 50); do kill -0 "$mgr" 2>/dev/null || break; sleep 0.2; done
            kill -KILL "$mgr" 2>/dev/null || true
        fi
        for h in "${cgroups[@]}"; do
            # Whatever the manager left: processes this script started.
            find "$h" -name cgroup.procs -exec cat {} + 2>/dev/null |
                while read -r p; do kill -KILL "$p" 2>/dev/null || true; done
        done
        sleep 0.2
        for h in "${cgroups[@]}"; do
            find "$h" -depth -type d -exec rmdir {} + 2>/dev/null || true
        done
        rm -rf "$run" "$prefix"-*.log
    }
    trap cleanup EXIT

    mount -t tmpfs tmpfs /run/systemd
    mkdir -p /run/systemd/system /run/systemd/inaccessible
    # What PID 1 would have made: the masks of InaccessiblePaths= and friends.
    mkdir -m 0 /run/systemd/inaccessible/dir
    install -m 0 /dev/null /run/systemd/inaccessible/reg
    mkfifo -m 0 /run/systemd/inaccessible/fifo
    mknod -m 0 /run/systemd/inaccessible/chr c 0 0
    mknod -m 0 /run/systemd/inaccessible/blk b 0 0

    mkdir -m 0700 "$run"
    # The binary too must be where the sandbox lets the service see it: a
    # build below /tmp, /var/tmp, /home or /root is hidden there.
    local exe=$agent
    case $agent in
    /tmp/* | /var/tmp/* | /home/* | /root/*)
        exe=$run/pdtt-agent
        cp "$agent" "$exe"
        ;;
    esac
    mkdir -p "$tmp/config/systemd/user/$name.d"
    cp "$unit" "$tmp/config/systemd/user/$name"
    # The unit as shipped but for what it runs and where its output goes.
    cat >"$tmp/config/systemd/user/$name.d/check.conf" <<EOF
[Service]
ExecStart=
ExecStart=$exe -c /dev/null -i lo -t 60 -l $prefix --stdout json
StandardOutput=file:$tmp/sandbox.out
StandardError=file:$tmp/sandbox.err
TimeoutStartSec=20
Restart=no
# How it ended, kept outside: a stopped unit's state may be collected at once.
ExecStopPost=+/bin/sh -c 'echo "\$SERVICE_RESULT \$EXIT_CODE \$EXIT_STATUS" >$tmp/sandbox.exit'
EOF
    # The manager gets cgroups of its own (in every hierarchy it uses).
    local t
    for h in /sys/fs/cgroup /sys/fs/cgroup/unified /sys/fs/cgroup/systemd; do
        t=$(stat -fc %T "$h" 2>/dev/null || true)
        # cgroup v2, or the v1 name=systemd hierarchy of a hybrid host
        [ "$t" = cgroup2fs ] || { [ "$t" = cgroupfs ] && [ "${h##*/}" = systemd ]; } || continue
        mkdir "$h/pdtt-check-unit.$$" "$h/pdtt-check-unit.$$/manager"
        cgroups+=("$h/pdtt-check-unit.$$")
    done
    [ "${#cgroups[@]}" -gt 0 ] || { echo "no cgroup hierarchy for the manager"; return 1; }
    export XDG_RUNTIME_DIR=$run XDG_CONFIG_HOME=$tmp/config
    (
        for h in "${cgroups[@]}"; do echo "$BASHPID" >"$h/manager/cgroup.procs"; done
        exec /lib/systemd/systemd --user --log-target=null
    ) </dev/null >/dev/null 2>&1 &
    mgr=$!
    sc() { systemctl --user "$@"; }
    for _ in $(seq 50); do [ -S "$run/systemd/private" ] && break; sleep 0.2; done

    if ! timeout 30 systemctl --user start "$name"; then
        [ "$(sc show -p Result --value "$name")" != timeout ] ||
            echo "start timed out: the agent did not send READY=1 (Type=$(sc show -p Type --value "$name"))"
        sc status --no-pager --lines=0 "$name" | grep -E 'Active:|Process:' || true
        tail -n 3 "$tmp/sandbox.err" 2>/dev/null
        return 1
    fi
    local main status
    main=$(sc show -p MainPID --value "$name")
    wait_for "$tmp/sandbox.err" monitoring || true
    status=$(cat "/proc/$main/status" 2>/dev/null || true)
    traffic
    sleep 1
    timeout 30 systemctl --user stop "$name" || true
    local ended
    ended=$(cat "$tmp/sandbox.exit" 2>/dev/null || echo "unknown")

    # The manager applied the sandbox: bounding set, no_new_privs, seccomp.
    local want_bnd got_bnd
    want_bnd=$(setpriv --bounding-set=-all,"$caps" grep CapBnd /proc/self/status)
    got_bnd=$(grep CapBnd <<<"$status" || true)
    local problems=()
    if [ -z "$status" ]; then
        problems+=("the agent was gone right after the start")
    else
        [ "$got_bnd" = "$want_bnd" ] || problems+=("bounding set '$got_bnd', want '$want_bnd'")
        grep -q 'NoNewPrivs:[[:space:]]*1' <<<"$status" || problems+=("no NoNewPrivs")
        grep -q 'Seccomp:[[:space:]]*2' <<<"$status" || problems+=("no seccomp filter")
        for g in ${groups//,/ }; do
            g=$(getent group "$g" | cut -d: -f3)
            grep -Eq "^Groups:.*\b$g\b" <<<"$status" || problems+=("not in group $g")
        done
    fi
    [ "$ended" = "success exited 0" ] || problems+=("stopped: $ended, want: success exited 0")
    root_report "$tmp/sandbox.out" || problems+=("no final report with root's bytes")
    grep -qs 'Connection: 127.0.0.1 -> 127.0.0.1' "$prefix-root.log" ||
        problems+=("nothing written to $prefix-root.log")
    if [ "${#problems[@]}" -gt 0 ]; then
        printf '%s\n' "${problems[@]}"
        tail -n 3 "$tmp/sandbox.err"
        return 1
    fi
}
export -f sandbox traffic wait_for root_report
export tmp unit name agent caps groups
# To a file: the manager's children must not hold a pipe open.
if unshare -m --propagation private bash -c sandbox >"$tmp/sandbox.log" 2>&1; then
    pass sandbox "runs under systemd $(systemctl --version | sed -n '1s/systemd \([0-9]*\).*/\1/p') with the whole unit"
else
    fail sandbox "$(cat "$tmp/sandbox.log")"
fi

# --- logrotate: the file the install script puts in /etc/logrotate.d.
if command -v logrotate >/dev/null; then
    if out=$(logrotate -d -s "$tmp/logrotate.state" "$here/conf/logrotate.pdtt" 2>&1) &&
        ! grep -qi '^error' <<<"$out"; then
        pass logrotate "conf/logrotate.pdtt parses"
    else
        fail logrotate "$(grep -i error <<<"$out")"
    fi
else
    echo "skip logrotate: not installed"
fi

if [ "${#failed[@]}" -gt 0 ]; then
    echo "check-unit.sh: failed: ${failed[*]}" >&2
    exit 1
fi
