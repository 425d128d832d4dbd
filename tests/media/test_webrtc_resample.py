"""Rate conversion at the WebRTC edge: every chunk in gives its own 20 ms out, shifted by less
than 2 ms, so no frame waits for the next packet in either direction; and aiortc's
encoders, fed the node's frames in their own format, encode each frame as it comes."""

from __future__ import annotations

import fractions

import av
import numpy as np
import numpy.typing as npt
import pytest
from aiortc.codecs.g711 import PcmuDecoder, PcmuEncoder
from aiortc.codecs.opus import OpusEncoder
from aiortc.jitterbuffer import JitterFrame

from media.frames import FRAME_SAMPLES
from media.resample import resample
from media.webrtc_resample import EncoderFrames, LowDelayResampler

Samples = npt.NDArray[np.int16]


def noise(rate: int, seconds: float = 0.5) -> Samples:
    """Deterministic noise, band-limited below 3.4 kHz (it survives every rate here)."""
    rng = np.random.default_rng(7)
    x = rng.normal(0, 3000, int(rate * seconds))
    spectrum = np.fft.rfft(x)
    spectrum[np.fft.rfftfreq(len(x), 1 / rate) > 3400] = 0
    return np.clip(np.fft.irfft(spectrum, len(x)), -32768, 32767).astype(np.int16)


def lag(out: Samples, reference: Samples, most: int = 200) -> int:
    """How many samples `out` runs behind `reference` (best correlation over 0..most)."""
    n = min(len(out), len(reference)) - most
    ref = reference[:n].astype(np.float64)
    scores = [float(np.dot(out[k : k + n].astype(np.float64), ref)) for k in range(most)]
    return int(np.argmax(scores))


@pytest.mark.parametrize(("rate", "out_rate"), [(48000, 16000), (8000, 16000), (16000, 48000)])
def test_each_chunk_gives_its_own_duration_and_the_shift_is_under_2_ms(
    rate: int, out_rate: int
) -> None:
    x = noise(rate)
    per_chunk = rate // 50
    resampler = LowDelayResampler(rate, out_rate)
    chunks = [resampler.process(x[i : i + per_chunk]) for i in range(0, len(x), per_chunk)]
    assert {len(c) for c in chunks} == {out_rate // 50}  # the first one too
    shift = lag(np.concatenate(chunks), resample(x, rate, out_rate))
    print(f"{rate} -> {out_rate}: shifted {shift} samples ({shift / out_rate * 1000:.2f} ms)")
    assert shift <= out_rate // 500  # 2 ms


def test_equal_rates_pass_through() -> None:
    x = noise(16000, 0.02)
    assert np.array_equal(LowDelayResampler(16000, 16000).process(x), x)


@pytest.mark.parametrize(("rate", "channels"), [(48000, 2), (8000, 1), (16000, 1)])
def test_encoder_frames_are_one_20ms_frame_each_in_the_encoders_format(
    rate: int, channels: int
) -> None:
    x = noise(16000)
    frames = EncoderFrames(rate, channels)
    starts = range(0, len(x), FRAME_SAMPLES)
    out = [frames.frame(x[i : i + FRAME_SAMPLES].tobytes(), k) for k, i in enumerate(starts)]
    per_frame = rate // 50
    for k, frame in enumerate(out):
        assert (frame.sample_rate, frame.samples, frame.pts) == (rate, per_frame, k * per_frame)
        assert frame.format.name == "s16" and len(frame.layout.channels) == channels
    planes = np.concatenate([f.to_ndarray().reshape(-1, channels) for f in out])
    assert np.array_equal(planes[:, 0], planes[:, -1])  # the same sample in each channel
    assert lag(planes[:, 0].copy(), resample(x, 16000, rate)) <= rate // 500  # 2 ms


def test_encoder_frames_reject_other_channel_counts() -> None:
    with pytest.raises(ValueError, match="1 or 2 channels"):
        EncoderFrames(48000, 6)


def frame_16k(level: int, k: int) -> av.AudioFrame:
    frame = av.AudioFrame.from_ndarray(
        np.full((1, FRAME_SAMPLES), level, dtype=np.int16), format="s16", layout="mono"
    )
    frame.sample_rate = 16000
    frame.pts = k * FRAME_SAMPLES
    frame.time_base = fractions.Fraction(1, 16000)
    return frame


def test_opus_encodes_every_frame_as_it_comes_in_its_own_format() -> None:
    frames = EncoderFrames(48000, 2)
    encoder = OpusEncoder()
    pcm = bytes(2 * FRAME_SAMPLES)
    assert all(encoder.encode(frames.frame(pcm, k))[0] for k in range(5))  # the first too
    stock = OpusEncoder()  # fed 16 kHz, aiortc's encoder keeps most of a frame back
    assert not stock.encode(frame_16k(0, 0))[0]


def loud_share_sent(frames: list[av.AudioFrame]) -> list[float | None]:
    """PCMU-encode `frames` one by one: for each, the share of loud samples in what its
    `encode` sent (None: nothing)."""
    encoder, decoder = PcmuEncoder(), PcmuDecoder()
    shares: list[float | None] = []
    for frame in frames:
        payloads, timestamp = encoder.encode(frame)
        decoded = [decoder.decode(JitterFrame(p, timestamp))[0].to_ndarray() for p in payloads]
        loud = [float(np.mean(np.abs(d) > 4000)) for d in decoded]
        shares.append(loud[0] if loud else None)
    return shares


def test_a_frames_audio_leaves_with_that_frame() -> None:
    levels = [0, 0, 8000, 0, 0]
    frames = EncoderFrames(8000, 1)
    ones = np.ones(FRAME_SAMPLES, dtype=np.int16)
    ours = loud_share_sent([frames.frame((ones * v).tobytes(), k) for k, v in enumerate(levels)])
    stock = loud_share_sent([frame_16k(v, k) for k, v in enumerate(levels)])
    print(f"loud share sent per frame: the node's frames {ours}, 16 kHz frames {stock}")
    assert all(s is not None for s in ours)
    assert ours[2] is not None and ours[2] > 0.75  # the loud frame goes out as it is handed over
    assert stock[0] is None  # (aiortc's own conversion: each frame's audio one frame later)
    assert stock[2] is not None and stock[2] < 0.5 and stock[3] is not None and stock[3] > 0.5
