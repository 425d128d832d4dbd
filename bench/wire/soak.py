"""`voicenode-bench wire --soak MINUTES`: `calls` calls kept going for MINUTES.

Each of `calls` slots runs one bench call after another (a new call replaces one that ends)
until the time is up; calls in flight then finish. Every `sample_s` the soak samples the
node's RSS, the node's late playout frames (`voicenode_playout_frames_late_total` on
/metrics) and the round trip of `GET /healthz`. The node exposes no event-loop lag metric;
/healthz is answered on its event loop, so the round trip is an upper bound of the loop lag
(it adds the HTTP handling and the bench's own loop). Writes report.json, report.md and
soak.png (RSS, /healthz round trip and voice to voice over time) into the out directory.

Targets (reported, not asserted): no failed calls; RSS growth after warm-up (the first fifth
of the soak) at most 5 %; late frames at most 0.1 % of the agent packets received; loop lag
p99 at most 20 ms.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.report import percentile, summarize
from bench.wire.caller import CallerOptions, PreparedLine
from bench.wire.leg import LegTarget, OpenLeg
from bench.wire.measure import line_latencies
from bench.wire.node import NodeStats, parse_metrics
from bench.wire.runner import run_call
from bench.wire.timeline import CallTimeline
from media.clock import Clock, MonotonicClock

LATE_METRIC = "voicenode_playout_frames_late_total"


@dataclass
class SoakSample:
    t: float
    """Seconds since the soak started."""
    rss_bytes: int | None
    healthz_ms: float | None
    late_frames: float | None
    bench_cpu_s: float


@dataclass(frozen=True)
class SoakOptions:
    """What `run_soak` needs of the run's settings."""

    calls: int
    minutes: float
    transport: str
    out: Path
    caller: CallerOptions = field(default_factory=CallerOptions)
    expect_greeting: str = ""


@dataclass
class SoakRun:
    samples: list[SoakSample] = field(default_factory=list)
    timelines: list[CallTimeline] = field(default_factory=list)
    started: float = 0.0


async def run_soak(
    cfg: SoakOptions,
    opener: OpenLeg,
    target: LegTarget,
    lines: Sequence[PreparedLine],
    stats: NodeStats,
    node_info: dict[str, Any],
    progress: Callable[[str], None],
) -> dict[str, Any]:
    """The soak, its report written into `cfg.out`; returns the report."""
    seconds = cfg.minutes * 60.0
    progress(f"soak: {cfg.calls} call(s) for {cfg.minutes:g} min")
    run = await soak_calls(
        cfg.calls, seconds, opener, target, lines, stats, cfg, sample_s=min(5.0, seconds / 10)
    )
    report = soak_report(run, calls=cfg.calls, minutes=cfg.minutes, node=node_info)
    report["transport"] = cfg.transport
    write_soak(report, run, cfg.out)
    progress(render_soak(report).rstrip())
    return report


async def soak_calls(
    calls: int,
    seconds: float,
    opener: OpenLeg,
    target: LegTarget,
    lines: Sequence[PreparedLine],
    stats: NodeStats,
    cfg: SoakOptions,
    *,
    sample_s: float,
    clock: Clock | None = None,
) -> SoakRun:
    """`calls` slots of back-to-back calls for `seconds`, sampled every `sample_s` (on
    `clock`, the monotonic clock by default)."""
    clock = clock or MonotonicClock()
    run = SoakRun(started=clock.now())
    deadline = run.started + seconds
    numbers = iter(range(1_000_000_000))

    async def slot() -> None:
        while clock.now() < deadline:
            tl = await run_call(
                next(numbers),
                opener,
                target,
                lines,
                clock=clock,
                options=cfg.caller,
                expect_greeting=cfg.expect_greeting,
            )
            run.timelines.append(tl)

    async with httpx.AsyncClient() as http, asyncio.TaskGroup() as tg:
        sampler = tg.create_task(_sample(run, stats, http, target, sample_s, clock))
        async with asyncio.TaskGroup() as slots:
            for _ in range(calls):
                slots.create_task(slot())
        sampler.cancel()
    return run


async def _sample(
    run: SoakRun,
    stats: NodeStats,
    http: httpx.AsyncClient,
    target: LegTarget,
    every_s: float,
    clock: Clock,
) -> None:
    cpu0 = time.process_time()
    due = clock.now()
    while True:
        proc = await stats.sample(http)
        healthz: float | None = None
        late: float | None = None
        try:
            t0 = time.monotonic()
            r = await http.get(f"{target.base_url}/healthz", timeout=5.0)
            if r.status_code == 200:
                healthz = (time.monotonic() - t0) * 1000.0
            m = await http.get(f"{target.base_url}/metrics", timeout=5.0)
            values = parse_metrics(m.text).get(LATE_METRIC)
            late = values[0][1] if m.status_code == 200 and values else None
        except httpx.HTTPError:
            pass
        t = clock.now() - run.started
        run.samples.append(SoakSample(t, proc.rss_bytes, healthz, late, time.process_time() - cpu0))
        due += every_s
        await clock.sleep_until(due)


def soak_report(
    run: SoakRun, *, calls: int, minutes: float, node: dict[str, Any]
) -> dict[str, Any]:
    """The soak's report.json document."""
    tls = run.timelines
    v2v = [
        (line.speech_end - run.started, t.v2v_s * 1000.0)
        for tl in tls
        for t, line in zip(
            line_latencies(tl), sorted(tl.lines, key=lambda x: x.start), strict=False
        )
        if t.v2v_s is not None
    ]
    failed = sum(1 for t in tls if t.ended_by in ("error", "refused"))
    rss = [(s.t, s.rss_bytes) for s in run.samples if s.rss_bytes is not None]
    warm = [r for t, r in rss if t >= minutes * 60.0 / 5]
    growth = (warm[-1] - warm[0]) / warm[0] * 100.0 if len(warm) >= 2 else None
    health = [s.healthz_ms for s in run.samples if s.healthz_ms is not None]
    late = [s.late_frames for s in run.samples if s.late_frames is not None]
    packets = sum(len(tl.packets) for tl in tls)
    late_pct = (late[-1] - late[0]) / packets * 100.0 if len(late) >= 2 and packets else None
    lag_p99 = percentile(health, 99) if health else None
    return {
        "bench": "wire-soak",
        "calls": calls,
        "minutes": minutes,
        "node": node,
        "calls_run": len(tls),
        "failed_calls": failed,
        "v2v_ms": summarize([ms for _, ms in v2v]),
        "rss_growth_after_warmup_pct": None if growth is None else round(growth, 2),
        "late_frames_pct": None if late_pct is None else round(late_pct, 4),
        "healthz_rtt_ms": summarize(health),
        "loop_lag_note": "the node exposes no event-loop lag metric: the /healthz round trip "
        "(answered on the node's loop) stands in as an upper bound",
        "bench_cpu_s": round(run.samples[-1].bench_cpu_s, 3) if run.samples else None,
        "targets": {
            "no_failed_calls": {"value": failed, "limit": 0, "met": failed == 0},
            "rss_growth_pct": _met(growth, 5.0),
            "late_frames_pct": _met(late_pct, 0.1),
            "loop_lag_p99_ms": _met(lag_p99, 20.0),
        },
        "series": {
            "t_s": [round(s.t, 2) for s in run.samples],
            "rss_mb": [
                None if s.rss_bytes is None else round(s.rss_bytes / 2**20, 1) for s in run.samples
            ],
            "healthz_ms": [
                None if s.healthz_ms is None else round(s.healthz_ms, 2) for s in run.samples
            ],
            "v2v": [[round(t, 2), round(ms, 1)] for t, ms in v2v],
        },
    }


def _met(value: float | None, limit: float) -> dict[str, Any]:
    v = None if value is None else round(value, 4)
    return {"value": v, "limit": limit, "met": None if v is None else v <= limit}


def render_soak(report: dict[str, Any]) -> str:
    lines = [
        "# Soak (voicenode-bench wire --soak)",
        "",
        f"{report['calls']} call(s) kept going for {report['minutes']:g} min over "
        f"`{report.get('transport', '?')}`: {report['calls_run']} calls, "
        f"{report['failed_calls']} failed; bench CPU {report['bench_cpu_s']} s.",
        "",
        f"Voice to voice ms: p50 {report['v2v_ms']['p50']}, p95 {report['v2v_ms']['p95']}.",
        f"Note: {report['loop_lag_note']}.",
        "",
        "| target | value | limit | met |",
        "| --- | ---: | ---: | --- |",
    ]
    for name, t in report["targets"].items():
        lines.append(f"| {name} | {t['value']} | {t['limit']} | {t['met']} |")
    return "\n".join(lines) + "\n"


def write_soak(report: dict[str, Any], run: SoakRun, out: Path) -> list[Path]:
    """report.json, report.md and soak.png into `out`."""
    from bench.wire.plots import _pyplot

    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (out / "report.md").write_text(render_soak(report), encoding="utf-8")
    plt = _pyplot()
    s = report["series"]
    fig, axes = plt.subplots(3, 1, figsize=(8, 8), sharex=True)
    axes[0].plot(s["t_s"], s["rss_mb"], marker=".")
    axes[0].set_ylabel("node RSS (MB)")
    axes[1].plot(s["t_s"], s["healthz_ms"], marker=".")
    axes[1].set_ylabel("/healthz RTT (ms)")
    axes[2].plot([p[0] for p in s["v2v"]], [p[1] for p in s["v2v"]], ".", markersize=3)
    axes[2].set_ylabel("voice to voice (ms)")
    axes[2].set_xlabel("seconds into the soak")
    fig.tight_layout()
    path = out / "soak.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return [out / "report.json", out / "report.md", path]
