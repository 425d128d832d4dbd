"""Engines whose load estimator is driven by hand: admission tests saturate a node by feeding
its estimator samples (no real load), and free it by moving the estimator's clock past its
window."""

from __future__ import annotations

import dataclasses

from pipeline.engines import Engines
from pipeline.fakes import fake_engines
from pipeline.load import LoadEstimator


class ManualClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class LoadDriver:
    """Fake engines with a real `LoadEstimator` (SLO 1000 ms, base 500 ms, 30 s window)."""

    def __init__(self) -> None:
        self.clock = ManualClock()
        self.estimator = LoadEstimator(
            self.clock, workers={"stt": 1, "tts": 1}, base_ms=500.0, slo_ms=1000.0, window_s=30.0
        )
        self.engines: Engines = dataclasses.replace(fake_engines([]), estimator=self.estimator)

    def saturate(self) -> None:
        """A synthesis that took 2 s: one more call projects 500 + 2 * 2000 ms."""
        self.estimator.observe("tts", 2.0, 1)
        assert self.estimator.saturated

    def relieve(self) -> None:
        """Time passes with no load: the samples leave the window."""
        self.clock.now += self.estimator.window_s + 1
        assert not self.estimator.saturated
