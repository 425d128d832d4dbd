"""Runs bench calls against a node: N concurrent callers per step, and the capacity sweep.

A step opens `calls` legs and runs a `Caller` on each: with staggered arrivals the calls start
`stagger_s` apart (their turns drift apart as real traffic does); with burst arrivals they start
together and a `TurnGate` has every call speak each line at the same instant (the worst case).
The lines are rendered into frames once (`prepare_lines`), not per call. The step hangs up,
then reads the node's events for the calls (transcripts, per-turn marks) and samples its CPU
and memory before and after, and the bench process's own CPU (`time.process_time`: the
callers, and the mock LLM when it runs here) beside it. A sweep runs steps with more and more
calls until p95 voice to voice passes the target, a call fails or `max_calls`.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import httpx

from bench.report import percentile
from bench.scenario import SpokenLine
from bench.wire.arrivals import TurnGate
from bench.wire.caller import Caller, CallerOptions, PreparedLine, prepare_lines
from bench.wire.events import NodeEvents
from bench.wire.leg import LegError, LegRefused, LegTarget, OpenLeg
from bench.wire.measure import line_latencies
from bench.wire.node import NodeStats, ProcSample
from bench.wire.timeline import CallTimeline
from media.clock import Clock, MonotonicClock

Progress = Callable[[str], None]


@dataclass(frozen=True)
class StepOptions:
    stagger_s: float = 0.5
    """Staggered arrivals: time between call starts (burst arrivals start them together)."""
    arrivals: str = "staggered"
    """"burst" or "staggered" (`bench.wire.arrivals`)."""
    events_timeout_s: float = 20.0
    caller: CallerOptions = field(default_factory=CallerOptions)


@dataclass
class StepResult:
    calls: int
    timelines: list[CallTimeline]
    wall_s: float = 0.0
    cpu_s: float | None = None
    """Node CPU seconds used during the step."""
    peak_rss_bytes: int | None = None
    events_error: str = ""
    arrivals: str = "staggered"
    bench_cpu_s: float | None = None
    """CPU seconds of the bench process during the step (callers, and the mock LLM if here)."""

    @property
    def v2v_s(self) -> list[float]:
        return [t.v2v_s for tl in self.timelines for t in line_latencies(tl) if t.v2v_s is not None]

    def v2v_p95_ms(self) -> float | None:
        v = self.v2v_s
        return percentile(v, 95) * 1000.0 if v else None

    @property
    def failed(self) -> int:
        return sum(1 for t in self.timelines if t.ended_by in ("error", "refused"))


class ProgressBar:
    """A plain-text progress line on stderr: calls finished and lines spoken."""

    def __init__(self, out: Progress | None = None, width: int = 24) -> None:
        self._out = out
        self._tty = out is None and sys.stderr.isatty()
        self._width = width
        self._last = ""

    def show(self, label: str, done: int, total: int, detail: str, *, key: str = "") -> None:
        """Redraw the line (a terminal), or print it when `key` changed (a log)."""
        filled = 0 if total <= 0 else round(self._width * done / total)
        bar = "#" * filled + "." * (self._width - filled)
        text = f"{label} [{bar}] {done}/{total} {detail}"
        if not self._tty and key and key == self._last:
            return
        self._last = key
        if self._out is not None:
            self._out(text)
        elif self._tty:
            print(f"\r{text}\x1b[K", end="", file=sys.stderr, flush=True)
        else:
            print(text, file=sys.stderr, flush=True)

    def end(self) -> None:
        if self._tty:
            print(file=sys.stderr, flush=True)


async def run_call(
    index: int,
    opener: OpenLeg,
    target: LegTarget,
    lines: Sequence[SpokenLine | PreparedLine],
    *,
    clock: Clock,
    options: CallerOptions,
    expect_greeting: str = "",
    callers: list[Caller] | None = None,
    gate: TurnGate | None = None,
) -> CallTimeline:
    """One bench call: open the leg, speak the lines, hang up (and leave `gate`)."""
    caller = Caller(
        lines, clock, call=index, options=options, expect_greeting=expect_greeting, gate=gate
    )
    if callers is not None:
        callers.append(caller)
    tl = caller.timeline
    try:
        async with opener(target, caller.on_audio) as leg:
            caller.answered()
            await caller.run(leg)
            tl.call_id = leg.call_id
            error = str(getattr(leg, "error", "") or "")
            if error:
                tl.error = error
                tl.ended_by = "refused" if error == "refused" else "error"
    except LegRefused as exc:
        tl.ended_by, tl.error = "refused", str(exc)
    except LegError as exc:
        tl.ended_by, tl.error = "error", str(exc)
    finally:
        if gate is not None:
            gate.leave(index)
    if tl.ended is None:
        tl.ended = clock.now()
    return tl


async def run_step(
    calls: int,
    opener: OpenLeg,
    target: LegTarget,
    lines: Sequence[SpokenLine | PreparedLine],
    *,
    expect_greeting: str = "",
    options: StepOptions | None = None,
    clock: Clock | None = None,
    stats: NodeStats | None = None,
    progress: ProgressBar | None = None,
    label: str = "",
) -> StepResult:
    """`calls` concurrent bench calls against `target`."""
    opt = options or StepOptions()
    clk = clock or MonotonicClock()
    bar = progress or ProgressBar()
    async with NodeEvents(target.base_url, target.api_key, target.tenant) as events:
        async with httpx.AsyncClient() as http:
            before = await stats.sample(http) if stats else ProcSample(None, None)
            cpu0 = time.process_time()
            step = _StepCalls(
                calls,
                opener,
                target,
                prepare_lines(lines),
                expect_greeting,
                opt,
                clk,
                bar,
                label,
                time.monotonic(),
            )
            timelines = await step.run(stats, http)
            wall = time.monotonic() - step.started
            bench_cpu = time.process_time() - cpu0
            after = await stats.sample(http) if stats else ProcSample(None, None)
        await _read_events(events, timelines, opt.events_timeout_s)
        cpu = None
        if before.cpu_s is not None and after.cpu_s is not None:
            cpu = after.cpu_s - before.cpu_s
        return StepResult(
            calls=calls,
            timelines=timelines,
            wall_s=wall,
            cpu_s=cpu,
            peak_rss_bytes=stats.peak_rss_bytes if stats else None,
            events_error=events.error,
            arrivals=opt.arrivals,
            bench_cpu_s=bench_cpu,
        )


@dataclass
class _StepCalls:
    """One step's calls in flight: started `stagger_s` apart (burst: together, lines gated),
    with the progress line redrawn (and the node sampled) every second."""

    calls: int
    opener: OpenLeg
    target: LegTarget
    lines: Sequence[PreparedLine]
    expect_greeting: str
    opt: StepOptions
    clk: Clock
    bar: ProgressBar
    label: str
    started: float
    callers: list[Caller] = field(default_factory=list)
    results: list[CallTimeline | None] = field(init=False)
    gate: TurnGate | None = field(init=False)

    def __post_init__(self) -> None:
        self.results = [None] * self.calls
        burst = self.opt.arrivals == "burst"
        self.gate = TurnGate(range(self.calls)) if burst else None

    async def run(self, stats: NodeStats | None, http: httpx.AsyncClient) -> list[CallTimeline]:
        """Every call, to its end; their timelines."""
        t0 = self.clk.now()
        async with asyncio.TaskGroup() as tg:
            tick = tg.create_task(self._ticker(stats, http))
            async with asyncio.TaskGroup() as calls_group:
                for i in range(self.calls):
                    calls_group.create_task(self._one(i, t0))
            tick.cancel()
        self._show()
        self.bar.end()
        return [r for r in self.results if r is not None]

    async def _one(self, i: int, t0: float) -> None:
        if self.gate is None:
            await self.clk.sleep_until(t0 + i * self.opt.stagger_s)
        self.results[i] = await run_call(
            i,
            self.opener,
            self.target,
            self.lines,
            clock=self.clk,
            options=self.opt.caller,
            expect_greeting=self.expect_greeting,
            callers=self.callers,
            gate=self.gate,
        )

    def _show(self) -> None:
        done = sum(r is not None for r in self.results)
        spoken = sum(len(c.timeline.lines) for c in self.callers)
        elapsed = time.monotonic() - self.started
        self.bar.show(
            self.label or f"{self.calls} call(s)",
            done,
            self.calls,
            f"calls done, {spoken}/{self.calls * len(self.lines)} lines, {elapsed:.0f} s",
            key=f"{done}/{spoken}",
        )

    async def _ticker(self, stats: NodeStats | None, http: httpx.AsyncClient) -> None:
        while True:
            self._show()
            if stats is not None:
                await stats.sample(http)
            await asyncio.sleep(1.0)


async def _read_events(events: NodeEvents, timelines: list[CallTimeline], timeout_s: float) -> None:
    """Wait until the node's events say the calls ended; each call's transcripts and per-turn
    marks go into its timeline."""
    ids = [t.call_id for t in timelines if t.call_id]
    await events.wait_ended(ids, timeout_s)
    for tl in timelines:
        if tl.call_id and tl.call_id in events.calls:
            ev = events.calls[tl.call_id]
            tl.transcripts = list(ev.transcripts)
            tl.node_turns = list(ev.turns)


@dataclass(frozen=True)
class SweepOptions:
    start: int = 1
    step: int = 1
    max_calls: int = 16
    target_p95_ms: float = 1500.0


def next_step(result: StepResult, sweep: SweepOptions) -> int | None:
    """The next call count of a sweep after `result`, or None to stop: p95 over the target,
    a failed or refused call, or `max_calls` reached."""
    p95 = result.v2v_p95_ms()
    if p95 is None or p95 > sweep.target_p95_ms or result.failed:
        return None
    n = result.calls + sweep.step
    return n if n <= sweep.max_calls else None


def capacity(results: Sequence[StepResult], target_p95_ms: float) -> int | None:
    """The most concurrent calls with p95 voice to voice within the target and no failed call."""
    ok = [
        r.calls
        for r in results
        if not r.failed and (p := r.v2v_p95_ms()) is not None and p <= target_p95_ms
    ]
    return max(ok) if ok else None
