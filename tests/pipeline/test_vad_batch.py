"""VadBatcher with a stand-in batch model: one run per tick, results to their own callers,
when a batch runs, failures and shutdown. The real Silero model: tests/pipeline/test_vad.py."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pytest
from prometheus_client import REGISTRY

from media.frames import AudioFrame, frames_from_samples
from pipeline.fakes import FakeVad, energy_gate, utterance_audio
from pipeline.vad import CONTEXT, WINDOW, VadStream
from pipeline.vad_batch import F32, BatchVadModel, VadBatcher, shared_batcher

ROW = CONTEXT + WINDOW


class SumModel:
    """Probability = the window's first sample; the state counts the windows it has seen."""

    def __init__(self) -> None:
        self.batches: list[int] = []
        self.fail_next = False

    def run_batch(self, windows: F32, h: F32, c: F32) -> tuple[F32, F32, F32]:
        assert windows.shape == (len(windows), ROW) and h.shape == (1, len(windows), 128)
        self.batches.append(len(windows))
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("model broke")
        return windows[:, 0].copy(), h + 1, c + 2


class ManualTimer:
    """The batcher's deadline, fired by the test (no wall-clock race under load)."""

    def __init__(self) -> None:
        self.pending: list[tuple[float, Callable[[], None]]] = []
        self.cancelled = 0

    def __call__(self, delay: float, callback: Callable[[], None]) -> ManualTimer:
        self.pending.append((delay, callback))
        return self

    def cancel(self) -> None:
        self.cancelled += 1
        self.pending.clear()

    def fire(self) -> None:
        ((_, callback),) = self.pending
        self.pending.clear()
        callback()


def manual(model: SumModel) -> tuple[VadBatcher, ManualTimer]:
    timer = ManualTimer()
    return VadBatcher(model, asyncio.get_running_loop(), later=timer), timer


class Stream:
    """Stands in for a VadStream whose gate is open (the batcher holds it weakly)."""


def window(value: float) -> F32:
    return np.full(ROW, value, dtype=np.float32)


def state(value: float = 0.0) -> F32:
    return np.full((1, 1, 128), value, dtype=np.float32)


def open_streams(batcher: VadBatcher, n: int) -> list[Stream]:
    streams = [Stream() for _ in range(n)]
    for s in streams:
        batcher.opened(s)
    return streams


async def test_a_ticks_submissions_run_once_and_each_caller_gets_its_own_row() -> None:
    model = SumModel()
    batcher = VadBatcher(model, asyncio.get_running_loop())
    _streams = open_streams(batcher, 5)
    futures = [batcher.submit(window(k / 10), state(k), state(-k)) for k in range(5)]
    results = await asyncio.gather(*futures)
    assert model.batches == [5] and batcher.runs == 1
    for k, (p, h, c) in enumerate(results):
        assert p == pytest.approx(k / 10)
        assert h.shape == (1, 1, 128) and float(h[0, 0, 0]) == k + 1
        assert float(c[0, 0, 0]) == -k + 2


async def test_a_batch_runs_as_soon_as_every_open_stream_has_submitted() -> None:
    model = SumModel()
    batcher, timer = manual(model)
    a, b = Stream(), Stream()
    batcher.opened(a)
    batcher.opened(b)
    first = batcher.submit(window(0.1), state(), state())
    await asyncio.sleep(0)
    assert not first.done()  # b may still submit in this tick
    second = batcher.submit(window(0.2), state(), state())
    assert second.done() and model.batches == [2]  # the last submission ran the batch
    assert first.done() and timer.pending == [] and timer.cancelled == 1


async def test_a_lone_calls_window_is_scored_without_waiting() -> None:
    model = SumModel()
    batcher = VadBatcher(model, asyncio.get_running_loop())
    _streams = open_streams(batcher, 1)
    only = batcher.submit(window(0.7), state(), state())
    assert only.done() and only.result()[0] == pytest.approx(0.7)


async def test_run_alone_scores_at_once_only_when_no_other_stream_could_join() -> None:
    model = SumModel()
    batcher, _ = manual(model)
    a, b = open_streams(batcher, 2)
    assert batcher.run_alone(window(0.5), state(), state()) is None  # b may submit
    batcher.closed(b)
    p, h, _ = batcher.run_alone(window(0.5), state(), state()) or (0.0, state(), state())
    assert p == pytest.approx(0.5) and float(h[0, 0, 0]) == 1 and model.batches == [1]
    batcher.opened(b)
    pending = batcher.submit(window(0.1), state(), state())
    batcher.closed(b)  # a's window now runs: nothing is left pending
    assert pending.done() and batcher.run_alone(window(0.2), state(), state()) is not None
    assert model.batches == [1, 1, 1] and batcher.runs == 3


async def test_a_stream_whose_gate_closes_no_longer_holds_the_tick() -> None:
    model = SumModel()
    batcher, _ = manual(model)
    a, b = Stream(), Stream()
    batcher.opened(a)
    batcher.opened(b)
    pending = batcher.submit(window(0.1), state(), state())
    await asyncio.sleep(0)
    assert not pending.done()
    batcher.closed(b)
    assert pending.done() and model.batches == [1]


async def test_a_batch_waiting_for_streams_that_do_not_submit_runs_at_its_deadline() -> None:
    model = SumModel()
    batcher, timer = manual(model)
    _streams = open_streams(batcher, 3)
    first = batcher.submit(window(0.3), state(), state())
    second = batcher.submit(window(0.4), state(), state())
    assert [delay for delay, _ in timer.pending] == [0.02]  # one deadline, one frame away
    await asyncio.sleep(0)
    assert not first.done() and model.batches == []
    timer.fire()
    assert first.result()[0] == pytest.approx(0.3) and second.result()[0] == pytest.approx(0.4)
    assert model.batches == [2]


async def test_the_deadline_on_the_loops_clock() -> None:
    model = SumModel()
    batcher = VadBatcher(model, asyncio.get_running_loop(), window_s=0.02)
    _streams = open_streams(batcher, 2)
    p, _, _ = await asyncio.wait_for(batcher.submit(window(0.3), state(), state()), 10)
    assert p == pytest.approx(0.3) and model.batches == [1]


def test_the_tick_is_at_most_one_frame() -> None:
    loop = asyncio.new_event_loop()
    try:
        with pytest.raises(ValueError, match="within one frame"):
            VadBatcher(SumModel(), loop, window_s=0.021)
    finally:
        loop.close()


async def test_a_failing_run_fails_only_its_own_batch() -> None:
    model = SumModel()
    batcher = VadBatcher(model, asyncio.get_running_loop(), window_s=0.0)
    _streams = open_streams(batcher, 3)
    model.fail_next = True
    doomed = [batcher.submit(window(0.1), state(), state()) for _ in range(3)]
    outcomes = await asyncio.gather(*doomed, return_exceptions=True)
    assert all(isinstance(o, RuntimeError) for o in outcomes)
    p, _, _ = await batcher.submit(window(0.4), state(), state())
    assert p == pytest.approx(0.4) and model.batches == [3, 1]


async def test_a_cancelled_submission_is_left_out_of_the_run() -> None:
    model = SumModel()
    batcher = VadBatcher(model, asyncio.get_running_loop())
    _streams = open_streams(batcher, 2)
    gone = batcher.submit(window(0.1), state(), state())
    gone.cancel()  # its caller went away while the tick was open
    kept = batcher.submit(window(0.2), state(), state())
    p, _, _ = await kept
    assert p == pytest.approx(0.2) and model.batches == [1]


async def test_close_fails_what_is_pending() -> None:
    model = SumModel()
    batcher, timer = manual(model)
    a, b = Stream(), Stream()
    batcher.opened(a)
    batcher.opened(b)
    pending = batcher.submit(window(0.1), state(), state())
    batcher.close()
    with pytest.raises(RuntimeError, match="closed"):
        await pending
    assert model.batches == [] and timer.pending == []


async def test_batch_sizes_and_waits_are_exported_as_the_vad_engine() -> None:
    def sample(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, {"engine": "vad", **labels}) or 0.0

    runs, small = "voicenode_engine_batch_size_count", "voicenode_engine_batch_size_bucket"
    waits = "voicenode_engine_queue_wait_seconds_count"
    before = (sample(runs), sample(small, le="2.0"), sample(waits))
    batcher = VadBatcher(SumModel(), asyncio.get_running_loop())
    _streams = open_streams(batcher, 3)
    await asyncio.gather(*(batcher.submit(window(0.1), state(), state()) for _ in range(3)))
    assert sample(runs) == before[0] + 1  # one run ...
    assert sample(small, le="2.0") == before[1]  # ... of 3 windows
    assert sample(waits) == before[2] + 3  # each window's wait


async def test_the_loop_shares_one_batcher_per_model() -> None:
    model = SumModel()
    assert isinstance(model, BatchVadModel)
    assert shared_batcher(model) is shared_batcher(model)
    assert shared_batcher(SumModel()) is not shared_batcher(model)


def frames(samples: npt.NDArray[np.int16]) -> list[AudioFrame]:
    return list(frames_from_samples(samples))


async def test_score_without_a_batch_model_runs_inline_like_feed() -> None:
    quiet = np.zeros(8000, np.int16)
    audio = np.concatenate([quiet, utterance_audio(0, 1.0), quiet])
    fed = VadStream(FakeVad(), gate=energy_gate(2))
    scored = VadStream(FakeVad(), gate=energy_gate(2))
    expected = [fed.feed(f) for f in frames(audio)]
    got = [await scored.score(f) for f in frames(audio)]
    assert got == expected and max(got) == 1.0
    assert scored.silero_windows == fed.silero_windows > 0


async def test_a_closed_stream_no_longer_holds_the_others_batch() -> None:
    """The session closes its stream when its inbound audio ends (mid-speech too)."""
    model = SumModel()
    batcher, _ = manual(model)
    speaking = frames(utterance_audio(0, 0.1))
    a = VadStream(FakeVad(), gate=energy_gate(2), batcher=batcher)
    b = VadStream(FakeVad(), gate=energy_gate(2), batcher=batcher)
    await b.score(speaking[0])  # b's gate opens; no window yet
    await a.score(speaking[0])
    waiting = asyncio.ensure_future(a.score(speaking[1]))  # a's first window: waits for b
    await asyncio.sleep(0)
    assert not waiting.done() and model.batches == []
    b.close()
    await asyncio.wait_for(waiting, 10)  # done at once: no deadline fired
    assert model.batches == [1] and a.silero_windows == 1
