"""AudioFrame and the helpers that cut samples into frames."""

from __future__ import annotations

import msgspec
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from media.frames import (
    FRAME_BYTES,
    FRAME_MS,
    FRAME_SAMPLES,
    SAMPLE_RATE,
    SILENCE_PCM,
    AudioFrame,
    frames_from_samples,
    samples_of,
)


def test_format_constants() -> None:
    assert (SAMPLE_RATE, FRAME_MS, FRAME_SAMPLES, FRAME_BYTES) == (16000, 20, 320, 640)
    assert SILENCE_PCM == bytes(640)


@pytest.mark.parametrize("size", [0, 1, 320, 639, 641, 1280])
def test_a_frame_is_exactly_640_bytes(size: int) -> None:
    with pytest.raises(ValueError, match=f"an AudioFrame holds 640 bytes, got {size}"):
        AudioFrame(bytes(size))


def test_samples_are_a_little_endian_read_only_view() -> None:
    pcm = b"\x01\x00\xff\xff" * 160
    frame = AudioFrame(pcm, seq=7)
    samples = frame.samples
    assert samples.dtype == np.int16
    assert samples[:2].tolist() == [1, -1]
    with pytest.raises(ValueError):
        samples[0] = 3
    assert frame.seq == 7


def test_from_samples_round_trip_and_byte_order() -> None:
    samples = np.arange(-160, 160, dtype=np.int16) * 100
    frame = AudioFrame.from_samples(samples, seq=3)
    np.testing.assert_array_equal(frame.samples, samples)
    assert frame.pcm[:2] == (-16000).to_bytes(2, "little", signed=True)
    big = AudioFrame.from_samples(samples.astype(">i2"))
    assert big.pcm == frame.pcm


def test_from_samples_accepts_wider_integers_in_range() -> None:
    samples = np.full(320, -32768, dtype=np.int64)
    assert AudioFrame.from_samples(samples).samples.min() == -32768  # type: ignore[arg-type]


def test_from_samples_refuses_float_and_out_of_range() -> None:
    with pytest.raises(ValueError, match="expected int16 samples, got dtype float32"):
        AudioFrame.from_samples(np.full(320, 0.5, dtype=np.float32))
    with pytest.raises(ValueError, match=r"samples out of int16 range: \[40000, 40000\]"):
        AudioFrame.from_samples(np.full(320, 40000, dtype=np.int32))
    with pytest.raises(ValueError, match="out of int16 range"):
        frames_from_samples(np.full(10, 65535, dtype=np.uint16))
    with pytest.raises(ValueError, match="an AudioFrame holds 640 bytes, got 2"):
        AudioFrame.from_samples(np.zeros(1, dtype=np.int16))


def test_silence() -> None:
    frame = AudioFrame.silence(seq=4)
    assert frame.pcm == SILENCE_PCM
    assert frame.seq == 4
    assert not frame.samples.any()


def test_frames_are_frozen_values() -> None:
    frame = AudioFrame.silence(1)
    with pytest.raises(AttributeError):
        frame.seq = 2  # type: ignore[misc]
    assert frame == AudioFrame.silence(1)
    assert hash(frame) == hash(AudioFrame.silence(1))


def test_msgspec_round_trip_and_validation_on_decode() -> None:
    frame = AudioFrame.from_samples(np.arange(320, dtype=np.int16), seq=9)
    assert msgspec.msgpack.decode(msgspec.msgpack.encode(frame), type=AudioFrame) == frame
    assert msgspec.json.decode(msgspec.json.encode(frame), type=AudioFrame) == frame
    bad = msgspec.msgpack.encode({"pcm": b"12", "seq": 1})
    with pytest.raises(msgspec.ValidationError, match="640 bytes, got 2"):
        msgspec.msgpack.decode(bad, type=AudioFrame)


@given(hnp.arrays(np.int16, st.integers(0, 2000)), st.integers(0, 10**6))
def test_cutting_and_joining_frames(samples: np.ndarray, start: int) -> None:
    frames = frames_from_samples(samples, start_seq=start)
    assert len(frames) == -(-len(samples) // FRAME_SAMPLES)
    assert [f.seq for f in frames] == list(range(start, start + len(frames)))
    joined = samples_of(frames)
    assert len(joined) == len(frames) * FRAME_SAMPLES
    np.testing.assert_array_equal(joined[: len(samples)], samples)
    assert not joined[len(samples) :].any()  # padded with silence


def test_samples_of_nothing() -> None:
    empty = samples_of([])
    assert empty.dtype == np.int16
    assert empty.size == 0
    assert frames_from_samples(np.zeros(0, dtype=np.int16)) == []
