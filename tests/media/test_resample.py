"""Streaming and one-shot resampling: continuity across chunk edges, latency, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from media.resample import (
    SUPPORTED_RATES,
    StreamResampler,
    UnsupportedRateError,
    resample,
)

AMPLITUDE = 10_000
FREQ = 440.0
PAIRS = [(r, 16_000) for r in SUPPORTED_RATES if r != 16_000] + [
    (16_000, r) for r in SUPPORTED_RATES if r != 16_000
]


def sine(rate: int, seconds: float = 1.0, freq: float = FREQ) -> np.ndarray:
    t = np.arange(round(rate * seconds)) / rate
    return np.round(AMPLITUDE * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def in_chunks(resampler: StreamResampler, x: np.ndarray, size: int) -> list[np.ndarray]:
    outs = [resampler.process(x[i : i + size]) for i in range(0, len(x), size)]
    outs.append(resampler.flush())
    return outs


def fit_residual(y: np.ndarray, rate: int, freq: float = FREQ) -> tuple[float, float]:
    """Fit a*sin + b*cos at `freq` (any constant delay) to the middle of `y`.

    Returns (amplitude, worst deviation from the fit), skipping the first and last 20 ms where
    the filter rings on the signal's abrupt start and end.
    """
    edge = rate // 50
    t = np.arange(len(y)) / rate
    basis = np.stack([np.sin(2 * np.pi * freq * t), np.cos(2 * np.pi * freq * t)], axis=1)
    mid = slice(edge, len(y) - edge)
    coef, *_ = np.linalg.lstsq(basis[mid], y[mid].astype(np.float64), rcond=None)
    residual = y[mid] - basis[mid] @ coef
    return float(np.hypot(*coef)), float(np.abs(residual).max())


@pytest.mark.parametrize("low_latency", [True, False], ids=["low-latency", "block"])
@pytest.mark.parametrize(("in_rate", "out_rate"), PAIRS)
def test_no_clicks_at_frame_boundaries(in_rate: int, out_rate: int, low_latency: bool) -> None:
    x = sine(in_rate)
    chunked = np.concatenate(
        in_chunks(StreamResampler(in_rate, out_rate, low_latency=low_latency), x, in_rate // 50)
    )
    whole = StreamResampler(in_rate, out_rate, low_latency=low_latency).process(x, last=True)

    # 20 ms chunks give exactly the same stream as one push of the whole signal ...
    assert len(chunked) == len(whole) == len(x) * out_rate // in_rate
    np.testing.assert_array_equal(chunked, whole)

    # ... which is the same sine as the one-shot resample, up to its constant delay ...
    oneshot = resample(x, in_rate, out_rate)
    assert len(oneshot) == len(chunked)
    amp_chunked, dev_chunked = fit_residual(chunked, out_rate)
    amp_oneshot, dev_oneshot = fit_residual(oneshot, out_rate)
    assert abs(amp_chunked - amp_oneshot) <= 2.0
    assert dev_chunked <= 4.0
    assert dev_oneshot <= 4.0

    # ... and no sample-to-sample jump exceeds what the sine itself allows.
    edge = out_rate // 50
    steps = np.abs(np.diff(chunked[edge:-edge].astype(np.int32)))
    assert steps.max() <= 2 * AMPLITUDE * math.sin(math.pi * FREQ / out_rate) + 4


@pytest.mark.parametrize(("in_rate", "out_rate"), PAIRS)
def test_low_latency_output_is_steady(in_rate: int, out_rate: int) -> None:
    """Every 20 ms in gives output back at once; at most ~30 ms is ever held back."""
    resampler = StreamResampler(in_rate, out_rate)
    x = sine(in_rate, seconds=0.5)
    chunk = in_rate // 50
    produced = 0
    for k, i in enumerate(range(0, len(x), chunk), start=1):
        produced += len(resampler.process(x[i : i + chunk]))
        held_ms = (k * chunk * out_rate / in_rate - produced) * 1000 / out_rate
        assert 0 <= held_ms <= 31, f"chunk {k}: {held_ms:.1f} ms held back"


@settings(max_examples=40, deadline=None)
@given(
    pair=st.sampled_from(PAIRS),
    cuts=st.lists(st.integers(0, 4000), max_size=30),
)
def test_any_chunking_gives_the_same_stream(pair: tuple[int, int], cuts: list[int]) -> None:
    in_rate, out_rate = pair
    x = sine(in_rate, seconds=4000 / in_rate, freq=1234.5)
    parts = np.split(x, sorted(cuts))
    resampler = StreamResampler(in_rate, out_rate)
    chunked = np.concatenate([resampler.process(p) for p in parts] + [resampler.flush()])
    whole = StreamResampler(in_rate, out_rate).process(x, last=True)
    assert len(chunked) == len(whole)
    np.testing.assert_array_equal(chunked, whole)


def test_flush_resets_for_a_new_stream() -> None:
    x = sine(8000, seconds=0.2)
    resampler = StreamResampler(8000, 16000)
    first = np.concatenate(in_chunks(resampler, x, 160))
    second = np.concatenate(in_chunks(resampler, x, 160))
    np.testing.assert_array_equal(first, second)


def test_reset_drops_held_back_audio() -> None:
    x = sine(16000, seconds=0.2)
    resampler = StreamResampler(16000, 8000)
    resampler.process(np.full(320, 20_000, dtype=np.int16))
    resampler.reset()
    again = np.concatenate(in_chunks(resampler, x, 320))
    fresh = np.concatenate(in_chunks(StreamResampler(16000, 8000), x, 320))
    np.testing.assert_array_equal(again, fresh)


def test_process_with_last_flushes() -> None:
    x = sine(48000, seconds=0.1)
    resampler = StreamResampler(48000, 16000)
    out = resampler.process(x, last=True)
    assert len(out) == len(x) // 3
    assert resampler.flush().size == 0


def test_equal_rates_pass_through() -> None:
    x = sine(16000, seconds=0.02)
    resampler = StreamResampler(16000, 16000)
    assert resampler.passthrough
    assert resampler.process(x) is x
    assert resampler.flush().size == 0
    assert not StreamResampler(8000, 16000).passthrough


def test_oneshot_resample_lengths_and_identity() -> None:
    x = sine(22050, seconds=0.5)
    assert len(resample(x, 22050, 16000)) == 8000
    assert len(resample(x[:3], 44100, 16000)) == 1
    assert resample(np.zeros(0, dtype=np.int16), 8000, 48000).size == 0
    same = resample(x, 22050, 22050)
    np.testing.assert_array_equal(same, x)
    assert same is not x


def test_overshoot_saturates_instead_of_wrapping() -> None:
    # a full-scale 100 Hz square wave rings far past int16 range when band-limited
    square = np.where((np.arange(16000) // 80) % 2 == 0, 32767, -32767).astype(np.int16)
    for out in (
        resample(square, 16000, 48000),
        StreamResampler(16000, 48000).process(square, last=True),
    ):
        assert out.dtype == np.int16
        assert out.max() == 32767
        assert out.min() == -32768
        phase = np.arange(len(out)) % 480
        assert out[(phase >= 8) & (phase < 232)].min() > 0
        assert out[(phase >= 248) & (phase < 472)].max() < 0


@pytest.mark.parametrize(("in_rate", "out_rate"), [(11025, 16000), (16000, 32000), (0, 8000)])
def test_unsupported_rates_are_named(in_rate: int, out_rate: int) -> None:
    bad = in_rate if in_rate not in SUPPORTED_RATES else out_rate
    with pytest.raises(UnsupportedRateError, match=rf"unsupported sample rate {bad} Hz"):
        StreamResampler(in_rate, out_rate)
    with pytest.raises(ValueError, match=str(bad)):
        resample(np.zeros(10, dtype=np.int16), in_rate, out_rate)


def test_non_integer_rates_are_rejected() -> None:
    with pytest.raises(UnsupportedRateError, match="16000.0"):
        StreamResampler(16000.0, 8000)  # type: ignore[arg-type]
    with pytest.raises(UnsupportedRateError, match="True"):
        StreamResampler(True, 8000)


def test_bad_samples_are_rejected() -> None:
    resampler = StreamResampler(8000, 16000)
    with pytest.raises(ValueError, match="expected int16 samples, got dtype float64"):
        resampler.process(np.zeros(160))
    with pytest.raises(ValueError, match=r"1-D array of samples, got shape \(2, 160\)"):
        resampler.process(np.zeros((2, 160), dtype=np.int16))
    with pytest.raises(ValueError, match="expected int16 samples"):
        resample(np.zeros(160, dtype=np.int32), 8000, 16000)


def test_non_contiguous_and_big_endian_input() -> None:
    x = sine(16000, seconds=0.1)
    expected = StreamResampler(16000, 8000).process(x[::2].copy(), last=True)
    got = StreamResampler(16000, 8000).process(x[::2], last=True)
    np.testing.assert_array_equal(got, expected)
    got = StreamResampler(16000, 8000).process(x[::2].astype(">i2"), last=True)
    np.testing.assert_array_equal(got, expected)
