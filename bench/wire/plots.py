"""PNG plots of a wire report (matplotlib, Agg backend: no display needed).

- `latency_cdf.png`: the cumulative distribution of voice to voice, one line per step;
- `stages.png`: per step, the node's TurnMarks stages stacked (means, which add up to the
  node's mean voice to voice), topped by what the wire adds (the measured mean voice to voice
  less the node's own);
- `concurrency.png`: p50 and p95 voice to voice against concurrent calls, with the target, one
  pair of lines per arrivals series (burst, staggered).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.wire.measure import line_latencies
from bench.wire.report import NODE_STAGES
from bench.wire.runner import StepResult


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def write_plots(
    report: Mapping[str, Any],
    steps: Sequence[StepResult],
    out_dir: Path,
) -> list[Path]:
    """Write the three plots into `out_dir`; returns their paths."""
    plt = _pyplot()
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [
        _cdf(plt, steps, out_dir / "latency_cdf.png"),
        _stages(plt, report, out_dir / "stages.png"),
        _concurrency(plt, report, out_dir / "concurrency.png"),
    ]
    return paths


def _cdf(plt: Any, steps: Sequence[StepResult], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    drawn = False
    for step in steps:
        values = sorted(
            t.v2v_s * 1000.0
            for tl in step.timelines
            for t in line_latencies(tl)
            if t.v2v_s is not None
        )
        if not values:
            continue
        n = len(values)
        ax.step(
            values,
            [(i + 1) / n for i in range(n)],
            where="post",
            label=f"{step.calls} call(s) {step.arrivals}",
        )
        drawn = True
    if not drawn:
        ax.text(0.5, 0.5, "no answered turns", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("voice to voice (ms), measured on the wire")
    ax.set_ylabel("fraction of turns")
    ax.set_ylim(0, 1.02)
    ax.grid(True, alpha=0.3)
    if drawn:
        ax.legend(loc="lower right")
    ax.set_title("Voice-to-voice latency CDF")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _stages(plt: Any, report: Mapping[str, Any], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    labels: list[str] = []
    bottoms: list[float] = []
    steps = report.get("steps", [])
    for step in steps:
        labels.append(str(step["calls"]))
        bottoms.append(0.0)
    x = list(range(len(labels)))
    for stage in NODE_STAGES:
        heights = [float(s["node_stages_ms"][stage]["mean"] or 0.0) for s in steps]
        ax.bar(x, heights, width=0.5, bottom=bottoms, label=stage)
        bottoms = [b + h for b, h in zip(bottoms, heights, strict=True)]
    wire = []
    for s, b in zip(steps, bottoms, strict=True):
        measured = s["v2v_ms"]["mean"]
        wire.append(max(0.0, float(measured) - b) if measured is not None else 0.0)
    ax.bar(
        x, wire, width=0.5, bottom=bottoms, label="wire + transport", color="lightgray", hatch="//"
    )
    ax.set_xticks(x, labels)
    ax.set_xlabel("concurrent calls")
    ax.set_ylabel("mean latency (ms)")
    ax.set_title("Voice to voice by stage (node TurnMarks, rest: wire)")
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _concurrency(plt: Any, report: Mapping[str, Any], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    rows = report["capacity"]["by_calls"]
    calls = [r["calls"] for r in rows]
    for arrivals in dict.fromkeys(r.get("arrivals", "") for r in rows):
        series = [r for r in rows if r.get("arrivals", "") == arrivals]
        for key, label in (("v2v_p50_ms", "p50"), ("v2v_p95_ms", "p95")):
            pts = [(r["calls"], r[key]) for r in series if r[key] is not None]
            if pts:
                name = f"{label} {arrivals}".strip()
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=name)
    target = float(report["capacity"]["target_p95_ms"])
    ax.axhline(target, color="red", linestyle="--", label=f"target p95 {target:g} ms")
    ax.set_xlabel("concurrent calls")
    ax.set_ylabel("voice to voice (ms)")
    ax.set_title("Latency against concurrency")
    ax.grid(True, alpha=0.3)
    ax.legend()
    if calls:
        ax.set_xticks(sorted(set(calls)))
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
