# Helpers for tools/bench/run.sh: the private lab, the tools under test,
# CPU accounting. Sourced, not run. Everything started here is recorded in
# PIDS and removed by bench_cleanup, which run.sh calls from its EXIT trap.

# shellcheck shell=bash

NS_A=pdtt-b-$$-a            # the agent's side: clients, the monitored veth
NS_B=pdtt-b-$$-b            # the peer: servers
VETH_A=pdb$$a
VETH_B=pdb$$b
IP_A=10.201.0.1
IP_B=10.201.0.2
IPERF_PORT=5201
CHURN_PORT=7000             # the churn server listens on CHURN_PORTS ports from here
CHURN_PORTS=8
HOLD_PORT=7008             # the memory figure's connections, CHURN_PORTS ports from here
CHURN_UID=65534             # the flows must be reported under this user
CPU_CLIENT=0
CPU_SERVER=1
CLK_TCK=$(getconf CLK_TCK)
PIDS=()

die() {
    echo "run.sh: $*" >&2
    exit 1
}

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

need_tool() {
    command -v "$1" >/dev/null 2>&1 || die "$1 is missing (tools/install-deps.sh installs it)"
}

# A number, or the harness is broken: a parse must never yield garbage.
num() {
    local what=$1 v=$2
    [[ $v =~ ^-?[0-9]+([.][0-9]+)?([eE][-+]?[0-9]+)?$ ]] || die "parse failure: $what is '$v'"
    echo "$v"
}

# Arithmetic on numbers already checked by num(): calc "$a / $b".
calc() { awk "BEGIN { x = ($1); printf \"%.6g\", x }"; }

bench_setup() {
    ip netns add "$NS_A"
    ip netns add "$NS_B"
    ip link add "$VETH_A" netns "$NS_A" type veth peer name "$VETH_B" netns "$NS_B"
    ip -n "$NS_A" addr add "$IP_A/24" dev "$VETH_A"
    ip -n "$NS_B" addr add "$IP_B/24" dev "$VETH_B"
    ip -n "$NS_A" addr add fd00:201::1/64 dev "$VETH_A" nodad
    ip -n "$NS_B" addr add fd00:201::2/64 dev "$VETH_B" nodad
    for ns in "$NS_A" "$NS_B"; do
        ip -n "$ns" link set lo up
    done
    ip -n "$NS_A" link set "$VETH_A" up
    ip -n "$NS_B" link set "$VETH_B" up
    # Churn: clients need ports, the server a deep accept queue.
    ip netns exec "$NS_A" sysctl -qw net.ipv4.ip_local_port_range="1024 65535"
    ip netns exec "$NS_B" sysctl -qw net.core.somaxconn=65535 net.ipv4.tcp_max_syn_backlog=65535
}

bench_cleanup() {
    set +e
    local p
    for p in "${PIDS[@]}"; do
        kill -TERM "$p" 2>/dev/null
    done
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        local alive=0
        for p in "${PIDS[@]}"; do
            kill -0 "$p" 2>/dev/null && alive=1
        done
        [ $alive = 0 ] && break
        sleep 0.3
    done
    for p in "${PIDS[@]}"; do
        kill -KILL "$p" 2>/dev/null
    done
    # Deleting the namespaces deletes the veth pair; the agent's XDP and TCX
    # links died with it.
    ip netns del "$NS_A" 2>/dev/null
    ip netns del "$NS_B" 2>/dev/null
    ip link del "$VETH_A" 2>/dev/null
    return 0
}

# Background process started by us, remembered for cleanup. Its PID is the
# command's own: ip netns exec, taskset, stdbuf and unshare's sh all exec.
spawn() {
    local out=$1 err=$2
    shift 2
    "$@" >"$out" 2>"$err" &
    SPAWNED=$!
    PIDS+=("$SPAWNED")
}

forget() {
    local p=$1 keep=() q
    for q in "${PIDS[@]}"; do
        [ "$q" = "$p" ] || keep+=("$q")
    done
    PIDS=("${keep[@]}")
}

# Waits (bounded) until FILE contains PATTERN while PID lives.
wait_for() {
    local file=$1 pattern=$2 pid=$3 secs=$4 i
    for ((i = 0; i < secs * 10; i++)); do
        grep -q -- "$pattern" "$file" 2>/dev/null && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# Stops PID with SIGNAL, waits up to 5 s, then kills; its exit status in
# STOP_RC (not echoed: wait works only in the shell that started it).
stop_pid() {
    local pid=$1 sig=$2 i
    kill -"$sig" "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null || true
    fi
    STOP_RC=0
    wait "$pid" 2>/dev/null || STOP_RC=$?
    forget "$pid"
}

# Busy CPU of the whole machine, in ticks: user nice system irq softirq.
busy_ticks() { awk '/^cpu /{ print $2 + $3 + $4 + $7 + $8; exit }' /proc/stat; }

# utime + stime of one process, in ticks (comm may hold spaces).
proc_ticks() {
    local pid=$1
    [ -r "/proc/$pid/stat" ] || { echo 0; return; }
    sed 's/^.*) //' "/proc/$pid/stat" | awk '{ print $12 + $13 }'
}

now_ms() { date +%s%3N; }

# The tool a variant runs beside the workload, started in the background.
# Sets TOOL_PID (empty for "none"), TOOL_OUT, TOOL_ERR.
tool_start() {
    local variant=$1 tag=$2
    TOOL_PID=""
    TOOL_OUT=$TMPD/$tag.out
    TOOL_ERR=$TMPD/$tag.err
    case $variant in
    none) ;;
    pdtt | pdtt-auto | pdtt-tc | pdtt-generic | pdtt-native | pdtt-idle)
        # pdtt: the default (--ingress auto); the others one ingress mode
        # each; idle: tc with every program returning at once (run.sh).
        local ingress=() force=
        case $variant in
        pdtt-tc) ingress=(--ingress tc) ;;
        pdtt-generic | pdtt-native) ingress=(--ingress xdp --xdp-mode "${variant#pdtt-}") ;;
        pdtt-idle) ingress=(--ingress tc) force=idle-hooks ;;
        esac
        spawn "$TOOL_OUT" "$TOOL_ERR" ip netns exec "$NS_A" env PDTT_TEST_FORCE="$force" "$AGENT" -i "$VETH_A" --stdout json --no-files \
            -t "$AGENT_INTERVAL" "${ingress[@]}" "${AGENT_EXTRA[@]}"
        TOOL_PID=$SPAWNED
        wait_for "$TOOL_ERR" monitoring "$TOOL_PID" 30 ||
            die "the agent did not start ($variant): $(tail -3 "$TOOL_ERR")"
        ;;
    nethogs)
        # Trace mode, all devices, cumulative bytes, refreshed every second.
        spawn "$TOOL_OUT" "$TOOL_ERR" ip netns exec "$NS_A" nethogs -a -t -v 2 -d 1
        TOOL_PID=$SPAWNED
        wait_for "$TOOL_OUT" Refreshing "$TOOL_PID" 15 ||
            die "nethogs did not start: $(tail -3 "$TOOL_ERR")"
        ;;
    tcplife)
        # tcplife attaches a classic tracepoint, which needs tracefs: mount it
        # in a private mount namespace rather than on the host. It traces
        # every namespace; -D keeps the client ends of our flows.
        spawn "$TOOL_OUT" "$TOOL_ERR" unshare -m --propagation private sh -c \
            'mountpoint -q /sys/kernel/tracing || mount -t tracefs nodev /sys/kernel/tracing; exec stdbuf -oL tcplife -D "$1"' \
            sh "$TCPLIFE_PORTS"
        TOOL_PID=$SPAWNED
        wait_for "$TOOL_OUT" PID "$TOOL_PID" 30 || die "tcplife did not start: $(tail -3 "$TOOL_ERR")"
        ;;
    *) die "unknown variant $variant" ;;
    esac
}

# Stops the tool: the agent on SIGTERM (final report, exit 0), the others on SIGINT.
tool_stop() {
    local variant=$1
    [ -n "$TOOL_PID" ] || return 0
    case $variant in
    pdtt*)
        stop_pid "$TOOL_PID" TERM
        [ "$STOP_RC" = 0 ] || die "the agent exited $STOP_RC on SIGTERM: $(tail -3 "$TOOL_ERR")"
        ;;
    *) stop_pid "$TOOL_PID" INT ;;
    esac
}

# BPF map memory the agent holds: memlock of every map fd it owns, in bytes.
agent_map_bytes() {
    local pid=$1 total=0 f m
    for f in /proc/"$pid"/fdinfo/*; do
        m=$(awk '/^map_type:/{ t = 1 } /^memlock:/{ if (t) print $2 }' "$f" 2>/dev/null || true)
        [ -n "$m" ] && total=$((total + m))
    done
    echo "$total"
}

# run_cnt and run_time_ns of every BPF program the process holds, one
# "NAME RUNS NS" line each (kernel.bpf_stats_enabled must be on). The
# process's fdinfo has the counters; bpftool has the names.
agent_prog_stats() {
    local pid=$1
    grep -H -E '^(prog_id|run_time_ns|run_cnt):' /proc/"$pid"/fdinfo/* 2>/dev/null |
        awk -F'[:\t ]+' '{ v[$1, $2] = $3; if ($2 == "prog_id") fds[$1] = 1 }
            END { for (f in fds) print v[f, "prog_id"], v[f, "run_cnt"] + 0, v[f, "run_time_ns"] + 0 }' |
        sort -u | while read -r id n ns; do
            echo "$(bpftool -j prog show id "$id" | jq -r .name) $n $ns"
        done
}

proc_status_kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
