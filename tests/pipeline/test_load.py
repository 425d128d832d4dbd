"""The load estimator on a virtual clock: service times recovered from jobs' latencies and the
queue they found, the projection for one more call, the SLO, the window, a stuck engine."""

from __future__ import annotations

import math

import pytest

from pipeline.load import LoadEstimator, p95


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def estimator(clock: Clock, *, slo_ms: float = 0.0, window_s: float = 30.0) -> LoadEstimator:
    return LoadEstimator(
        clock, workers={"stt": 1, "tts": 1}, base_ms=500.0, slo_ms=slo_ms, window_s=window_s
    )


def test_an_idle_node_projects_its_base_and_admits() -> None:
    load = estimator(Clock(), slo_ms=1000)
    assert load.projected_v2v_ms() == 500.0
    assert load.headroom_ms() == 500.0
    assert not load.saturated
    assert math.isnan(estimator(Clock()).headroom_ms())  # no SLO: no headroom to speak of


def test_queued_jobs_give_back_the_service_time_and_the_depth() -> None:
    clock = Clock()
    load = estimator(clock)
    jobs = [load.begin("stt") for _ in range(3)]  # found 1, 2, 3 jobs (itself included)
    assert load.depth("stt") == 3
    for job in jobs:  # FIFO, 100 ms each: latencies 0.1, 0.2, 0.3
        clock.now += 0.1
        load.end(job)
    assert load.service_p95_s("stt") == pytest.approx(0.1)
    # the window's jobs found 3 in the engine; one more call's job makes 4: 3 wait ahead
    assert load.stage_s("stt") == pytest.approx(0.1 * (1 + 3))
    assert load.projected_v2v_ms() == pytest.approx(500 + 400)


def test_more_workers_wait_less() -> None:
    clock = Clock()
    load = LoadEstimator(clock, workers={"tts": 2}, base_ms=0.0)
    a, b = load.begin("tts"), load.begin("tts")
    clock.now = 0.2
    load.end(a)
    load.end(b)  # neither waited: two workers
    assert load.service_p95_s("tts") == pytest.approx(0.2)
    assert load.stage_s("tts") == pytest.approx(0.2 * (1 + 1 / 2))


def test_saturated_over_the_slo_until_the_samples_leave_the_window() -> None:
    clock = Clock()
    load = estimator(clock, slo_ms=1000, window_s=30)
    job = load.begin("tts")
    clock.now = 0.5
    load.end(job)  # 500 ms; one more call: 1000 ms; 500 + 1000 > 1000
    assert load.saturated and load.headroom_ms() == pytest.approx(-500)
    clock.now = 30.4
    assert load.saturated
    clock.now = 30.6  # no recent evidence of load: admit again
    assert not load.saturated and load.projected_v2v_ms() == 500.0


def test_a_stuck_job_counts_for_its_age_even_without_samples() -> None:
    clock = Clock()
    load = estimator(clock, slo_ms=2000)
    job = load.begin("stt")
    clock.now = 1.0
    assert load.stage_s("stt") == 1.0 and not load.saturated
    clock.now = 1.6
    assert load.saturated
    load.end(job, served=False)  # it failed: no sample, and it no longer counts
    assert load.depth("stt") == 0 and load.service_p95_s("stt") is None
    assert not load.saturated
    load.end(job)  # ending twice is a no-op
    assert load.service_p95_s("stt") is None


def test_measure_samples_served_calls_only() -> None:
    clock = Clock()
    load = estimator(clock)
    with load.measure("stt") as skipped:
        clock.now += 0.3
        skipped.skip()  # a partial that never reached the model
    with pytest.raises(RuntimeError), load.measure("stt"):
        clock.now += 0.3
        raise RuntimeError("decode failed")
    assert load.service_p95_s("stt") is None and load.depth("stt") == 0
    with load.measure("stt"):
        clock.now += 0.25
    assert load.service_p95_s("stt") == pytest.approx(0.25)


def test_samples_are_bounded_and_p95_is_nearest_rank() -> None:
    clock = Clock()
    load = LoadEstimator(clock, workers={"stt": 1}, base_ms=0.0, max_samples=20)
    for i in range(100):
        load.observe("stt", float(i), 1)
    assert load.service_p95_s("stt") == 98.0  # of the last 20 (80..99); of all 100: 94
    assert p95([]) is None
    assert p95(range(1, 21)) == 19
    assert p95([3.0]) == 3.0


def test_workers_must_be_positive() -> None:
    with pytest.raises(ValueError, match="worker"):
        LoadEstimator(Clock(), workers={"stt": 0}, base_ms=0.0)
