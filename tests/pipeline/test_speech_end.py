"""The turn's `speech_end` mark at the last audible sound, not the VAD's last voiced frame
(`pipeline/speech_end.py`)."""

from __future__ import annotations

import numpy as np
import pytest

from media.frames import FRAME_SAMPLES, SAMPLE_RATE, frames_from_samples
from pipeline.speech_end import LOOKBACK_S, WINDOW, audible_end
from pipeline.vad import SileroModel, VadStream, open_gate
from tests.support.speech import espeak, telephone

LOUD = 3000  # about -21 dBFS
SOFT = 200  # about -44 dBFS: under the audible threshold


def tone(seconds: float, amplitude: float) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (amplitude * np.sin(2 * np.pi * 220 * t)).astype(np.int16)


def last_audible_sample_end(audio: np.ndarray) -> int:
    """Independent of the module: the end of the last 5 ms window (from the start) whose RMS
    reaches -40 dBFS."""
    usable = len(audio) // WINDOW * WINDOW
    rms = np.sqrt(np.mean(np.square(audio[:usable].astype(np.float64).reshape(-1, WINDOW)), 1))
    loud = np.flatnonzero(rms >= 32768 * 10 ** (-40 / 20))
    return (int(loud[-1]) + 1) * WINDOW


def test_a_real_line_marks_where_its_sound_ends_not_where_silero_lets_go() -> None:
    line = telephone(espeak("Next Tuesday."))
    audio = np.concatenate([line, np.zeros(SAMPLE_RATE // 2, dtype=np.int16)])
    audio = audio[: len(audio) // FRAME_SAMPLES * FRAME_SAMPLES]
    vad = VadStream(SileroModel(), gate=open_gate)
    frame_s = FRAME_SAMPLES / SAMPLE_RATE
    vad_end, voiced = 0.0, False
    for i, frame in enumerate(frames_from_samples(audio)):
        p = vad.feed(frame)
        if p >= (0.35 if voiced else 0.5):  # the turn detector's thresholds
            voiced, vad_end = True, (i + 1) * frame_s  # stamped at its arrival: its end
    last_at = len(audio) / SAMPLE_RATE
    assert voiced
    mark = audible_end(audio, last_at, vad_end)
    sound_end = last_audible_sample_end(audio) / SAMPLE_RATE
    assert mark <= vad_end
    if vad_end - LOOKBACK_S < sound_end <= vad_end:
        assert mark == pytest.approx(sound_end, abs=WINDOW / SAMPLE_RATE)
    print(f"VAD end {vad_end * 1000:.0f} ms, sound end {sound_end * 1000:.0f} ms")


def test_the_mark_moves_back_to_the_last_loud_window_within_the_lookback() -> None:
    audio = np.concatenate([tone(0.5, LOUD), np.zeros(int(0.3 * SAMPLE_RATE), np.int16)])
    # heard until 10.3 s; the VAD said voiced until 10.1 s; the sound ended at 10.0 s
    assert audible_end(audio, 10.3, 10.1) == pytest.approx(10.0, abs=1e-9)


def test_the_mark_stays_at_the_vad_end_when_nothing_before_it_is_audible() -> None:
    soft = np.concatenate([tone(0.5, SOFT), np.zeros(int(0.3 * SAMPLE_RATE), np.int16)])
    assert audible_end(soft, 10.3, 10.1) == 10.1  # a soft voice: the VAD's end
    early = np.concatenate([tone(0.5, LOUD), np.zeros(int(0.6 * SAMPLE_RATE), np.int16)])
    # the sound ended 0.3 s before the VAD's end, further back than LOOKBACK_S: not moved
    assert LOOKBACK_S < 0.3
    assert audible_end(early, 10.6, 10.3) == 10.3


def test_the_mark_never_moves_later_than_the_vad_end() -> None:
    loud = tone(1.0, LOUD)  # sound (or line noise) on to the last sample
    assert audible_end(loud, 10.0, 9.8) == 9.8
    assert audible_end(loud, 10.0, 10.0) == 10.0
    assert audible_end(np.zeros(0, np.int16), 10.0, 9.8) == 9.8
    assert audible_end(loud, 10.0, 10.5) == 10.5  # (an end after the audio: left alone)
    assert audible_end(loud[:40], 10.0, 10.0) == 10.0  # shorter than a window
