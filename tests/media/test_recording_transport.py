"""Recording at the transport seam: real speech both ways on a virtual clock, jitter, a
barge-in's dropped audio, pause and resume."""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from media.clock import VirtualClock
from media.frames import SAMPLE_RATE, AudioFrame, frames_from_samples
from media.recording_file import CallRecorder
from media.recording_transport import FramePlacer, RecordingTransport
from media.transport import AudioSink, Transport
from media.virtual import VirtualTransport
from tests.support.speech import espeak

Samples = npt.NDArray[np.int16]
START = 500.0


@pytest.fixture(scope="module")
def lines() -> tuple[Samples, Samples]:
    return (
        espeak("Hello, I would like to check my order please"),
        espeak("Of course, what is the order number?", words_per_minute=170),
    )


def read_stereo_wav(path: Path) -> Samples:
    with wave.open(str(path)) as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").reshape(-1, 2)


def at(samples: Samples, offset_s: float, length: int) -> Samples:
    out = np.zeros(length, dtype=np.int16)
    start = round(offset_s * SAMPLE_RATE)
    out[start : start + len(samples)] = samples[: length - start]
    return out


class Reader:
    """The session's side: reads the inbound frames, one by one, as the test waits for them."""

    def __init__(self, transport: Transport) -> None:
        self.got: asyncio.Queue[AudioFrame] = asyncio.Queue()
        self.task = asyncio.create_task(self._read(transport))

    async def _read(self, transport: Transport) -> None:
        async for frame in transport.source.frames():
            self.got.put_nowait(frame)

    async def received(self, n: int) -> None:
        for _ in range(n):
            await asyncio.wait_for(self.got.get(), 10)


async def test_both_ways_land_aligned_despite_bursty_arrival(
    tmp_path: Path, lines: tuple[Samples, Samples]
) -> None:
    caller, agent = lines
    clock = VirtualClock(START)
    inner = VirtualTransport(clock)
    transport = RecordingTransport(
        inner, CallRecorder(tmp_path / "call.wav", "wav", start_s=clock.now()), clock
    )
    reader = Reader(transport)
    mine, theirs = frames_from_samples(caller), frames_from_samples(agent)
    agent_from = 75  # the agent speaks from 1.5 s
    for slot in range(max(len(mine), agent_from + len(theirs)) + 3):
        if slot % 3 == 2:  # the caller's frames come in bursts of three, 40 ms late
            burst = mine[slot - 2 : slot + 1]
            for frame in burst:
                await inner.source.send(frame)
            await reader.received(len(burst))
        if agent_from <= slot < agent_from + len(theirs):
            await transport.sink.write(theirs[slot - agent_from])
        await clock.advance(0.02)
    inner.source.close()
    await asyncio.wait_for(reader.task, 10)
    await transport.close()
    info = transport.recorder.close()
    audio = read_stereo_wav(transport.recorder.path)
    n = len(audio)
    assert np.array_equal(audio[:, 0], at(np.concatenate([f.samples for f in mine]), 0.04, n))
    assert np.array_equal(audio[:, 1], at(np.concatenate([f.samples for f in theirs]), 1.5, n))
    assert info.late_frames == 0
    assert len(inner.sink.frames) == len(theirs)  # the agent's audio went on to the caller


class BufferedSink(AudioSink):
    """A sink with a send buffer, played a frame at a time by the test."""

    def __init__(self) -> None:
        self.queue: list[AudioFrame] = []
        self.sent: list[AudioFrame] = []

    async def write(self, frame: AudioFrame) -> None:
        self.queue.append(frame)

    def clear(self) -> int:
        dropped = len(self.queue)
        self.queue.clear()
        return dropped

    def play(self) -> None:
        self.sent.append(self.queue.pop(0))

    @property
    def played_until(self) -> int:
        return len(self.sent)

    @property
    def buffered(self) -> int:
        return len(self.queue)


async def test_audio_a_barge_in_dropped_is_not_in_the_recording(
    tmp_path: Path, lines: tuple[Samples, Samples]
) -> None:
    _, agent = lines
    clock = VirtualClock(START)
    inner = VirtualTransport(clock)
    sink = BufferedSink()
    inner.sink = sink  # type: ignore[assignment]
    recorder = CallRecorder(tmp_path / "call.wav", "wav", start_s=clock.now(), lag_frames=25)
    transport = RecordingTransport(inner, recorder, clock)
    frames = frames_from_samples(agent)
    for frame in frames[:10]:  # ten frames queued at once, ahead of their time
        await transport.sink.write(frame)
    for _ in range(3):
        sink.play()
        await clock.advance(0.02)
    assert transport.sink.clear() == 7  # the caller barged in: seven never played
    await clock.advance(0.2)
    await transport.sink.write(frames[20])  # the next reply, 0.26 s in
    await transport.close()
    audio = read_stereo_wav(recorder.path)
    played = np.concatenate([f.samples for f in frames[:3]])
    expected = at(played, 0.0, len(audio))
    expected[round(0.26 * SAMPLE_RATE) :][: len(frames[20].samples)] = frames[20].samples
    assert np.array_equal(audio[:, 1], expected)


async def test_pause_and_resume_mute_from_the_clocks_now(
    tmp_path: Path, lines: tuple[Samples, Samples]
) -> None:
    caller, _ = lines
    clock = VirtualClock(START)
    inner = VirtualTransport(clock)
    recorder = CallRecorder(tmp_path / "call.wav", "wav", start_s=clock.now())
    transport = RecordingTransport(inner, recorder, clock)
    reader = Reader(transport)
    mine = frames_from_samples(caller)
    for slot, frame in enumerate(mine):
        if slot == 40:
            assert transport.pause()
        if slot == 70:
            assert transport.resume()
        await inner.source.send(frame)
        await reader.received(1)
        await clock.advance(0.02)
    inner.source.close()
    await asyncio.wait_for(reader.task, 10)
    await transport.close()
    info = recorder.close()
    audio = read_stereo_wav(recorder.path)
    expected = at(caller, 0.0, len(audio))
    muted = slice(round(0.8 * SAMPLE_RATE), round(1.4 * SAMPLE_RATE))
    assert np.abs(expected[muted]).max() > 1000
    expected[muted] = 0
    assert np.array_equal(audio[:, 0], expected)
    assert [(p.start_s, p.end_s) for p in info.pauses] == [(0.8, 1.4)]


def test_the_placer_absorbs_jitter_and_restarts_after_a_gap() -> None:
    placer = FramePlacer()
    assert [placer.place(t) for t in (10.0, 10.0, 10.05, 10.06)] == pytest.approx(
        [10.0, 10.02, 10.04, 10.06]
    )
    assert placer.place(10.5) == 10.5  # a gap: the stream starts again at its arrival
    placer.restart()
    assert placer.place(10.51) == 10.51
