"""Speech from text (`media.speech`): the caller voice the wire bench loads for itself is the
one `voicenode.simulate.caller_voice` speaks on the node's TTS engine, and espeak-ng's voice.

These load the embedded Piper voice (about a second each) and run espeak-ng.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import soxr

from config.schema import TtsSettings
from media.frames import SAMPLE_RATE
from media.speech import CALLER_PITCH, CallerVoice, Samples, espeak
from pipeline.tts import TtsEngine
from voicenode.simulate import caller_voice

LINE = "I would like to book a cleaning for next Tuesday."


@pytest.fixture(scope="module")
def tts() -> Iterator[TtsEngine]:
    engine = TtsEngine(TtsSettings())
    yield engine
    engine.close()


def _correlation(a: Samples, b: Samples) -> float:
    n = min(len(a), len(b))
    x, y = a[:n].astype(np.float64), b[:n].astype(np.float64)
    return float(np.dot(x, y) / (np.linalg.norm(x) * np.linalg.norm(y)))


def test_the_caller_voice_is_the_engines_voice_pitched_up_noise_off(tts: TtsEngine) -> None:
    """What `caller_voice` always was: the engine's voice, slowed by `CALLER_PITCH` with the
    noise off, then resampled back to the original tempo (so it sounds higher)."""
    slow = tts.synthesize_blocking(LINE, length_scale=CALLER_PITCH, deterministic=True)
    shifted = soxr.resample(slow, int(SAMPLE_RATE * CALLER_PITCH), SAMPLE_RATE)
    expected = np.asarray(shifted, dtype=np.int16)
    line = caller_voice(tts, LINE)
    assert line.dtype == np.int16
    np.testing.assert_array_equal(line, expected)
    np.testing.assert_array_equal(caller_voice(tts, LINE), line)  # the same audio every time
    plain = tts.synthesize_blocking(LINE, deterministic=True)
    # About as long as the plain voice (the tempo is kept), within Piper's rounding of durations.
    assert abs(len(line) - len(plain)) < 0.1 * len(plain)


def test_the_wire_benchs_own_caller_voice_speaks_the_same_line(tts: TtsEngine) -> None:
    """The wire bench loads the embedded voice itself (no TTS engine): its caller lines are
    the ones the engine-based caller voice renders (compared with a tolerance: two onnxruntime
    sessions need not round alike)."""
    own = CallerVoice.load()(LINE)
    engine = caller_voice(tts, LINE)
    assert own.dtype == np.int16
    assert abs(len(own) - len(engine)) <= SAMPLE_RATE // 100  # within 10 ms
    assert _correlation(own, engine) > 0.98


def test_espeak_speaks_16khz_int16() -> None:
    audio = espeak("Hello, is this the dental office?")
    assert audio.dtype == np.int16
    assert 0.8 * SAMPLE_RATE < len(audio) < 5 * SAMPLE_RATE
    assert int(np.abs(audio.astype(np.int32)).max()) > 1000  # speech, not silence
