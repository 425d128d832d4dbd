"""The beep detector on generated tones (numpy and sox), real espeak-ng speech and DTMF, at
16 kHz and through a G.711 mu-law line."""

from __future__ import annotations

import io
import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

from media.g711 import ulaw_decode, ulaw_encode
from media.resample import resample
from media.tone import Beep, BeepDetector, BeepSettings, measure_tone
from tests.support.speech import Samples, espeak, telephone

RATE = 16_000
LEAD_S = 0.513  # the tone starts mid-frame


def tone(hz: float | list[float], ms: float, *, rate: int = RATE, level: float = 0.3) -> Samples:
    """A tone (several frequencies: their sum, at equal levels) with 5 ms ramps."""
    freqs = [hz] if isinstance(hz, float | int) else hz
    t = np.arange(int(rate * ms / 1000)) / rate
    x = sum(np.sin(2 * np.pi * f * t) for f in freqs) / len(freqs)
    ramp = min(len(t) // 2, int(rate * 0.005))
    envelope = np.ones(len(t))
    envelope[:ramp] = envelope[-ramp:][::-1] = np.linspace(0, 1, ramp)
    return (x * envelope * level * 32767).astype(np.int16)


def sox_tone(hz: float, ms: float, tmp: Path) -> Samples:
    exe = shutil.which("sox")
    assert exe, "sox is installed by `make test` (Debian package sox)"
    out = tmp / f"beep_{hz}_{ms}.wav"
    cmd = [exe, "-n", "-r", str(RATE), "-c", "1", "-b", "16", str(out)]
    subprocess.run([*cmd, "synth", str(ms / 1000), "sine", str(hz), "vol", "0.4"], check=True)
    with wave.open(str(out)) as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)


def with_silence(x: Samples, *, rate: int = RATE, lead_s: float = LEAD_S) -> Samples:
    noise = np.random.default_rng(7).normal(0, 30, int(rate * (lead_s + 1.0)))
    start = int(rate * lead_s)
    out = np.concatenate([noise[:start], x.astype(np.float64), noise[start:]])
    return np.clip(out, -32768, 32767).astype(np.int16)


def beeps_in(x: Samples, *, rate: int = RATE, settings: BeepSettings | None = None) -> list[Beep]:
    detector = BeepDetector(settings, rate=rate)
    n = rate // 50
    found = []
    for i in range(0, len(x) - n + 1, n):
        beep = detector.feed(x[i : i + n], i / rate)
        if beep is not None:
            found.append(beep)
    return found


def ulaw_line_8k(x: Samples) -> Samples:
    """16 kHz audio as the 8 kHz mu-law line carries it, decoded (the detector at 8 kHz)."""
    return ulaw_decode(ulaw_encode(resample(x, RATE, 8_000)))


@pytest.mark.parametrize("hz", [1000.0, 1400.0, 1800.0])
@pytest.mark.parametrize("ms", [200, 400, 800])
def test_a_beep_is_found_with_its_end_and_frequency(hz: float, ms: int) -> None:
    audio = with_silence(tone(hz, ms))
    for line, rate in [(audio, RATE), (telephone(audio), RATE), (ulaw_line_8k(audio), 8_000)]:
        found = beeps_in(line, rate=rate)
        assert len(found) == 1, (rate, found)
        beep = found[0]
        assert abs(beep.hz - hz) <= 20
        assert abs(beep.ended_s - (LEAD_S + ms / 1000)) <= 0.03  # within its frame and ramp
        assert abs(beep.duration_ms - ms) <= 50


@pytest.mark.parametrize(("hz", "ms"), [(1000.0, 250), (1234.0, 500), (1900.0, 700)])
def test_sox_beeps_through_the_phone_line(hz: float, ms: int, tmp_path: Path) -> None:
    audio = with_silence(sox_tone(hz, ms, tmp_path))
    for line in (audio, telephone(audio)):
        (beep,) = beeps_in(line)
        assert abs(beep.hz - hz) <= 20
        assert abs(beep.ended_s - (LEAD_S + ms / 1000)) <= 0.03


def test_too_short_too_long_and_out_of_band_tones_are_not_beeps() -> None:
    assert beeps_in(with_silence(tone(1000.0, 100))) == []
    assert beeps_in(with_silence(tone(1000.0, 4000))) == []
    assert beeps_in(with_silence(tone(440.0, 500))) == []  # a ringback-like tone
    assert beeps_in(with_silence(tone(2600.0, 500))) == []
    quiet = tone(1000.0, 500, level=0.002)  # -54 dBFS: line noise, not a beep
    assert beeps_in(with_silence(quiet)) == []


DTMF = {
    "1": (697, 1209), "2": (697, 1336), "3": (697, 1477), "A": (697, 1633),
    "4": (770, 1209), "5": (770, 1336), "6": (770, 1477), "B": (770, 1633),
    "7": (852, 1209), "8": (852, 1336), "9": (852, 1477), "C": (852, 1633),
    "*": (941, 1209), "0": (941, 1336), "#": (941, 1477), "D": (941, 1633),
}  # fmt: skip


@pytest.mark.parametrize("ms", [200, 800])
def test_dtmf_is_not_a_beep(ms: int) -> None:
    for digit, (low, high) in DTMF.items():
        audio = with_silence(tone([float(low), float(high)], ms))
        for line, rate in [(audio, RATE), (telephone(audio), RATE), (ulaw_line_8k(audio), 8_000)]:
            assert beeps_in(line, rate=rate) == [], digit


def test_dtmf_with_the_high_tone_4_db_louder_is_not_a_beep() -> None:
    t = np.arange(int(RATE * 0.5)) / RATE
    gain = 10 ** (4 / 20)
    x = np.sin(2 * np.pi * 941 * t) + gain * np.sin(2 * np.pi * 1477 * t)
    audio = with_silence((x / (1 + gain) * 0.4 * 32767).astype(np.int16))
    assert beeps_in(audio) == [] and beeps_in(telephone(audio)) == []


SPEECH = [
    "Hi, you've reached Doctor Smith's office. We can't take your call right now, "
    "please leave a message after the tone.",
    "Hello?",
    "Yes, speaking.",
    "Hello, this is Mary. Who is calling, please?",
]
SUSTAINED = ["[[a::::::::::::::]]", "[[o::::::::::::::]]", "[[i::::::::::::::]]", "[[m::::::]]"]


def espeak_phonemes(phonemes: str, *, pitch: int) -> Samples:
    """espeak-ng speaking phoneme input (a vowel held long) at a given pitch."""
    exe = shutil.which("espeak-ng")
    assert exe, "espeak-ng is installed by `make test` (Debian package espeak-ng)"
    raw = subprocess.run(
        [exe, "-v", "en-us", "-p", str(pitch), "-s", "80", "--stdout", phonemes],
        check=True,
        capture_output=True,
    ).stdout
    with wave.open(io.BytesIO(raw)) as w:
        audio = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
        return resample(audio, w.getframerate(), RATE)


def test_speech_is_not_a_beep() -> None:
    for line in SPEECH:
        for wpm in (120, 175):
            audio = with_silence(espeak(line, words_per_minute=wpm))
            assert beeps_in(audio) == [], line
            assert beeps_in(telephone(audio)) == [], line
            assert beeps_in(ulaw_line_8k(audio), rate=8_000) == [], line


def test_sustained_vowels_are_not_beeps() -> None:
    for phonemes in SUSTAINED:
        for pitch in (20, 50, 90):
            vowel = espeak_phonemes(phonemes, pitch=pitch)
            assert len(vowel) > RATE * 0.5  # the vowel is really held
            audio = with_silence(vowel)
            assert beeps_in(audio) == [], (phonemes, pitch)
            assert beeps_in(telephone(audio)) == [], (phonemes, pitch)


def test_a_beep_right_after_speech_is_found() -> None:
    greeting = espeak("Please leave a message after the tone.")
    gap = np.zeros(int(RATE * 0.3), dtype=np.int16)
    audio = telephone(with_silence(np.concatenate([greeting, gap, tone(1400.0, 400)])))
    (beep,) = beeps_in(audio)
    end = LEAD_S + (len(greeting) + len(gap)) / RATE + 0.4
    assert abs(beep.ended_s - end) <= 0.03 and abs(beep.hz - 1400) <= 20


def test_measure_reports_purity_and_level() -> None:
    pure = measure_tone(tone(1400.0, 100)[800:1120], RATE)
    assert pure.purity > 0.9 and abs(pure.hz - 1400) <= 10
    assert measure_tone(np.zeros(320, dtype=np.int16), RATE).purity == 0.0
    noise = np.random.default_rng(1).normal(0, 3000, 320).astype(np.int16)
    assert measure_tone(noise, RATE).purity < 0.3


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="min_hz"):
        BeepSettings(min_hz=2000, max_hz=1000)
    with pytest.raises(ValueError, match="min_ms"):
        BeepSettings(min_ms=500, max_ms=400)
    with pytest.raises(ValueError, match="8 or 16 kHz"):
        BeepDetector(rate=44_100)
