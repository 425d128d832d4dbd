"""Speech for tests: rendering caller lines, hearing them, and checking what was recognised.

`espeak` renders a line with espeak-ng (deterministic: the same text gives the same audio),
`telephone` passes audio through a G.711 line, `transcribe` runs the real STT engine on it.

Two rules for every test that transcribes audio the node (or a test caller) synthesized:

1. The synthesis is deterministic. Caller lines come from `caller_voice` (Piper's noise off);
   the agent's voice is made deterministic by `DETERMINISTIC_VOICE` (`tts.deterministic`), which
   the `engines` fixture and every node an end-to-end test starts run with. Piper otherwise
   samples its durations and voice from noise, and now and then a take heard through a G.711
   line comes back as "Bright Small Dental".
2. The assertion has a tolerance that a correct system always meets: enough of the expected
   key words (`heard_of`, counting Whisper tiny.en's known confusions on telephone-band
   synthetic speech), or a word error rate bound (`word_error_rate`), never every word exactly.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import wave
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soxr

from media.frames import SAMPLE_RATE
from media.g711 import ulaw_decode, ulaw_encode
from media.resample import resample
from pipeline.engines import Engines
from pipeline.stt import SttEngine

Samples = npt.NDArray[np.int16]

DETERMINISTIC_VOICE = {"VOICENODE_TTS__DETERMINISTIC": "true"}
"""Environment for `load_settings(env=...)`: the agent's Piper voice without sampling noise."""

SOUNDS_LIKE: dict[str, frozenset[str]] = {
    "bright": frozenset({"brite"}),
    "smile": frozenset({"small", "smiles"}),
    "dental": frozenset({"dentle", "bentle"}),
    "thanks": frozenset({"thank"}),
    "goodbye": frozenset({"bye"}),
}
"""Words Whisper tiny.en has been seen to hear as another word on this synthetic speech."""


_CONTRACTIONS = (
    (re.compile(r"\bcan't\b"), "can not"),
    (re.compile(r"\bwon't\b"), "will not"),
    (re.compile(r"n't\b"), " not"),
    (re.compile(r"'re\b"), " are"),
    (re.compile(r"'m\b"), " am"),
    (re.compile(r"'ll\b"), " will"),
    (re.compile(r"'d\b"), " would"),
    (re.compile(r"\b(that|it|what|there|here)'s\b"), r"\1 is"),
)


def spoken_words(text: str) -> list[str]:
    """Lower-case words with contractions spelt out ("I'd" and "I would" are the same line)."""
    text = text.lower().replace("\u2019", "'")
    for pattern, spelt in _CONTRACTIONS:
        text = pattern.sub(spelt, text)
    return re.findall(r"[a-z0-9']+", text)


def heard_of(expected: Iterable[str], heard: Iterable[str]) -> set[str]:
    """The `expected` words found in `heard` (a word or one of its known confusions)."""
    got = set(heard)
    return {w for w in expected if w in got or SOUNDS_LIKE.get(w, frozenset()) & got}


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Word-level edit distance over the reference's length (0.0: the same words)."""
    ref, hyp = spoken_words(reference), spoken_words(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        diagonal, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            diagonal, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diagonal + (r != h))
    return row[-1] / max(len(ref), 1)


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9']+", text.lower()))


def espeak(
    text: str, *, voice: str = "en-us", words_per_minute: int = 150
) -> npt.NDArray[np.int16]:
    """`text` spoken by espeak-ng, as 16 kHz int16 samples."""
    exe = shutil.which("espeak-ng")
    assert exe, "espeak-ng is installed by `make test` (Debian package espeak-ng)"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "line.wav"
        cmd = [exe, "-v", voice, "-s", str(words_per_minute), "-w", str(out), text]
        subprocess.run(cmd, check=True)
        with wave.open(str(out)) as w:
            rate, raw = w.getframerate(), w.readframes(w.getnframes())
    audio = np.frombuffer(raw, dtype=np.int16).astype(np.float32)
    return np.asarray(soxr.resample(audio, rate, SAMPLE_RATE), dtype=np.int16)


def telephone(samples: Samples) -> Samples:
    """16 kHz audio through a G.711 mu-law phone line and back (8 kHz, companded)."""
    narrow = resample(samples, 16_000, 8_000)
    return resample(ulaw_decode(ulaw_encode(narrow)), 8_000, 16_000)


async def transcribe(engines: Engines, audio: Samples) -> str:
    stt = engines.stt
    assert isinstance(stt, SttEngine)
    return await stt.transcribe(audio, final=True) or ""
