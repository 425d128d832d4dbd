"""The churn report: RSS and bridge ports against calls completed, RSS growth after warm-up,
and a PNG plot of both (matplotlib, Agg backend)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

TARGET_GROWTH_MB = 20.0
"""The issue's bound on RSS growth after warm-up over the run (reported, not asserted)."""


@dataclass(frozen=True)
class Sample:
    """One look at the node during the run."""

    t_s: float
    completed: int
    """Calls the node is done with (its agent ended, or abandoned before the answer)."""
    rss_kb: int
    ports: int
    pjsua_calls: int
    live: int


def sample_of(t_s: float, stats: Mapping[str, Any]) -> Sample:
    return Sample(
        t_s=round(t_s, 2),
        completed=int(stats["ended"]) + int(stats["abandoned"]),
        rss_kb=int(stats["rss_kb"]),
        ports=int(stats["ports"]),
        pjsua_calls=int(stats["pjsua_calls"]),
        live=int(stats["live"]),
    )


def rss_growth(samples: Sequence[Sample], warmup_calls: int) -> dict[str, Any]:
    """RSS at the first sample past `warmup_calls` completed calls, at the end, the growth in
    between, and the least-squares slope after warm-up (MB per 1000 calls)."""
    after = [s for s in samples if s.completed >= warmup_calls]
    out: dict[str, Any] = {
        "warmup_calls": warmup_calls,
        "start_mb": _mb(samples[0].rss_kb) if samples else None,
        "peak_mb": _mb(max(s.rss_kb for s in samples)) if samples else None,
        "target_growth_mb": TARGET_GROWTH_MB,
    }
    if len(after) < 2:
        return {**out, "warmup_mb": None, "end_mb": None, "growth_after_warmup_mb": None}
    growth = _mb(after[-1].rss_kb - after[0].rss_kb)
    out.update(
        warmup_mb=_mb(after[0].rss_kb),
        end_mb=_mb(after[-1].rss_kb),
        growth_after_warmup_mb=growth,
        within_target=growth < TARGET_GROWTH_MB,
    )
    calls = np.array([s.completed for s in after], dtype=np.float64)
    if calls[-1] > calls[0]:
        rss = np.array([s.rss_kb for s in after], dtype=np.float64) / 1024
        slope = float(np.polyfit(calls, rss, 1)[0])
        out["slope_mb_per_1000_calls"] = round(1000 * slope, 3)
    return out


def _mb(kb: float) -> float:
    return round(kb / 1024, 2)


def samples_json(samples: Sequence[Sample]) -> list[dict[str, Any]]:
    return [asdict(s) for s in samples]


def write_plot(report: Mapping[str, Any], samples: Sequence[Sample], path: Path) -> Path:
    """RSS (MB) and bridge ports / pjsua2 calls against calls completed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [s.completed for s in samples]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6.5), sharex=True)
    top.plot(done, [s.rss_kb / 1024 for s in samples], color="tab:blue", lw=1.2)
    warm = report.get("rss", {}).get("warmup_calls")
    if warm:
        top.axvline(warm, color="grey", ls="--", lw=0.8, label=f"warm-up ({warm} calls)")
        top.legend(loc="lower right")
    top.set_ylabel("node RSS (MB)")
    top.grid(alpha=0.3)
    bottom.plot(done, [s.ports for s in samples], label="bridge ports", lw=1)
    bottom.plot(done, [s.pjsua_calls for s in samples], label="pjsua2 calls", lw=1)
    bottom.plot(done, [s.live for s in samples], label="node calls (agents)", lw=1, ls=":")
    bottom.set_xlabel("calls completed")
    bottom.set_ylabel("count")
    bottom.grid(alpha=0.3)
    bottom.legend(loc="upper right")
    node = report.get("node", {})
    fig.suptitle(
        f"SIP churn: {node.get('calls', '?')} calls, {report.get('concurrency')} at once "
        f"(pjsua2 capacity {report.get('capacity')}), node exit {node.get('exit_code')}"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
