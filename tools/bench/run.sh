#!/usr/bin/env bash
# pdtt benchmarks (BENCHMARKS.md: Performance targets), side by side in one run:
# every figure interleaves runs without the agent and with it (and with the
# tools users have today), so that a noisy machine moves both alike.
#
#   tools/bench/run.sh [--smoke] [--strict] [--figures LIST] [--pairs N] [--duration S]
#                      [--udp-duration S] [--churn-duration S] [--churn-max-duration S]
#                      [--rates R,R,..] [--tools-rate R] [--flows N] [--moving-flows N]
#                      [--pipeline-events N] [--ingress LIST] [--bpf-stats] [--build DIR]
#                      [--out DIR] [--agent BIN] [--churn BIN] [--pipeline BIN]
#
# Figures (default: all): bulk, udp, smallwrite, churn, pipeline, memory,
# moving, tools (the last adds nethogs and tcplife beside pdtt to the bulk
# and churn figures). smallwrite: TCP in 64-byte writes, the per-syscall
# cost of the I/O hooks; moving: --moving-flows UDP flows (100,000) each
# moving 100 bytes a second, agent CPU and per-interval completeness.
# bulk, udp and churn-max run the agent once per ingress mode of --ingress
# (default auto,tc,generic,native: --ingress auto, --ingress tc, --ingress
# xdp --xdp-mode generic, --ingress xdp --xdp-mode native), beside none, in
# one interleaved round. idle (not in the default) is --ingress tc with
# PDTT_TEST_FORCE=idle-hooks: every program attached, the packet programs,
# the state tracepoint and the I/O hooks returning at once, so what attaching alone costs shows
# beside what the programs do; it counts nothing and meets no target. --bpf-stats turns on kernel.bpf_stats_enabled for
# the run and records each program's runs and ns per run (it adds two clock
# reads to every run of every BPF program on the host).
# All traffic stays between two private namespaces joined by veth; client
# on CPU 0, server on CPU 1. Prints a markdown table; writes raw.csv (every
# run), summary.csv and summary.md into --out. Exits non-zero when the
# harness breaks (a tool missing, a parse failure, the agent not starting),
# and with --strict (implied by --smoke) when the agent miscounts the churn:
# a flow reported under another user, a flow not reported, a ring record
# dropped. Never for a performance figure. Needs root.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=tools/bench/lib.sh
source "$here/lib.sh"

ARGS="$*"
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

FIGURES=bulk,udp,smallwrite,churn,pipeline,memory,moving,tools
PAIRS=5
DURATION=10
UDP_DURATION=5
CHURN_DURATION=30
CHURN_MAX_DURATION=10
RATES=5000,10000,20000
TOOLS_RATE=20000
FLOWS=100000
MOVING_FLOWS=100000
MOVING_DURATION=20
PIPE_EVENTS=5000000
INGRESS=auto,tc,generic,native
BPF_STATS=0
BUILD=${PDTT_BUILD_DIR:-$repo/build}
OUT=""
AGENT="" CHURN="" PIPELINE=""
SMOKE=0
STRICT=0
AGENT_INTERVAL=5
AGENT_EXTRA=()

while [ $# -gt 0 ]; do
    case $1 in
    --smoke)
        SMOKE=1 STRICT=1 PAIRS=1 DURATION=1 UDP_DURATION=1 CHURN_DURATION=2 CHURN_MAX_DURATION=1
        RATES=2000 TOOLS_RATE=2000 FLOWS=2000 MOVING_FLOWS=2000 MOVING_DURATION=4 PIPE_EVENTS=200000 AGENT_INTERVAL=1
        INGRESS=tc,native   # the default path and the XDP one, each attached once per figure
        shift ;;
    --strict) STRICT=1; shift ;;
    --figures) FIGURES=$2; shift 2 ;;
    --pairs) PAIRS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --udp-duration) UDP_DURATION=$2; shift 2 ;;
    --churn-duration) CHURN_DURATION=$2; shift 2 ;;
    --churn-max-duration) CHURN_MAX_DURATION=$2; shift 2 ;;
    --rates) RATES=$2; shift 2 ;;
    --tools-rate) TOOLS_RATE=$2; shift 2 ;;
    --flows) FLOWS=$2; shift 2 ;;
    --moving-flows) MOVING_FLOWS=$2; shift 2 ;;
    --pipeline-events) PIPE_EVENTS=$2; shift 2 ;;
    --ingress) INGRESS=$2; shift 2 ;;
    --bpf-stats) BPF_STATS=1; shift ;;
    --build) BUILD=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --agent) AGENT=$2; shift 2 ;;
    --churn) CHURN=$2; shift 2 ;;
    --pipeline) PIPELINE=$2; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
for v in PAIRS DURATION UDP_DURATION CHURN_DURATION CHURN_MAX_DURATION TOOLS_RATE FLOWS MOVING_FLOWS PIPE_EVENTS; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: --${v,,} must be a positive integer" >&2; exit 2; }
done
[[ $RATES =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] || { echo "run.sh: --rates: positive integers, comma-separated" >&2; exit 2; }
has_figure() { [[ ,$FIGURES, == *,$1,* ]]; }
[[ $INGRESS =~ ^(auto|tc|generic|native|idle)(,(auto|tc|generic|native|idle))*$ ]] ||
    { echo "run.sh: --ingress: auto, tc, generic, native or idle, comma-separated" >&2; exit 2; }
VARIANTS_INGRESS=()
for m in ${INGRESS//,/ }; do VARIANTS_INGRESS+=("pdtt-$m"); done

[ "$(id -u)" = 0 ] || { echo "run.sh: run as root (namespaces, BPF)" >&2; exit 3; }
AGENT=${AGENT:-$BUILD/agent/pdtt-agent}
CHURN=${CHURN:-$BUILD/tools/pdtt-churn}
PIPELINE=${PIPELINE:-$BUILD/tools/bench-pipeline}
for b in "$AGENT" "$CHURN" "$PIPELINE"; do
    [ -x "$b" ] || die "$b is missing: build first (cmake --build BUILD) or pass --build DIR"
done
for t in ip iperf3 jq taskset awk timeout stdbuf unshare python3; do need_tool "$t"; done
[ "$BPF_STATS" = 0 ] || need_tool bpftool
if has_figure tools; then need_tool nethogs; need_tool tcplife; fi
[ "$(nproc)" -ge 2 ] || { CPU_SERVER=0; log "one CPU only: client and server share it"; }

OUT=${OUT:-/tmp/pdtt-bench-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
TMPD=$(mktemp -d /tmp/pdtt-bench-run.XXXXXX)
RAW=$OUT/raw.csv
echo "figure,variant,round,metric,value" >"$RAW"

STATS_WAS=$(sysctl -n kernel.bpf_stats_enabled 2>/dev/null || echo 0)
cleanup_all() {
    bench_cleanup
    [ "$BPF_STATS" = 0 ] || sysctl -qw kernel.bpf_stats_enabled="$STATS_WAS"
    rm -rf "$TMPD"
}
trap cleanup_all EXIT
trap 'exit 130' INT TERM

rec() { echo "$1,$2,$3,$4,$5" >>"$RAW"; }

# With --bpf-stats: each of the agent's programs' runs and ns per run, read
# before it stops (its programs go with it).
rec_prog_stats() {
    local figure=$1 variant=$2 round=$3 name runs ns
    [[ $BPF_STATS = 1 && $variant == pdtt* && -n $TOOL_PID ]] || return 0
    while read -r name runs ns; do
        [ "$runs" -gt 0 ] || continue
        rec "$figure" "$variant" "$round" "bpf_runs:$name" "$runs"
        rec "$figure" "$variant" "$round" "bpf_ns_per_run:$name" "$(calc "$ns / $runs")"
    done < <(agent_prog_stats "$TOOL_PID")
}
div() { if [ "$(calc "($2) == 0")" = 1 ]; then echo 0; else calc "($1) / ($2)"; fi; }

TCPLIFE_PORTS=$IPERF_PORT
VARIANTS_TOOLS=()
has_figure tools && VARIANTS_TOOLS=(nethogs tcplife)

{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "host: nproc=$(nproc) cpu=\"$(awk -F': ' '/model name/{ print $2; exit }' /proc/cpuinfo)\" kernel=$(uname -r)"
    echo "git: $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$repo" diff --quiet 2>/dev/null || echo '+dirty')"
    echo "agent: $AGENT ($("$AGENT" --version 2>&1 | head -1), built $(date -u -r "$AGENT" +%Y-%m-%dT%H:%M:%SZ))"
    echo "command: $0 $ARGS"
    echo "settings: figures=$FIGURES pairs=$PAIRS duration=${DURATION}s udp=${UDP_DURATION}s churn=${CHURN_DURATION}s churn-max=${CHURN_MAX_DURATION}s rates=$RATES tools-rate=$TOOLS_RATE flows=$FLOWS pipeline-events=$PIPE_EVENTS ingress=$INGRESS bpf-stats=$BPF_STATS strict=$STRICT"
    echo "load: $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min) at the start"
} >"$OUT/env.txt"
cat "$OUT/env.txt" >&2

bench_setup
[ "$BPF_STATS" = 0 ] || sysctl -qw kernel.bpf_stats_enabled=1

# ---- 1 bulk TCP and 2 small UDP: iperf3 ----

spawn "$TMPD/iperf3-server.out" "$TMPD/iperf3-server.err" \
    ip netns exec "$NS_B" taskset -c "$CPU_SERVER" iperf3 -s -p "$IPERF_PORT" --forceflush
IPERF_SERVER=$SPAWNED
wait_for "$TMPD/iperf3-server.out" "Server listening" "$IPERF_SERVER" 10 || die "iperf3 server did not start"

# Bytes each tool says the iperf3 flows moved.
reported_iperf_bytes() {
    local variant=$1
    case $variant in
    pdtt*) jq -s "[.[] | select(.type == \"flow_close\" and .rport == $IPERF_PORT) | .tx_bytes + .rx_bytes] | add // 0" \
        "$TOOL_OUT" ;;
    nethogs) awk 'index($1, "iperf3/") { last = $(NF - 1) + $NF } END { printf "%.0f\n", last + 0 }' "$TOOL_OUT" ;;
    tcplife) awk -v p="$IPERF_PORT" '$6 == p { s += ($7 + $8) * 1024 } END { printf "%.0f\n", s + 0 }' "$TOOL_OUT" ;;
    esac
}

# One iperf3 run; figure bulk-rx/bulk-tx/udp-rx/udp-tx.
iperf_once() {
    local figure=$1 variant=$2 round=$3 secs=$4
    local tag=$figure-$variant-$round
    local args=(-c "$IP_B" -p "$IPERF_PORT" -t "$secs" -J)
    [[ $figure == *-rx ]] && args+=(-R)  # data flows into the agent's side: XDP
    [[ $figure == udp-* ]] && args+=(-u -l 64 -b 0)
    [[ $figure == smallwrite-* ]] && args+=(-l 64)   # one send() per 64 bytes: the I/O hooks' per-call cost
    tool_start "$variant" "$tag"
    local b0 t0 b1 t1 rc=0
    b0=$(busy_ticks)
    t0=$(proc_ticks "${TOOL_PID:-0}")
    timeout $((secs + 30)) ip netns exec "$NS_A" taskset -c "$CPU_CLIENT" iperf3 "${args[@]}" \
        >"$TMPD/$tag.json" 2>"$TMPD/$tag.iperr" || rc=$?
    b1=$(busy_ticks)
    t1=$(proc_ticks "${TOOL_PID:-0}")
    # Let the tools see the close and sweep once more before they stop.
    [ -z "$TOOL_PID" ] || sleep 1.5
    rec_prog_stats "$figure" "$variant" "$round"
    tool_stop "$variant"
    [ "$rc" = 0 ] || die "iperf3 failed ($tag): $(jq -r '.error // empty' "$TMPD/$tag.json" 2>/dev/null) $(tail -2 "$TMPD/$tag.iperr")"
    local cpu_s tool_s
    cpu_s=$(calc "($b1 - $b0) / $CLK_TCK")
    tool_s=$(calc "($t1 - $t0) / $CLK_TCK")
    if [[ $figure == bulk-* ]]; then
        local bps bytes reported
        bps=$(num "$tag throughput" "$(jq '.end.sum_received.bits_per_second' "$TMPD/$tag.json")")
        bytes=$(num "$tag bytes" "$(jq '.end.sum_received.bytes' "$TMPD/$tag.json")")
        rec "$figure" "$variant" "$round" gbit_s "$(calc "$bps / 1e9")"
        rec "$figure" "$variant" "$round" cpu_s_per_gb "$(div "$cpu_s" "$bytes / 1e9")"
        if [ "$variant" != none ]; then
            reported=$(num "$tag reported bytes" "$(reported_iperf_bytes "$variant")")
            rec "$figure" "$variant" "$round" tool_cpu_s "$tool_s"
            rec "$figure" "$variant" "$round" bytes_reported_per_moved "$(div "$reported" "$bytes")"
        fi
        log "$tag: $(calc "$bps / 1e9") Gbit/s, $(div "$cpu_s" "$bytes / 1e9") CPU-s/GB"
    elif [[ $figure == smallwrite-* ]]; then
        local sent secs_tx
        sent=$(num "$tag bytes sent" "$(jq '.end.sum_sent.bytes' "$TMPD/$tag.json")")
        secs_tx=$(num "$tag seconds" "$(jq '.end.sum_sent.seconds' "$TMPD/$tag.json")")
        rec "$figure" "$variant" "$round" kwrites_per_s "$(div "$sent / 64 / 1000" "$secs_tx")"
        rec "$figure" "$variant" "$round" cpu_ns_per_write "$(div "$cpu_s * 1e9" "$sent / 64")"
        [ "$variant" = none ] || rec "$figure" "$variant" "$round" tool_cpu_s "$tool_s"
        log "$tag: $(div "$sent / 64 / 1000" "$secs_tx") k 64-byte writes/s"
    else
        local pkts secs_rx
        pkts=$(num "$tag packets" "$(jq '.end.sum_received.packets - .end.sum_received.lost_packets' "$TMPD/$tag.json")")
        secs_rx=$(num "$tag seconds" "$(jq '.end.sum_received.seconds' "$TMPD/$tag.json")")
        rec "$figure" "$variant" "$round" rx_kpps "$(div "$pkts / 1000" "$secs_rx")"
        rec "$figure" "$variant" "$round" cpu_ns_per_pkt "$(div "$cpu_s * 1e9" "$pkts")"
        [ "$variant" = none ] || rec "$figure" "$variant" "$round" tool_cpu_s "$tool_s"
        log "$tag: $(div "$pkts / 1000" "$secs_rx") kpps received"
    fi
    rm -f "$TOOL_OUT"
}

# Round R's order: "none" and every variant, rotated by R - 1, so that no
# variant always runs first (after the quiet of the previous figure) or
# right after another one's agent stopped.
round_order() {
    local r=$1 i
    shift
    local all=(none "$@")
    ROUND=()
    for ((i = 0; i < ${#all[@]}; i++)); do
        ROUND+=("${all[$(((i + r - 1) % ${#all[@]}))]}")
    done
}

# Interleaved rounds, each run of a round compared with its round's "none".
rounds() {
    local figure=$1 secs=$2 r v
    shift 2
    for ((r = 1; r <= PAIRS; r++)); do
        round_order "$r" "$@"
        for v in "${ROUND[@]}"; do
            iperf_once "$figure" "$v" "$r" "$secs"
        done
    done
}

if has_figure bulk; then
    log "bulk TCP, into the agent's side (the ingress hook sees the data)"
    rounds bulk-rx "$DURATION" "${VARIANTS_INGRESS[@]}" "${VARIANTS_TOOLS[@]}"
    log "bulk TCP, out of the agent's side (tc egress sees the data)"
    rounds bulk-tx "$DURATION" "${VARIANTS_INGRESS[@]}"
fi
if has_figure udp; then
    log "64-byte UDP at full rate"
    rounds udp-rx "$UDP_DURATION" "${VARIANTS_INGRESS[@]}"
    rounds udp-tx "$UDP_DURATION" "${VARIANTS_INGRESS[@]}"
fi
if has_figure smallwrite; then
    log "TCP in 64-byte writes (the sender on the agent's side, then the receiver)"
    rounds smallwrite-tx "$UDP_DURATION" pdtt-native
    rounds smallwrite-rx "$UDP_DURATION" pdtt-native
fi
stop_pid "$IPERF_SERVER" TERM

# ---- 3 connection churn ----

CHURN_LAST=$((CHURN_PORT + CHURN_PORTS - 1))
TCPLIFE_PORTS=$(seq -s, "$CHURN_PORT" "$CHURN_LAST")

churn_once() {
    local figure=$1 variant=$2 round=$3 rate=$4 secs=$5 tag=$1-$2-$3
    tool_start "$variant" "$tag"
    local a0 a1 b0 b1 m0 m1 line rc=0
    a0=$(proc_ticks "${TOOL_PID:-0}")
    b0=$(busy_ticks)
    m0=$(now_ms)
    line=$(timeout $((secs + 30)) ip netns exec "$NS_A" taskset -c "$CPU_CLIENT" "$CHURN" run --to "$IP_B" \
        --port "$CHURN_PORT" --ports "$CHURN_PORTS" --rate "$rate" --duration "$secs" --concurrency 512 \
        --uid "$CHURN_UID" 2>"$TMPD/$tag.cherr") || rc=$?
    [ "$rc" = 0 ] || die "pdtt-churn failed ($tag): $(tail -2 "$TMPD/$tag.cherr")"
    b1=$(busy_ticks)
    # The agent's CPU over the run and the drain that follows it.
    [ -z "$TOOL_PID" ] || sleep 1.5
    a1=$(proc_ticks "${TOOL_PID:-0}")
    m1=$(now_ms)
    rec_prog_stats "$figure" "$variant" "$round"
    tool_stop "$variant"
    local made got_rate payload
    made=$(num "$tag made" "$(sed -n 's/.*made=\([0-9]*\).*/\1/p' <<<"$line")")
    got_rate=$(num "$tag rate" "$(sed -n 's/.* rate=\([0-9.]*\).*/\1/p' <<<"$line")")
    payload=$(num "$tag payload" "$(awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^payload_/) { split($i, kv, "="); s += kv[2] } } END { print s + 0 }' <<<"$line")")
    rec "$figure" "$variant" "$round" conn_per_s "$got_rate"
    rec "$figure" "$variant" "$round" flows_made "$made"
    rec "$figure" "$variant" "$round" cpu_us_per_conn "$(div "($b1 - $b0) / $CLK_TCK * 1e6" "$made")"
    local msg="$tag: $got_rate conn/s, made $made"
    if [ "$variant" != none ]; then
        local tool_core reported
        tool_core=$(div "($a1 - $a0) / $CLK_TCK" "($m1 - $m0) / 1000")
        rec "$figure" "$variant" "$round" tool_cpu_core "$tool_core"
        msg+=", tool CPU $tool_core core"
    fi
    case $variant in
    pdtt*)
        local ours all stats drops full
        ours=$(grep -c -E "\"type\":\"flow_close\".*\"uid\":$CHURN_UID,.*\"rport\":700[0-7]," "$TOOL_OUT" || true)
        all=$(grep -c -E "\"type\":\"flow_close\".*\"rport\":700[0-7]," "$TOOL_OUT" || true)
        stats=$(grep '"type":"agent_stats"' "$TOOL_OUT" | tail -1)
        drops=$(num "$tag ring_drops" "$(jq '.ring_drops' <<<"$stats")")
        full=$(num "$tag flow_table_full" "$(jq '.flow_table_full' <<<"$stats")")
        rec "$figure" "$variant" "$round" flows_reported "$ours"
        rec "$figure" "$variant" "$round" flows_wrong_user "$((all - ours))"
        rec "$figure" "$variant" "$round" flows_reported_per_made "$(div "$ours" "$made")"
        rec "$figure" "$variant" "$round" ring_drops "$drops"
        rec "$figure" "$variant" "$round" flow_table_full "$full"
        msg+=", reported $ours (wrong user $((all - ours))), ring_drops $drops, flow_table_full $full"
        ;;
    tcplife)
        local n bytes
        n=$(awk -v lo="$CHURN_PORT" -v hi="$CHURN_LAST" '$6 >= lo && $6 <= hi { n++ } END { print n + 0 }' "$TOOL_OUT")
        bytes=$(awk -v lo="$CHURN_PORT" -v hi="$CHURN_LAST" '$6 >= lo && $6 <= hi { s += ($7 + $8) * 1024 } END { printf "%.0f\n", s + 0 }' "$TOOL_OUT")
        rec "$figure" "$variant" "$round" flows_reported "$n"
        rec "$figure" "$variant" "$round" flows_reported_per_made "$(div "$n" "$made")"
        rec "$figure" "$variant" "$round" bytes_reported_per_moved "$(div "$bytes" "$payload")"
        msg+=", reported $n"
        ;;
    nethogs)
        local bytes
        bytes=$(awk 'index($1, "pdtt-churn/") { last = $(NF - 1) + $NF } END { printf "%.0f\n", last + 0 }' "$TOOL_OUT")
        rec "$figure" "$variant" "$round" bytes_reported_per_moved "$(div "$bytes" "$payload")"
        msg+=", bytes reported/moved $(div "$bytes" "$payload")"
        ;;
    esac
    rm -f "$TOOL_OUT"
    log "$msg"
    # At the smoke run's small rates a correct agent reports every flow,
    # under its user, and drops nothing; anything else is a bug.
    if [[ $STRICT = 1 && $variant == pdtt* && $variant != pdtt-idle ]]; then
        local bad=""
        [ "$((all - ours))" = 0 ] || bad+=" $((all - ours)) flows reported under another user;"
        [ "$ours" = "$made" ] || bad+=" $ours of $made flows reported;"
        [ "$drops" = 0 ] || bad+=" $drops ring records dropped;"
        [ -z "$bad" ] || die "$tag: the agent miscounted:$bad"
    fi
}

start_churn_server() {
    local s=$1
    spawn "$TMPD/churn-server-$s.out" "$TMPD/churn-server-$s.err" ip netns exec "$NS_B" taskset -c "$CPU_SERVER" \
        "$CHURN" serve --bind "$IP_B" --port "$CHURN_PORT" --ports $((2 * CHURN_PORTS))
    wait_for "$TMPD/churn-server-$s.out" ready "$SPAWNED" 10 ||
        die "pdtt-churn server did not start: $(cat "$TMPD/churn-server-$s.err")"
}
if has_figure churn || has_figure tools || has_figure memory; then
    start_churn_server 0
fi

if has_figure churn; then
    log "connection churn, as fast as it goes"
    for ((r = 1; r <= PAIRS; r++)); do
        round_order "$r" "${VARIANTS_INGRESS[@]}"
        for v in "${ROUND[@]}"; do
            churn_once churn-max "$v" "$r" 0 "$CHURN_MAX_DURATION"
        done
    done
    for rate in ${RATES//,/ }; do
        log "connection churn at $rate/s for ${CHURN_DURATION}s"
        variants=(none pdtt)
        [ "$rate" = "$TOOLS_RATE" ] && variants+=("${VARIANTS_TOOLS[@]}")
        for v in "${variants[@]}"; do
            churn_once "churn-$rate" "$v" 1 "$rate" "$CHURN_DURATION"
        done
    done
fi
if has_figure tools && { ! has_figure churn || [[ ,$RATES, != *,$TOOLS_RATE,* ]]; }; then
    for v in none pdtt "${VARIANTS_TOOLS[@]}"; do
        churn_once "churn-$TOOLS_RATE" "$v" 1 "$TOOLS_RATE" "$CHURN_DURATION"
    done
fi

# ---- 5 memory with many concurrent flows ----

if has_figure memory; then
    log "memory with $FLOWS concurrent flows"
    # More servers on the same ports (SO_REUSEPORT): one process's
    # descriptor limit may be far below the flow count.
    nofile=$(ulimit -Hn)
    [ "$nofile" = unlimited ] && nofile=1048576
    for ((s = 1; s < (FLOWS + nofile / 2 - 1) / (nofile / 2); s++)); do
        start_churn_server "$s"
    done
    # Every held flow in the table: one uid holds them all, past its default
    # share (a quarter of the table), whose overflow would keep no flows.
    AGENT_EXTRA=(--max-flows-per-user "$FLOWS")
    tool_start pdtt memory
    AGENT_EXTRA=()
    AGENT_PID=$TOOL_PID
    sleep 2
    rss0=$(num "idle VmRSS" "$(proc_status_kib "$AGENT_PID" VmRSS)")
    maps0=$(num "idle map memory" "$(agent_map_bytes "$AGENT_PID")")
    per=$((nofile - 200))
    holders=()
    for ((left = FLOWS, h = 0; left > 0; left -= per, h++)); do
        n=$((left < per ? left : per))
        spawn "$TMPD/hold-$h.out" "$TMPD/hold-$h.err" ip netns exec "$NS_A" taskset -c "$CPU_CLIENT" "$CHURN" hold \
            --to "$IP_B" --port "$HOLD_PORT" --ports "$CHURN_PORTS" --count "$n" --concurrency 512 --hold 900 \
            --uid "$CHURN_UID"
        holders+=("$SPAWNED")
        wait_for "$TMPD/hold-$h.out" held= "$SPAWNED" 300 || die "pdtt-churn hold did not finish: $(cat "$TMPD/hold-$h.err")"
    done
    held=$(cat "$TMPD"/hold-*.out | sed -n 's/^held=\([0-9]*\).*/\1/p' | awk '{ s += $1 } END { print s + 0 }')
    sleep 4   # a few sweeps and drains with every flow open
    rss1=$(num "VmRSS" "$(proc_status_kib "$AGENT_PID" VmRSS)")
    hwm=$(num "VmHWM" "$(proc_status_kib "$AGENT_PID" VmHWM)")
    maps1=$(num "map memory" "$(agent_map_bytes "$AGENT_PID")")
    for p in "${holders[@]}"; do stop_pid "$p" TERM; done
    sleep 2
    tool_stop pdtt
    opened=$(grep -c -E "\"type\":\"flow_open\".*\"uid\":$CHURN_UID,.*\"rport\":70(0[89]|1[0-5])," "$TOOL_OUT" || true)
    tracked=$(num "flows tracked" "$(jq -s '[.[] | select(.type == "agent_stats") | .flows_active] | max // 0' "$TOOL_OUT")")
    rm -f "$TOOL_OUT"
    rec memory pdtt 1 flows_held "$held"
    rec memory pdtt 1 flows_opened_reported "$opened"
    rec memory pdtt 1 flows_tracked "$tracked"
    rec memory pdtt 1 rss_mib_idle "$(calc "$rss0 / 1024")"
    rec memory pdtt 1 rss_mib "$(calc "$rss1 / 1024")"
    rec memory pdtt 1 rss_hwm_mib "$(calc "$hwm / 1024")"
    rec memory pdtt 1 rss_kib_per_1k_flows "$(div "($rss1 - $rss0)" "$held / 1000")"
    rec memory pdtt 1 rss_mib_at_100k_flows "$(calc "($rss0 + ($held > 0 ? ($rss1 - $rss0) * 100000 / $held : 0)) / 1024")"
    rec memory pdtt 1 map_mib_idle "$(calc "$maps0 / 1048576")"
    rec memory pdtt 1 map_mib "$(calc "$maps1 / 1048576")"
    log "memory: $held flows held, $opened reported open, $tracked tracked at most; RSS $((rss0 / 1024)) -> $((rss1 / 1024)) MiB (HWM $((hwm / 1024))); maps $((maps0 / 1048576)) -> $((maps1 / 1048576)) MiB"
fi

# ---- 6 many moving flows ----

if has_figure moving; then
    log "$MOVING_FLOWS UDP flows moving 100 bytes a second each, for ${MOVING_DURATION}s"
    spawn "$TMPD/udp-sink.out" "$TMPD/udp-sink.err" ip netns exec "$NS_B" python3 -c \
        "import socket,time; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('$IP_B', 6100)); time.sleep(3600)"
    SINK_PID=$SPAWNED
    AGENT_EXTRA=(--max-flows-per-user "$MOVING_FLOWS") # one uid's flows, all of them in the table
    tool_start pdtt moving
    AGENT_EXTRA=()
    AGENT_PID=$TOOL_PID
    gens=()
    per=5000   # flows per sender: one process's descriptor limit
    for ((left = MOVING_FLOWS, g = 0; left > 0; left -= per, g++)); do
        n=$((left < per ? left : per))
        spawn "$TMPD/moving-$g.out" "$TMPD/moving-$g.err" ip netns exec "$NS_A" \
            python3 "$here/udp-flows.py" "$IP_B" 6100 "$n" "$((MOVING_DURATION + 10))"
        gens+=("$SPAWNED")
    done
    sleep 8   # every socket made and every flow open
    t0=$(proc_ticks "$AGENT_PID")
    sleep "$MOVING_DURATION"
    t1=$(proc_ticks "$AGENT_PID")
    rss=$(num "VmRSS" "$(proc_status_kib "$AGENT_PID" VmRSS)")
    for p in "${gens[@]}"; do stop_pid "$p" TERM; done
    tool_stop pdtt
    stop_pid "$SINK_PID" TERM
    # The senders run as root (uid 0). Each one's per-second lines say what it moved; the agent's
    # user_report of the same seconds must carry it. Full intervals only:
    # the middle ones, each against the senders' mean rate.
    moved=$(cat "$TMPD"/moving-*.out | awk -F'[= ]' '/^second=/ && $2 >= 1 { s += $4 } END { print s + 0 }')
    gen_s=$(cat "$TMPD"/moving-*.out | awk -F'[= ]' '/^second=/ && $2 >= 1 { n[$2] = 1 } END { print length(n) }')
    rate=$(div "$moved" "$gen_s")
    read -r cmin cmax nint < <(jq -r "select(.type == \"user_report\" and .uid == 0) | \"\\(.interval_s) \\(.tx_bytes)\"" \
        "$TOOL_OUT" | awk -v r="$rate" 'NR > 2 { c[++n] = $2 / (r * $1) } END { lo = 9; hi = 0;
        for (i = 1; i < n; i++) { if (c[i] < lo) lo = c[i]; if (c[i] > hi) hi = c[i] } print lo, hi, n - 1 }')
    drops=$(jq -s '[.[] | select(.type == "agent_stats") | .ring_drops] | max // 0' "$TOOL_OUT")
    incomplete=$(jq -s '[.[] | select(.type == "agent_stats") | .deltas_incomplete] | max // 0' "$TOOL_OUT")
    rec moving pdtt 1 flows "$MOVING_FLOWS"
    rec moving pdtt 1 agent_cpu_pct "$(calc "($t1 - $t0) / $CLK_TCK / $MOVING_DURATION * 100")"
    rec moving pdtt 1 rss_mib "$(calc "$rss / 1024")"
    rec moving pdtt 1 interval_completeness_min "$cmin"
    rec moving pdtt 1 interval_completeness_max "$cmax"
    rec moving pdtt 1 ring_drops "$drops"
    rec moving pdtt 1 deltas_incomplete "$incomplete"
    log "moving: agent $(calc "($t1 - $t0) / $CLK_TCK / $MOVING_DURATION * 100")% of a core, per-interval completeness $cmin..$cmax over $nint intervals, ring_drops $drops, deltas_incomplete $incomplete"
    rm -f "$TOOL_OUT"
fi

# ---- 4 the user-space event pipeline, no kernel ----

if has_figure pipeline; then
    log "event pipeline, $PIPE_EVENTS synthetic events on one core"
    for ((r = 1; r <= PAIRS; r++)); do
        line=$(taskset -c "$CPU_SERVER" "$PIPELINE" --events "$PIPE_EVENTS") || die "bench-pipeline failed"
        eps=$(num "pipeline events/s" "$(sed -n 's/.*events_per_s=\([0-9.]*\).*/\1/p' <<<"$line")")
        rec pipeline pdtt "$r" mevents_per_s "$(calc "$eps / 1e6")"
        log "pipeline: $line"
    done
fi

python3 "$here/summarize.py" "$RAW" "$OUT/summary.csv" "$OUT/summary.md" "$OUT/env.txt" ||
    die "summarize.py failed"
cat "$OUT/summary.md"
log "results in $OUT"
