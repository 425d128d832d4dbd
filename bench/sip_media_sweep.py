"""The SIP media bench over a range of concurrent calls, with a plot.

    python -m bench.sip_media_sweep [--calls 25,50,100,150,200] [--seconds 20] [--out DIR]

Runs `bench.sip_media` (a fresh node process each time, the echo agent, PCMU streamed both ways,
kernel receive times) once per call count and writes DIR/report.json (every run's report, the
machine and its load) and DIR/sweep.png: the node's CPU per call (percent of one core, the idle
baseline taken off), the outbound packet gap p50/p99/max, and the node's RSS against the number
of concurrent calls, with the issue's targets (CPU per call <= 1 % of a core, gap p99 <= 30 ms).
Only meaningful on a quiet machine: each run's load average is in its report.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from bench.sip_media import TARGET_CPU_PCT, TARGET_GAP_P99_MS, BenchError, measure


def run(calls: list[int], seconds: float) -> list[dict[str, Any]]:
    reports = []
    for n in calls:
        load = os.getloadavg()[0]
        report = asyncio.run(measure(calls=n, seconds=seconds, idle_seconds=seconds / 2))
        report["load_avg_1m_before"] = round(load, 2)
        reports.append(report)
        cpu, gap = report["cpu"]["per_call_core_pct"], report["outbound"]["gap_ms"]
        print(f"{n} calls: {cpu} % of a core per call, gap p99 {gap['p99']} ms", file=sys.stderr)
    return reports


def write_plot(reports: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = [r["calls"] for r in reports]
    fig, (cpu, gap, rss) = plt.subplots(3, 1, figsize=(8, 9), sharex=True)
    cpu.plot(n, [r["cpu"]["per_call_core_pct"] for r in reports], marker="o")
    cpu.axhline(TARGET_CPU_PCT, color="tab:red", ls="--", lw=0.8, label="target")
    cpu.set_ylabel("node CPU per call\n(% of one core)")
    for key, style in (("p50", "-"), ("p99", "-"), ("max", ":")):
        gap.plot(
            n, [r["outbound"]["gap_ms"][key] for r in reports], marker="o", ls=style, label=key
        )
    gap.axhline(TARGET_GAP_P99_MS, color="tab:red", ls="--", lw=0.8, label="p99 target")
    gap.set_ylabel("outbound RTP gap (ms)")
    rss.plot(n, [r["rss_mb"]["loaded"] for r in reports], marker="o", label="with the calls")
    rss.plot(n, [r["rss_mb"]["idle"] for r in reports], marker="o", ls=":", label="idle")
    rss.set_ylabel("node RSS (MB)")
    rss.set_xlabel("concurrent SIP calls (echo agent, PCMU both ways)")
    for ax in (cpu, gap, rss):
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left")
    fig.suptitle("SIP media path: one node process, pjsua2 server build")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.sip_media_sweep", description=__doc__)
    p.add_argument("--calls", default="25,50,100,150,200")
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--out", type=Path, default=Path("var/sip-media-sweep"))
    args = p.parse_args(argv)
    try:
        calls = [int(c) for c in args.calls.split(",")]
        reports = run(calls, args.seconds)
    except (ValueError, BenchError) as exc:
        print(f"sip_media_sweep: {exc}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report.json").write_text(json.dumps(reports, indent=2) + "\n")
    write_plot(reports, args.out / "sweep.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
