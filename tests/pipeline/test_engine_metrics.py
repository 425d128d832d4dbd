"""The engines' CPU counter: the CPU time a block takes on the calling thread, by engine."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from pipeline.engine_metrics import engine_cpu


def _cpu(engine: str) -> float:
    value = REGISTRY.get_sample_value("voicenode_engine_cpu_seconds_total", {"engine": engine})
    return value or 0.0


def test_a_block_counts_the_cpu_time_its_clock_reads_for_its_engine() -> None:
    readings = iter([10.0, 10.25, 3.0, 3.5])
    before, other = _cpu("test-a"), _cpu("test-b")
    with engine_cpu("test-a", clock=lambda: next(readings)):
        pass
    assert _cpu("test-a") == pytest.approx(before + 0.25)
    with pytest.raises(RuntimeError), engine_cpu("test-a", clock=lambda: next(readings)):
        raise RuntimeError("a failed model call is counted too")
    assert _cpu("test-a") == pytest.approx(before + 0.75)
    assert _cpu("test-b") == other


def test_the_default_clock_is_the_threads_cpu_time() -> None:
    before = _cpu("test-spin")
    with engine_cpu("test-spin"):
        total = sum(i * i for i in range(200_000))  # some CPU work
    assert total > 0
    assert _cpu("test-spin") > before
