"""Admission from load: what the engines' recent service times and queue depths say a new
call's voice-to-voice would be. Sans-IO: fed jobs (`begin`/`end`, or `observe`) on an
injected clock; the node's engines feed it (`pipeline.engines`), admission reads it.

The model, per engine e (stt, tts), over the last `window_s` seconds:

- `w` workers serve its jobs; a job that finds `n` jobs in the engine (itself included)
  waits for `max(0, n - w)` of them to finish, one every `s / w` seconds, so its latency is
  `L = s * (1 + max(0, n - w) / w)`; each finished job gives a service-time sample
  `s = L / (1 + max(0, n - w) / w)` (failed jobs and ones that never reached the model give
  none);
- `s95` is the p95 of those samples, `n` the larger of what a job arriving now would find
  and the p95 of what the window's jobs found on arrival;
- with one more call, one more job is there: `stage = s95 * (1 + max(0, n + 1 - w) / w)`,
  and never less than the age of the oldest job still in the engine (a stuck engine);

projected voice-to-voice p95 = `base_ms` + the sum of the stages. The queue is taken as FIFO
(a job that jumps it, a final or a first clause, waits less: the projection errs high), and
an engine without samples in the window adds nothing (no evidence of load: an idle node
admits). `slo_ms` 0 turns refusing off; the projection is still kept.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import TracebackType

ENGINES = ("stt", "tts")


@dataclass(frozen=True, slots=True)
class Job:
    """One job in an engine, from `begin` to `end`."""

    engine: str
    id: int
    started: float
    found: int
    """Jobs in the engine when it arrived, itself included."""


@dataclass(slots=True)
class _Engine:
    workers: int
    samples: deque[tuple[float, float]] = field(default_factory=deque)
    """(when, service seconds)."""
    arrivals: deque[tuple[float, int]] = field(default_factory=deque)
    """(when, jobs found in the engine)."""
    inflight: dict[int, float] = field(default_factory=dict)
    """Job id -> when it started."""


def p95(values: Iterable[float]) -> float | None:
    """Nearest-rank 95th percentile; None for no values."""
    ordered = sorted(values)
    if not ordered:
        return None
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


class LoadEstimator:
    """The engines' recent load, and the voice-to-voice p95 it projects for one more call."""

    def __init__(
        self,
        clock: Callable[[], float],
        *,
        workers: Mapping[str, int],
        base_ms: float,
        slo_ms: float = 0.0,
        window_s: float = 30.0,
        max_samples: int = 512,
    ) -> None:
        if any(w < 1 for w in workers.values()):
            raise ValueError(f"every engine needs at least one worker: {dict(workers)}")
        self._clock = clock
        self._engines = {name: _Engine(w) for name, w in workers.items()}
        self.base_ms = base_ms
        self.slo_ms = slo_ms
        self.window_s = window_s
        self._max = max_samples
        self._ids = itertools.count()

    # ---- feeding ----

    def begin(self, engine: str) -> Job:
        """A job enters `engine` (queued or running)."""
        e = self._engines[engine]
        job = Job(engine, next(self._ids), self._clock(), len(e.inflight) + 1)
        e.inflight[job.id] = job.started
        return job

    def end(self, job: Job, *, served: bool = True) -> None:
        """`job` left its engine; `served`: it ran on the model and succeeded (a sample)."""
        e = self._engines[job.engine]
        if e.inflight.pop(job.id, None) is None:
            return
        if served:
            waited_for = max(0, job.found - e.workers)
            latency = max(0.0, self._clock() - job.started)
            self.observe(job.engine, latency / (1 + waited_for / e.workers), job.found)

    def measure(self, engine: str) -> Measuring:
        """`with load.measure("stt") as m:` around one engine call (`m.skip()` when it never
        reached the model; an exception gives no sample)."""
        return Measuring(self, self.begin(engine))

    def observe(self, engine: str, service_s: float, found: int) -> None:
        """A service-time sample, and the jobs its job found in the engine on arrival."""
        e = self._engines[engine]
        now = self._clock()
        e.samples.append((now, service_s))
        e.arrivals.append((now, found))
        while len(e.samples) > self._max:
            e.samples.popleft()
            e.arrivals.popleft()

    # ---- reading ----

    def depth(self, engine: str) -> int:
        """Jobs in the engine now (running and queued)."""
        return len(self._engines[engine].inflight)

    def _recent(self, e: _Engine) -> None:
        horizon = self._clock() - self.window_s
        while e.samples and e.samples[0][0] < horizon:
            e.samples.popleft()
            e.arrivals.popleft()

    def samples(self, engine: str) -> int:
        """Service-time samples in the window."""
        e = self._engines[engine]
        self._recent(e)
        return len(e.samples)

    def service_p95_s(self, engine: str) -> float | None:
        e = self._engines[engine]
        self._recent(e)
        return p95(s for _, s in e.samples)

    def stage_s(self, engine: str) -> float:
        """The engine's projected p95 time with one more call (see the module doc)."""
        e = self._engines[engine]
        self._recent(e)
        oldest = min(e.inflight.values(), default=None)
        stuck = 0.0 if oldest is None else max(0.0, self._clock() - oldest)
        s95 = p95(s for _, s in e.samples)
        if s95 is None:
            return stuck
        found = max(len(e.inflight) + 1, int(p95(n for _, n in e.arrivals) or 0))
        waits_for = max(0, found + 1 - e.workers)
        return max(stuck, s95 * (1 + waits_for / e.workers))

    def projected_v2v_ms(self) -> float:
        """The voice-to-voice p95 projected with one more call."""
        return self.base_ms + 1000 * sum(self.stage_s(name) for name in self._engines)

    def headroom_ms(self) -> float:
        """`slo_ms` minus the projection (negative: saturated); NaN without an SLO."""
        if self.slo_ms <= 0:
            return math.nan
        return self.slo_ms - self.projected_v2v_ms()

    @property
    def saturated(self) -> bool:
        """Admitting one more call would push the projected p95 over `slo_ms`."""
        return self.slo_ms > 0 and self.projected_v2v_ms() > self.slo_ms


class Measuring:
    """One measured engine call (`LoadEstimator.measure`)."""

    def __init__(self, load: LoadEstimator, job: Job) -> None:
        self._load = load
        self.job = job
        self._served = True

    def skip(self) -> None:
        """The call returned without running on the model (a skipped partial, a cache hit)."""
        self._served = False

    def __enter__(self) -> Measuring:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._load.end(self.job, served=self._served and exc_type is None)
