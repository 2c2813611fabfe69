#!/usr/bin/env python3
"""Summarise tools/bench/run.sh's raw.csv: medians and min-max per figure,
variant and metric, and the ratio of each run to the run without any tool
("none") of the same round. Writes summary.csv and summary.md.

usage: summarize.py RAW.csv SUMMARY.csv SUMMARY.md ENV.txt
"""
import csv
import statistics
import sys
from collections import OrderedDict

# Metrics whose ratio to "none" is the figure: throughput and cost.
RATIO_METRICS = {"gbit_s", "cpu_s_per_gb", "rx_kpps", "cpu_ns_per_pkt", "conn_per_s", "cpu_us_per_conn"}

UNITS = {
    "gbit_s": "Gbit/s",
    "cpu_s_per_gb": "CPU-s/GB (whole machine)",
    "tool_cpu_s": "tool CPU-s (process)",
    "bytes_reported_per_moved": "bytes reported / moved",
    "rx_kpps": "received kpps",
    "cpu_ns_per_pkt": "CPU ns/packet (whole machine)",
    "conn_per_s": "connections/s reached",
    "flows_made": "flows made",
    "cpu_us_per_conn": "CPU µs/connection (whole machine)",
    "tool_cpu_core": "tool CPU (cores)",
    "flows_reported": "flows reported",
    "flows_wrong_user": "flows with a wrong user",
    "flows_reported_per_made": "flows reported / made",
    "ring_drops": "ring_drops",
    "flow_table_full": "flow_table_full",
    "flows_held": "flows held open",
    "flows_opened_reported": "flow_open reported",
    "flows_tracked": "flows the agent tracked (most, agent_stats)",
    "rss_mib_idle": "agent RSS idle (MiB)",
    "rss_mib": "agent RSS loaded (MiB)",
    "rss_hwm_mib": "agent RSS peak (MiB)",
    "rss_kib_per_1k_flows": "RSS KiB per 1k flows",
    "rss_mib_at_100k_flows": "RSS at 100k flows, extrapolated (MiB)",
    "map_mib_idle": "BPF maps idle (MiB)",
    "map_mib": "BPF maps loaded (MiB)",
    "mevents_per_s": "M events/s, one core",
}


def unit(metric):
    kind, _, prog = metric.partition(":")
    if kind == "bpf_runs":
        return f"BPF runs: {prog}"
    if kind == "bpf_ns_per_run":
        return f"BPF ns/run: {prog}"
    return UNITS.get(metric, metric)


def fmt(x):
    if x is None:
        return ""
    if x == int(x) and abs(x) >= 100:
        return str(int(x))
    return f"{x:.4g}"


def span(lo, hi):
    return fmt(lo) if lo == hi else f"{fmt(lo)}–{fmt(hi)}"


def main():
    raw, out_csv, out_md, env = sys.argv[1:5]
    runs = OrderedDict()  # (figure, variant, metric) -> {round: value}
    for row in csv.DictReader(open(raw)):
        key = (row["figure"], row["variant"], row["metric"])
        runs.setdefault(key, {})[row["round"]] = float(row["value"])

    rows = []
    for (figure, variant, metric), by_round in runs.items():
        vals = list(by_round.values())
        ratios = []
        base = runs.get((figure, "none", metric))
        if variant != "none" and metric in RATIO_METRICS and base:
            ratios = [v / base[r] for r, v in by_round.items() if base.get(r)]
        rows.append({
            "figure": figure, "variant": variant, "metric": metric, "n": len(vals),
            "median": statistics.median(vals), "min": min(vals), "max": max(vals),
            "ratio_median": statistics.median(ratios) if ratios else None,
            "ratio_min": min(ratios) if ratios else None,
            "ratio_max": max(ratios) if ratios else None,
        })
    # Group by figure, "none" first, then variants in the order they ran.
    order = {k: i for i, k in enumerate(OrderedDict.fromkeys((r["figure"], r["variant"]) for r in rows))}
    figs = list(OrderedDict.fromkeys(r["figure"] for r in rows))
    rows.sort(key=lambda r: (figs.index(r["figure"]), r["variant"] != "none", order[(r["figure"], r["variant"])]))

    with open(out_csv, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()) if rows else ["figure"])
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if v is None else v) for k, v in r.items()})

    def get(figure, variant, metric, field="median"):
        for r in rows:
            if (r["figure"], r["variant"], r["metric"]) == (figure, variant, metric):
                return r[field]
        return None

    md = ["## pdtt benchmark", "", "```"] + open(env).read().rstrip().splitlines() + ["```", ""]
    md += ["| figure | variant | metric | median | min–max | n | ratio to none: median (min–max) |",
           "|---|---|---|---|---|---|---|"]
    for r in rows:
        ratio = "" if r["ratio_median"] is None else f"{r['ratio_median']:.3f} ({span(round(r['ratio_min'], 3), round(r['ratio_max'], 3))})"
        md.append(f"| {r['figure']} | {r['variant']} | {unit(r['metric'])} | {fmt(r['median'])} "
                  f"| {span(r['min'], r['max'])} | {r['n']} | {ratio} |")

    # The targets of BENCHMARKS.md; "—" where the run did not measure it.
    targets = []

    def target(name, value, ok, shown):
        targets.append(f"| {name} | {shown if value is not None else '—'} | "
                       f"{'—' if value is None else ('met' if ok else '**missed**')} |")

    def ingress_variants(fig):
        return [v for v in OrderedDict.fromkeys(r["variant"] for r in rows if r["figure"] == fig)
                if v.startswith("pdtt") and v != "pdtt-idle"]  # idle: a reference, no target

    for fig in ("bulk-rx", "bulk-tx"):
        for v in ingress_variants(fig):
            x = get(fig, v, "gbit_s", "ratio_median")
            target(f"{fig} {v}: throughput ≥ 98% of none", x, x is not None and x >= 0.98,
                   f"{x:.3f}" if x is not None else "")
            x = get(fig, v, "cpu_s_per_gb", "ratio_median")
            target(f"{fig} {v}: whole-machine CPU per GB within 5% of none", x, x is not None and x <= 1.05,
                   f"{x:.3f}" if x is not None else "")
    for fig in ("udp-rx", "udp-tx"):
        for v in ingress_variants(fig):
            x = get(fig, v, "rx_kpps", "ratio_median")
            target(f"{fig} {v}: packet rate ≥ 95% of none", x, x is not None and x >= 0.95,
                   f"{x:.3f}" if x is not None else "")
    for v in ingress_variants("churn-max"):
        x = get("churn-max", v, "conn_per_s", "ratio_median")
        target(f"churn-max {v}: connection rate ≥ 95% of none", x, x is not None and x >= 0.95,
               f"{x:.3f}" if x is not None else "")
    churn = sorted((f for f in figs if f.startswith("churn-") and f[6:].isdigit()), key=lambda f: int(f[6:]))
    if churn:
        fig = churn[-1]
        rate, made, rep = get(fig, "pdtt", "conn_per_s"), get(fig, "pdtt", "flows_made"), get(fig, "pdtt", "flows_reported")
        drops, full = get(fig, "pdtt", "ring_drops", "max"), get(fig, "pdtt", "flow_table_full", "max")
        wrong, core = get(fig, "pdtt", "flows_wrong_user", "max"), get(fig, "pdtt", "tool_cpu_core")
        if made is not None:
            target(f"{fig}: rate reached", rate, rate >= 0.98 * int(fig[6:]), f"{rate:.0f}/s")
            target(f"{fig}: every flow reported with its user", rep, rep == made and wrong == 0,
                   f"{rep:.0f} of {made:.0f}, {wrong:.0f} wrong user")
            target(f"{fig}: no loss (ring_drops, flow_table_full)", drops, drops == 0 and full == 0,
                   f"{drops:.0f}, {full:.0f}")
            target(f"{fig}: agent CPU < 0.25 core", core, core < 0.25, f"{core:.3f}")
    x = get("pipeline", "pdtt", "mevents_per_s")
    target("pipeline ≥ 2M events/s", x, x is not None and x >= 2.0, f"{x:.3f} M/s" if x is not None else "")
    x = get("memory", "pdtt", "rss_mib_at_100k_flows")
    held = get("memory", "pdtt", "flows_held")
    target("RSS < 50 MiB at 100k flows", x, x is not None and x < 50,
           f"{x:.1f} MiB ({held:.0f} flows held{', extrapolated' if held and held < 100000 else ''})" if x is not None else "")
    md += ["", "| target | measured | |", "|---|---|---|"] + targets

    text = "\n".join(md) + "\n"
    open(out_md, "w").write(text)


if __name__ == "__main__":
    main()
