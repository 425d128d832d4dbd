"""The turn model's input against the reference recipe it was trained with.

Smart Turn v3's own inference (pipecat's `LocalSmartTurnAnalyzerV3`, the same as
transformers' `WhisperFeatureExtractor(chunk_length=8)` with `do_normalize=True`): 16 kHz
float audio, the last 8 s, zero-padded at the start; zero-mean, unit-variance over those 8 s;
a centred, reflect-padded STFT (n_fft 400, hop 160, periodic Hann) in float64; 80 Slaney mel
bins from 0 to 8 kHz; log10 floored at 1e-10; the last frame dropped; clamped to 8 below the
maximum; (x + 4) / 4; the model's output read as the probability of "complete" (it ends in a
sigmoid). `reference_features` is that recipe written out here on its own (its own mel scale
and window code), so a change to `pipeline.turn_model.features` (padding side, normalisation,
precision, a frame more or less) shows here.

Precision matters: the model is int8-quantized, so features 1e-5 apart can land on different
sides of a rounding step. faster-whisper's float32 extractor, used before, was within 1.1e-5 of
the recipe and moved the probability by up to 0.046 on the turn-taking set's lines.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from media.frames import SAMPLE_RATE
from pipeline.turn_model import SmartTurnModel, default_model_path, features
from tests.support.speech import espeak, telephone

F64 = npt.NDArray[np.float64]
N_FFT, HOP, N_MELS, WINDOW = 400, 160, 80, 8 * SAMPLE_RATE
PAUSE = np.zeros(SAMPLE_RATE // 5, dtype=np.int16)


def _hz_to_mel(hz: F64) -> F64:
    """The Slaney mel scale: linear below 1 kHz, logarithmic above."""
    log = 15.0 + np.log(np.maximum(hz, 1e-9) / 1000.0) * 27.0 / np.log(6.4)
    return np.where(hz < 1000.0, 3.0 * hz / 200.0, log)


def _mel_to_hz(mel: F64) -> F64:
    return np.where(
        mel < 15.0, 200.0 * mel / 3.0, 1000.0 * np.exp((mel - 15.0) * np.log(6.4) / 27.0)
    )


def _mel_filters() -> F64:
    """[201 FFT bins, 80 mel bins]: Slaney-normalised triangles from 0 to 8 kHz."""
    top = _hz_to_mel(np.array([SAMPLE_RATE / 2.0]))[0]
    edges = _mel_to_hz(np.linspace(0.0, top, N_MELS + 2))
    bins = np.linspace(0.0, SAMPLE_RATE / 2.0, N_FFT // 2 + 1)[:, None]
    rise = (bins - edges[None, :-2]) / (edges[1:-1] - edges[:-2])
    fall = (edges[None, 2:] - bins) / (edges[2:] - edges[1:-1])
    triangles = np.maximum(0.0, np.minimum(rise, fall))
    return np.asarray(triangles * (2.0 / (edges[2:] - edges[:-2])), dtype=np.float64)


def reference_features(audio: npt.NDArray[np.int16]) -> npt.NDArray[np.float32]:
    """[80, 800]: the reference's input for 16 kHz int16 audio (see the module's docstring)."""
    x = audio[-WINDOW:].astype(np.float32) / 32768.0
    x = np.pad(x, (WINDOW - x.size, 0))
    x = (x - x.mean()) / np.sqrt(x.var() + 1e-7)  # in float32, as the reference does
    padded = np.pad(x.astype(np.float64), N_FFT // 2, mode="reflect")
    hann = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(N_FFT) / N_FFT)  # periodic
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP]
    power = np.abs(np.fft.rfft(frames * hann, axis=-1)) ** 2
    log = np.log10(np.maximum(_mel_filters().T @ power.T, 1e-10))[:, :-1]
    log = np.maximum(log, log.max() - 8.0)
    return np.asarray((log + 4.0) / 4.0, dtype=np.float32)


def lines() -> dict[str, npt.NDArray[np.int16]]:
    """A complete line and one cut mid-phrase, at their pause; over G.711 too; one over 8 s."""
    complete = np.concatenate([espeak("I'd like to book an appointment for Tuesday."), PAUSE])
    cut = np.concatenate([espeak("I'd like to book an appointment for"), PAUSE])
    long = np.concatenate([cut, complete, cut, complete])
    assert long.size > WINDOW
    return {
        "complete": complete,
        "cut": cut,
        "complete over G.711": telephone(complete),
        "cut over G.711": telephone(cut),
        "longer than the window": long,
    }


@pytest.fixture(scope="module")
def audio() -> dict[str, npt.NDArray[np.int16]]:
    return lines()


def test_features_match_the_reference_recipe(audio: dict[str, npt.NDArray[np.int16]]) -> None:
    for name, samples in audio.items():
        ours, ref = features(samples), reference_features(samples)
        assert ours.shape == ref.shape == (80, 800) and ours.dtype == np.float32, name
        # the same float64 steps: equal here, to float32's last bit; the bound allows a BLAS
        # that sums in another order (a changed step moves features by 1e-2 or more, a float32
        # spectrogram by 1e-5)
        assert float(np.abs(ours - ref).max()) < 1e-6, name


def test_the_probability_is_the_references(audio: dict[str, npt.NDArray[np.int16]]) -> None:
    assert default_model_path().is_file(), "make venv installs the model (deploy/models)"
    model = SmartTurnModel()
    names = list(audio)
    ours = model.predict([features(audio[n]) for n in names])
    ref = model.predict([reference_features(audio[n]) for n in names])
    assert all(0.0 <= p <= 1.0 for p in ours + ref)  # the graph's own sigmoid: no logits
    assert ours == pytest.approx(ref, abs=1e-3)  # measured: equal
