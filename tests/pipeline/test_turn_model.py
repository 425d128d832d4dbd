"""The audio end-of-turn model (Smart Turn v3.2) on its engine: real model, real speech
(espeak-ng), batched runs equal to single ones, a failing run failing only its own requests."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from agents.spec import TurnSettings
from media.frames import SAMPLE_RATE
from pipeline.turn import SpeechPaused, TurnDetector
from pipeline.turn_model import (
    SmartTurnModel,
    TurnModelEngine,
    TurnModelError,
    default_model_path,
    features,
)
from tests.support.speech import espeak

COMPLETE = "I would like to book a cleaning for tomorrow morning."
PAUSE = np.zeros(SAMPLE_RATE // 5, dtype=np.int16)  # the 200 ms the pause is scored after


def at_pause(text: str) -> npt.NDArray[np.int16]:
    return np.concatenate([espeak(text), PAUSE])


@pytest.fixture(scope="module")
def model() -> SmartTurnModel:
    assert default_model_path().is_file(), "make venv installs the model (deploy/models)"
    return SmartTurnModel()


def test_features_are_the_last_eight_seconds_left_padded() -> None:
    short = features(np.full(SAMPLE_RATE, 1000, dtype=np.int16))
    assert short.shape == (80, 800) and short.dtype == np.float32
    assert np.isfinite(short).all()
    long = np.concatenate([np.zeros(SAMPLE_RATE * 5, np.int16), espeak(COMPLETE)])
    assert np.array_equal(features(long), features(long[-8 * SAMPLE_RATE :]))


FINISHED = [
    "I would like to book a cleaning for tomorrow morning.",
    "Can you hear me?",
    "Yes.",
    "My tooth hurts, can someone see me today?",
    "I need to cancel my appointment.",
    "That's all, thank you.",
]
UNFINISHED = [
    "My number is five five five, two one",
    "I would like to book a cleaning for",
    "I'd like to, um",
    "Can I move my appointment to",
    "It's about my",
    "The card number is four one one one",
]


async def test_model_and_transcript_together_wait_on_every_unfinished_line(
    model: SmartTurnModel,
) -> None:
    """Each line's verdict from the real model at its pause, with its words as the transcript:
    every unfinished line gets the longest window, every finished one at most the complete
    window. (espeak-ng's flat prosody fools the model on some lines: "...a cleaning for"
    reads 0.99; the transcript's trailing "for" keeps that turn open.)"""
    engine = TurnModelEngine(model)
    engine.start()
    try:
        scores = {t: await engine.probability(at_pause(t)) for t in FINISHED + UNFINISHED}
    finally:
        engine.close()
    # what the model alone gets right on this voice (deterministic speech and model; the
    # bounds leave room for onnxruntime's float differences between machines)
    assert sorted(scores[t] for t in FINISHED)[2] > 0.5  # most finished lines read complete
    for line in ("My number is five five five, two one", "I'd like to, um"):
        assert scores[line] < 0.1
    windows = {t: window_after(t, scores[t]) for t in scores}
    assert {t: windows[t] for t in UNFINISHED} == {t: 1.5 for t in UNFINISHED}
    assert all(windows[t] <= 0.4 for t in FINISHED), windows


def window_after(text: str, probability: float) -> float:
    """The end-of-turn window the detector sets at this line's pause."""
    det = TurnDetector(
        TurnSettings(silence_ms=600, complete_silence_ms=400, incomplete_silence_ms=1500)
    )
    t = 0.0
    for _ in range(50):  # a second of speech
        t += 0.02
        det.feed(0.9, t)
    paused: list[SpeechPaused] = []
    while not paused:
        t += 0.02
        paused = [ev for ev in det.feed(0.0, t) if isinstance(ev, SpeechPaused)]
    det.update_transcript(text)  # the pause's decode, as the session gets it
    assert det.update_model(probability, paused[0].speech_end)
    return det.window_s()


async def test_requests_waiting_together_run_as_one_batch_with_the_same_results(
    model: SmartTurnModel,
) -> None:
    lines = [at_pause(t) for t in (FINISHED[0], UNFINISHED[0], "Yes.", "Can you hear me?")]
    alone = [model.predict([features(a)])[0] for a in lines]
    gate = _Gate(model)
    engine = TurnModelEngine(gate)  # type: ignore[arg-type]
    engine.start()
    try:
        first = asyncio.ensure_future(engine.probability(lines[0]))
        await asyncio.to_thread(gate.entered.wait, 30)  # the first run holds the model
        rest = [asyncio.ensure_future(engine.probability(a)) for a in lines[1:]]
        await queued(engine, 3)
        gate.release.set()
        scores = [await first] + [await r for r in rest]
    finally:
        engine.close()
    assert gate.batches == [1, 3]
    assert scores == pytest.approx(alone, abs=1e-4)


async def queued(engine: TurnModelEngine, n: int) -> None:
    """Until `n` requests wait (each `probability` call queues on its first step)."""
    for _ in range(100):
        if engine.depth >= n:
            return
        await asyncio.sleep(0)  # one loop step: let the requests' tasks run
    raise AssertionError(f"{engine.depth} requests queued, not {n}")


class _Gate:
    """The real model, with its first run held until `release` (so requests queue behind it)."""

    def __init__(self, model: SmartTurnModel) -> None:
        import threading

        self._model = model
        self.entered = threading.Event()
        self.release = threading.Event()
        self.batches: list[int] = []

    def predict(self, batch: Sequence[npt.NDArray[np.float32]]) -> list[float]:
        self.batches.append(len(batch))
        self.entered.set()
        self.release.wait(30)
        return self._model.predict(batch)


class _Flaky:
    """Fails any run that contains a feature matrix of all-equal values (a silent request)."""

    def __init__(self) -> None:
        self.runs: list[int] = []

    def predict(self, batch: Sequence[npt.NDArray[np.float32]]) -> list[float]:
        self.runs.append(len(batch))
        if any(float(np.ptp(f)) == 0.0 for f in batch):
            raise RuntimeError("bad input")
        return [0.5] * len(batch)


async def test_a_failing_input_fails_only_its_own_request() -> None:
    flaky = _Flaky()
    engine = TurnModelEngine(flaky)  # type: ignore[arg-type]
    speech = at_pause(COMPLETE)
    silent = np.zeros(SAMPLE_RATE, dtype=np.int16)
    # queued before the worker starts: both go into the first run
    results = [asyncio.ensure_future(engine.probability(a)) for a in (speech, silent)]
    await queued(engine, 2)
    engine.start()
    try:
        done = await asyncio.gather(*results, return_exceptions=True)
    finally:
        engine.close()
    assert done[0] == 0.5
    assert isinstance(done[1], TurnModelError)
    assert flaky.runs == [2, 1, 1]


async def test_closing_fails_what_is_pending_and_refuses_new_requests() -> None:
    engine = TurnModelEngine(_Flaky())  # type: ignore[arg-type]
    pending = asyncio.ensure_future(engine.probability(at_pause("Yes.")))
    await queued(engine, 1)
    engine.close()  # never started: the request is failed, not left hanging
    with pytest.raises(TurnModelError):
        await pending
    with pytest.raises(TurnModelError):
        await engine.probability(at_pause("Yes."))


def test_a_missing_model_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(TurnModelError, match="turn_model.model"):
        SmartTurnModel(tmp_path / "none.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(TurnModelError, match="cannot load"):
        SmartTurnModel(bad)
