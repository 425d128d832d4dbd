"""The two-channel recording timeline, sans-IO: alignment, gaps, late frames, pauses, WAV header."""

from __future__ import annotations

import io
import wave

import numpy as np
import pytest

from media.frames import FRAME_BYTES, FRAME_SAMPLES
from media.recording import CHUNK_FRAMES, PauseSpan, StereoTimeline, wav_header


def tone(value: int) -> bytes:
    return np.full(FRAME_SAMPLES, value, dtype="<i2").tobytes()


def stereo(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<i2").reshape(-1, 2)


def frame_values(data: bytes) -> list[tuple[int, int]]:
    """The (left, right) value of each 20 ms slot (the test frames are constant)."""
    pairs = stereo(data).reshape(-1, FRAME_SAMPLES, 2)
    return [(int(f[0, 0]), int(f[0, 1])) for f in pairs]


def test_channels_land_on_their_times_whatever_the_arrival_order() -> None:
    timeline = StereoTimeline(start_s=100.0, lag_frames=2)
    timeline.feed("agent", 100.04, tone(7))  # the agent's frame of slot 2 comes first
    for slot in range(4):
        timeline.feed("caller", 100.0 + slot * 0.02, tone(slot + 1))
    out = b"".join(timeline.drain(final=True))
    assert frame_values(out) == [(1, 0), (2, 0), (3, 7), (4, 0)]


def test_a_gap_in_both_channels_is_silence_and_keeps_the_length() -> None:
    timeline = StereoTimeline(start_s=0.0, lag_frames=0)
    timeline.feed("caller", 0.0, tone(5))
    timeline.feed("caller", 0.1, tone(6))  # 4 slots nobody filled
    out = b"".join(timeline.drain(final=True))
    assert frame_values(out) == [(5, 0), (0, 0), (0, 0), (0, 0), (0, 0), (6, 0)]
    assert timeline.written_s == pytest.approx(0.12)


def test_output_waits_the_lag_and_a_frame_after_it_is_dropped_and_counted() -> None:
    timeline = StereoTimeline(start_s=0.0, lag_frames=3)
    for slot in range(5):
        timeline.feed("caller", slot * 0.02, tone(1))
    assert len(b"".join(timeline.drain())) == 2 * FRAME_BYTES * 2  # slots 0-1; 2-4 wait
    timeline.feed("agent", 0.02, tone(9))  # slot 1 is written already
    assert timeline.late_frames == 1
    timeline.feed("agent", 0.04, tone(9))  # slot 2 is not
    assert frame_values(b"".join(timeline.drain(final=True))) == [(1, 9), (1, 0), (1, 0)]


def test_a_long_gap_comes_out_a_second_at_a_time() -> None:
    timeline = StereoTimeline(start_s=0.0, lag_frames=0)
    timeline.feed("caller", 0.0, tone(1))
    timeline.feed("caller", 10.0, tone(2))
    chunks = list(timeline.drain(final=True))
    assert max(len(c) for c in chunks) == CHUNK_FRAMES * FRAME_BYTES * 2
    assert sum(len(c) for c in chunks) == 501 * FRAME_BYTES * 2


def test_pause_mutes_both_channels_and_is_kept_as_a_span() -> None:
    timeline = StereoTimeline(start_s=50.0, lag_frames=1)
    for slot in range(10):
        at = 50.0 + slot * 0.02
        if slot == 3:
            assert timeline.pause(at)
            assert not timeline.pause(at)  # already paused
        if slot == 6:
            assert timeline.resume(at)
        timeline.feed("caller", at, tone(1))
        timeline.feed("agent", at, tone(2))
    values = frame_values(b"".join(timeline.drain(final=True)))
    assert values == [(1, 2)] * 3 + [(0, 0)] * 3 + [(1, 2)] * 4
    assert timeline.pauses == (PauseSpan(0.06, 0.12),)
    assert not timeline.resume(60.0)  # not paused


def test_a_pause_for_a_time_already_written_starts_at_the_first_pending_slot() -> None:
    timeline = StereoTimeline(start_s=0.0, lag_frames=0)
    for slot in range(5):
        timeline.feed("caller", slot * 0.02, tone(1))
    list(timeline.drain())
    timeline.pause(0.0)
    timeline.feed("caller", 0.1, tone(1))
    assert frame_values(b"".join(timeline.drain(final=True))) == [(0, 0)]
    assert timeline.pauses == (PauseSpan(0.1, None),)


def test_a_frame_of_the_wrong_size_is_refused() -> None:
    with pytest.raises(ValueError, match="640 bytes"):
        StereoTimeline(start_s=0.0).feed("caller", 0.0, b"\x00" * 100)


def test_the_wav_header_describes_stereo_16_bit_16_khz() -> None:
    pcm = np.arange(-200, 200, dtype="<i2").tobytes()
    with wave.open(io.BytesIO(wav_header(len(pcm)) + pcm)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (2, 2, 16_000)
        assert w.readframes(w.getnframes()) == pcm
    with pytest.raises(ValueError, match="WAV holds"):
        wav_header(-1)


def test_retract_takes_back_only_frames_not_yet_written() -> None:
    timeline = StereoTimeline(start_s=0.0, lag_frames=3)
    for slot in range(6):
        timeline.feed("caller", slot * 0.02, tone(1))
        timeline.feed("agent", slot * 0.02, tone(2))
    list(timeline.drain())  # slots 0-2 written
    assert timeline.retract("agent", 0.02) == 3  # slots 3-5; 1-2 are in the file already
    assert timeline.retract("agent", 0.0) == 0
    assert frame_values(b"".join(timeline.drain(final=True))) == [(1, 0)] * 3
