"""A call's recording written as it runs: WAV and Ogg Opus, from real speech, cut mid-call."""

from __future__ import annotations

import shutil
import wave
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import pytest

from media.frames import FRAME_SAMPLES, SAMPLE_RATE, frames_from_samples
from media.recording import PauseSpan
from media.recording_file import OGG_PAGE_S, CallRecorder, RecordingFormat
from media.resample import resample
from tests.support.speech import espeak

Samples = npt.NDArray[np.int16]
START = 1_000.0
AGENT_AT = 1.0
"""The agent's line starts this long after the caller's (seconds)."""


@pytest.fixture(scope="module")
def lines() -> tuple[Samples, Samples]:
    caller = espeak("My card number is four one one one, and my email is ana at example dot com")
    agent = espeak("Thank you, one moment while I check that for you.", words_per_minute=170)
    return caller, agent


def record(
    recorder: CallRecorder,
    caller: Samples,
    agent: Samples,
    *,
    cut_at: tuple[float, Path] | None = None,
) -> None:
    """Feed the caller's frames from 0 s and the agent's from `AGENT_AT`, interleaved as a
    call would; `cut_at` copies the file as it is on disk once that much media time is fed."""
    theirs = {round(AGENT_AT / 0.02) + f.seq: f for f in frames_from_samples(agent)}
    mine = {f.seq: f for f in frames_from_samples(caller)}
    for slot in range(max([*mine, *theirs]) + 1):
        at = START + slot * 0.02
        if slot in mine:
            recorder.feed("caller", at, mine[slot].pcm)
        if slot in theirs:
            recorder.feed("agent", at, theirs[slot].pcm)
        if cut_at is not None and slot * 0.02 >= cut_at[0]:
            shutil.copyfile(recorder.path, cut_at[1])
            cut_at = None


def read_stereo_wav(path: Path) -> Samples:
    with wave.open(str(path)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (2, 2, SAMPLE_RATE)
        raw = w.readframes(w.getnframes())
    return np.frombuffer(raw, dtype="<i2").reshape(-1, 2)


def read_ogg(path: Path) -> Samples:
    """The file decoded, back at 16 kHz int16, (samples, 2)."""
    parts: list[np.ndarray] = []
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        assert stream.codec_context.name == "opus"
        for frame in container.decode(stream):
            assert frame.layout.name == "stereo"
            parts.append(frame.to_ndarray().reshape(2, -1))  # planar float
            rate = frame.sample_rate
    audio = np.concatenate(parts, axis=1)
    ints = np.clip(np.rint(audio * 32767), -32768, 32767).astype(np.int16)
    return np.stack([resample(ints[c], rate, SAMPLE_RATE) for c in range(2)], axis=1)


def padded(samples: Samples, offset_s: float, length: int) -> Samples:
    out = np.zeros(length, dtype=np.int16)
    start = round(offset_s * SAMPLE_RATE)
    n = min(len(samples), length - start)
    out[start : start + n] = samples[:n]
    return out


def test_wav_holds_both_lines_sample_exact_on_their_own_channels(
    tmp_path: Path, lines: tuple[Samples, Samples]
) -> None:
    caller, agent = lines
    recorder = CallRecorder(tmp_path / "call.wav", "wav", start_s=START)
    record(recorder, caller, agent)
    info = recorder.close()
    audio = read_stereo_wav(recorder.path)
    n = len(audio)
    assert n == round(info.duration_s * SAMPLE_RATE)
    assert n >= max(len(caller), round(AGENT_AT * SAMPLE_RATE) + len(agent))
    assert np.array_equal(audio[:, 0], padded(caller, 0.0, n))
    assert np.array_equal(audio[:, 1], padded(agent, AGENT_AT, n))
    assert info.bytes == recorder.path.stat().st_size == 44 + n * 4
    assert info.late_frames == 0 and info.pauses == ()


def test_a_paused_stretch_is_silent_on_both_channels_and_listed(
    tmp_path: Path, lines: tuple[Samples, Samples]
) -> None:
    caller, agent = lines
    recorder = CallRecorder(tmp_path / "call.wav", "wav", start_s=START)
    recorder.pause(START + 1.2)
    record(recorder, caller[: round(1.2 * SAMPLE_RATE)], np.zeros(0, dtype=np.int16))
    recorder.resume(START + 1.6)
    assert not recorder.resume(START + 1.7)  # not paused any more
    rest = {f.seq: f for f in frames_from_samples(caller)}
    for slot in range(60, max(rest) + 1):  # 1.2 s on: the caller's frames as they come
        recorder.feed("caller", START + slot * 0.02, rest[slot].pcm)
    info = recorder.close()
    audio = read_stereo_wav(recorder.path)
    muted = slice(round(1.2 * SAMPLE_RATE), round(1.6 * SAMPLE_RATE))
    assert np.abs(caller[muted]).max() > 1000  # the caller was speaking there
    assert not audio[muted].any()
    expected = padded(caller, 0.0, len(audio))
    expected[muted] = 0
    assert np.array_equal(audio[:, 0], expected)
    assert info.pauses == (PauseSpan(1.2, 1.6),)


def test_a_wav_cut_mid_call_is_whole_up_to_its_last_flush(
    tmp_path: Path, lines: tuple[Samples, Samples]
) -> None:
    caller, agent = lines
    flush_every_s, lag_frames = 1.0, 10
    recorder = CallRecorder(
        tmp_path / "call.wav", "wav", start_s=START, flush_every_s=flush_every_s, lag_frames=10
    )
    cut = tmp_path / "cut.wav"
    record(recorder, caller, agent, cut_at=(3.0, cut))
    recorder.close()
    audio = read_stereo_wav(cut)  # what a crash at 3 s would have left
    lost_s = 3.0 - len(audio) / SAMPLE_RATE
    print(f"wav cut at 3.0 s of media: {lost_s:.3f} s lost")
    assert 0 <= lost_s <= flush_every_s + lag_frames * 0.02 + 0.02
    whole = read_stereo_wav(recorder.path)
    assert np.array_equal(audio, whole[: len(audio)])


def envelope(channel: Samples) -> npt.NDArray[np.float64]:
    """RMS per 20 ms."""
    n = len(channel) // FRAME_SAMPLES
    blocks = channel[: n * FRAME_SAMPLES].astype(np.float64).reshape(n, FRAME_SAMPLES)
    return np.sqrt((blocks**2).mean(axis=1))


def best_lag_frames(decoded: Samples, original: Samples) -> int:
    """The shift (in 20 ms frames, within ±5) that best matches the two energy envelopes."""
    a, b = envelope(decoded), envelope(original)
    n = min(len(a), len(b)) - 10
    scores = {lag: float(np.dot(a[5 + lag : 5 + lag + n - 5], b[5:n])) for lag in range(-5, 6)}
    return max(scores, key=lambda lag: scores[lag])


@pytest.mark.parametrize("fmt", ["ogg", "wav"])
def test_each_format_keeps_the_lines_on_their_channels_in_time(
    tmp_path: Path, lines: tuple[Samples, Samples], fmt: RecordingFormat
) -> None:
    caller, agent = lines
    recorder = CallRecorder(tmp_path / f"call.{fmt}", fmt, start_s=START)
    record(recorder, caller, agent)
    info = recorder.close()
    audio = read_ogg(recorder.path) if fmt == "ogg" else read_stereo_wav(recorder.path)
    assert abs(len(audio) / SAMPLE_RATE - info.duration_s) <= 0.1
    n = len(audio)
    for channel, original in ((0, padded(caller, 0.0, n)), (1, padded(agent, AGENT_AT, n))):
        assert best_lag_frames(audio[:, channel], original) == 0
    # before the agent's first word its channel is silent; the caller's speech is not in it
    head = audio[: round(AGENT_AT * SAMPLE_RATE) - 1600]
    assert np.abs(head[:, 0]).max() > 3000
    assert np.sqrt((head[:, 1].astype(np.float64) ** 2).mean()) < 50


def test_an_ogg_cut_mid_call_decodes_up_to_its_last_page(
    tmp_path: Path, lines: tuple[Samples, Samples]
) -> None:
    caller, agent = lines
    recorder = CallRecorder(tmp_path / "call.ogg", "ogg", start_s=START, lag_frames=10)
    cut = tmp_path / "cut.ogg"
    record(recorder, caller, agent, cut_at=(3.0, cut))
    recorder.close()
    audio = read_ogg(cut)
    lost_s = 3.0 - len(audio) / SAMPLE_RATE
    print(f"ogg cut at 3.0 s of media: {lost_s:.3f} s lost")
    # at most two pages (one being filled, one the muxer holds), the lag, the encoder's frame
    assert 0 <= lost_s <= 2 * OGG_PAGE_S + 10 * 0.02 + 0.1
    assert best_lag_frames(audio[:, 0], padded(caller, 0.0, len(audio))) == 0


def test_a_recording_never_overwrites_a_file(tmp_path: Path) -> None:
    path = tmp_path / "call.wav"
    path.write_bytes(b"someone else's")
    with pytest.raises(FileExistsError):
        CallRecorder(path, "wav", start_s=0.0)
    with pytest.raises(FileExistsError):
        CallRecorder(path, "ogg", start_s=0.0)
    assert path.read_bytes() == b"someone else's"
