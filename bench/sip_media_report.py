"""The SIP media bench's report (`bench.sip_media`): the outbound RTP's gaps and losses, the
node's CPU and RSS idle and with the calls up, and whether the issue's targets were met."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from bench.report import machine_info, summarize
from bench.sip_media_peer import PeerCall

TARGET_CPU_PCT = 1.0
TARGET_GAP_P99_MS = 30.0
FRAME_S = 0.020


def gaps_ms(times: Sequence[float]) -> list[float]:
    return [1000 * (t1 - t0) for t0, t1 in zip(times, times[1:], strict=False)]


def lost_packets(seqs: Sequence[int]) -> int:
    """Packets missing from RTP sequence numbers in arrival order (16-bit, wrapping;
    reordered packets are not lost)."""
    if not seqs:
        return 0
    unwrapped = [seqs[0]]
    for seq in seqs[1:]:
        step = (seq - unwrapped[-1]) & 0xFFFF
        unwrapped.append(unwrapped[-1] + (step if step < 0x8000 else step - 0x10000))
    return max(unwrapped) - min(unwrapped) + 1 - len(set(unwrapped))


@dataclasses.dataclass(frozen=True)
class CpuWindow:
    """The node over a window: percent of one core (all threads, and by thread label), the
    window's length and the node's RSS at its end."""

    core_pct: float
    threads_pct: dict[str, float]
    seconds: float
    rss_mb: float


def outbound(placed: list[PeerCall], calls: int, window: float) -> dict[str, Any]:
    """The RTP the node sent in the window: packets, losses and gaps, overall and per call."""
    all_gaps: list[float] = []
    received = lost = 0
    per_call = []
    for call in placed:
        r = call.rtp.received
        g = gaps_ms(r.times)
        all_gaps += g
        received += len(r.times)
        lost += lost_packets(r.seqs)
        per_call.append({
            "packets": len(r.times), "lost": lost_packets(r.seqs),
            "gap_max_ms": round(max(g), 3) if g else None,
        })  # fmt: skip
    return {
        "packets": received,
        "expected_packets": round(calls * window / FRAME_S),
        "lost": lost,
        "gap_ms": summarize(all_gaps),
        "per_call": per_call,
    }


def build_report(
    calls: int, idle: CpuWindow, loaded: CpuWindow, placed: list[PeerCall], far_end_pct: float
) -> dict[str, Any]:
    """The bench's JSON report (the keys `bench.sip_media`'s docstring explains)."""
    per_call_pct = (loaded.core_pct - idle.core_pct) / calls
    sent = outbound(placed, calls, loaded.seconds)
    gap = sent["gap_ms"]
    return {
        "calls": calls,
        "rss_mb": {
            "idle": idle.rss_mb,
            "loaded": loaded.rss_mb,
            "per_call": round((loaded.rss_mb - idle.rss_mb) / calls, 3),
        },
        "seconds": round(loaded.seconds, 3),
        "cpu": {
            "idle_core_pct": round(idle.core_pct, 3),
            "idle_threads_pct": idle.threads_pct,
            "loaded_core_pct": round(loaded.core_pct, 3),
            "loaded_threads_pct": loaded.threads_pct,
            "per_call_core_pct": round(per_call_pct, 3),
            "loaded_per_call_core_pct": round(loaded.core_pct / calls, 3),
            "per_call_cpu_s_per_call_minute": round(per_call_pct / 100 * 60, 4),
            "idle_seconds": round(idle.seconds, 3),
        },
        "outbound": sent,
        "inbound": {"packets_sent": sum(call.rtp.sent for call in placed)},
        "far_end_core_pct": round(far_end_pct, 3),
        "targets": {
            "per_call_core_pct_max": TARGET_CPU_PCT,
            "gap_p99_ms_max": TARGET_GAP_P99_MS,
            "cpu_met": per_call_pct <= TARGET_CPU_PCT,
            "gap_met": gap["p99"] is not None and float(gap["p99"]) <= TARGET_GAP_P99_MS,
        },
        "machine": machine_info(),
    }
