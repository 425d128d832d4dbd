"""Silero v6, batched across calls: the edited graph and the real model on real speech.

The reference is the model as faster-whisper ships it, run one window per call (what
`VadStream.feed` did before batching); the batched runs must give every call the same
probabilities (within 1e-5) while scoring several calls' windows in one run.
"""

from __future__ import annotations

import asyncio

import numpy as np
import numpy.typing as npt
import onnxruntime
import pytest

from config.schema import TtsSettings
from media.frames import SAMPLE_RATE, frames_from_samples
from pipeline.silero_graph import NotSileroV6, batched_silero, emit, parse
from pipeline.tts import TtsEngine
from pipeline.vad import SileroModel, VadStream, default_silero_path, webrtc_gate
from pipeline.vad_batch import VadBatcher
from tests.pipeline.vad_cost import LINES, ShippedSilero
from tests.support.speech import espeak
from voicenode.simulate import caller_voice

Samples = npt.NDArray[np.int16]
F32 = npt.NDArray[np.float32]
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def calls(tmp_path_factory: pytest.TempPathFactory) -> list[Samples]:
    """Four callers: three Piper lines (caller voice), one espeak-ng; different lead-ins and
    a pause inside, so their gates open and close at different frames."""
    tts = TtsEngine(TtsSettings())
    speech = [caller_voice(tts, line) for line in LINES[:3]]
    speech.append(espeak(LINES[3]))
    out = []
    for k, s in enumerate(speech):
        lead = np.zeros(int(SAMPLE_RATE * (0.1 + 0.37 * k)), np.int16)
        pause = np.zeros(int(SAMPLE_RATE * 0.6), np.int16)
        out.append(np.concatenate([lead, s[: len(s) // 2], pause, s[len(s) // 2 :], pause]))
    return out


def per_call_reference(audio: Samples) -> tuple[list[float], int]:
    stream = VadStream(ShippedSilero(), gate=webrtc_gate(2))
    probs = [stream.feed(f) for f in frames_from_samples(audio)]
    return probs, stream.silero_windows


async def scored(stream: VadStream, audio: Samples) -> list[float]:
    return [await stream.score(f) for f in frames_from_samples(audio)]


async def in_ticks(streams: list[VadStream], calls: list[Samples]) -> list[list[float]]:
    """Every call's next frame in each 20 ms tick, each from its own task (as sessions do)."""
    frames = [frames_from_samples(a) for a in calls]
    out: list[list[float]] = [[] for _ in calls]
    for t in range(max(len(f) for f in frames)):
        live = [k for k, f in enumerate(frames) if t < len(f)]
        probs = await asyncio.gather(*(streams[k].score(frames[k][t]) for k in live))
        for k, p in zip(live, probs, strict=True):
            out[k].append(p)
    return out


def test_the_edit_changes_only_the_state_layout() -> None:
    raw = default_silero_path().read_bytes()
    assert emit(parse(raw)) == raw  # the wire format round-trips byte for byte
    session = onnxruntime.InferenceSession(batched_silero(raw), providers=["CPUExecutionProvider"])
    shapes = {i.name: i.shape for i in session.get_inputs() + session.get_outputs()}
    assert shapes["h"] == shapes["c"] == shapes["hn"] == shapes["cn"] == [1, "batch", 128]
    assert shapes["input"] == ["seq_len", 576]
    with pytest.raises(NotSileroV6):
        batched_silero(batched_silero(raw))  # already edited: the Transpose is not serial


async def test_batched_probabilities_equal_per_call_runs_on_real_speech(
    calls: list[Samples],
) -> None:
    model = SileroModel()
    batcher = VadBatcher(model, asyncio.get_running_loop(), window_s=0.0)
    streams = [VadStream(model, gate=webrtc_gate(2), batcher=batcher) for _ in calls]
    got = await in_ticks(streams, calls)
    windows = 0
    for stream, audio, probs in zip(streams, calls, got, strict=True):
        expected, n = per_call_reference(audio)
        assert stream.silero_windows == n > 0
        assert np.max(np.abs(np.array(probs) - np.array(expected))) <= TOLERANCE
        assert max(probs) > 0.8  # each caller's speech is heard, so the comparison means something
        windows += n
    print(f"{windows} windows in {batcher.runs} runs")
    assert batcher.runs < windows  # windows of calls speaking in the same tick shared a run


async def test_the_sessions_path_shares_the_loops_batcher(calls: list[Samples]) -> None:
    """`score` without an injected batcher: the loop's shared one, with its 20 ms tick."""
    model = SileroModel()
    audio = [a[: SAMPLE_RATE * 2] for a in calls[:2]]
    streams = [VadStream(model, gate=webrtc_gate(2)) for _ in audio]
    got = await asyncio.gather(*(scored(s, a) for s, a in zip(streams, audio, strict=True)))
    for stream, probs, a in zip(streams, got, audio, strict=True):
        expected, n = per_call_reference(a)
        assert stream.silero_windows == n > 0
        assert np.max(np.abs(np.array(probs) - np.array(expected))) <= TOLERANCE


class Recorder:
    """Records the windows it is given; probability = the window's index."""

    def __init__(self) -> None:
        self.windows: list[F32] = []

    def run(self, window: F32, h: F32, c: F32) -> tuple[float, F32, F32]:
        self.windows.append(window.copy())
        return float(len(self.windows)), h, c


def test_windows_are_the_audio_cut_in_512_with_the_previous_64_as_context(
    calls: list[Samples],
) -> None:
    audio = calls[0][: SAMPLE_RATE * 3]
    rec = Recorder()
    stream = VadStream(rec, gate=lambda pcm: True)
    probs = [stream.feed(f) for f in frames_from_samples(audio)]
    x = np.concatenate([np.zeros(64, np.float32), audio.astype(np.float32) / 32768.0])
    expected = [x[i * 512 : i * 512 + 576] for i in range(len(audio) // 512)]
    assert len(rec.windows) == len(expected)
    for got, want in zip(rec.windows, expected, strict=True):
        assert np.array_equal(got, want)
    assert probs[-1] == len(expected)  # each frame reports the latest window's probability
