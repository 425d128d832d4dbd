"""Caller speech for tests: espeak-ng (deterministic: the same text gives the same audio)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soxr

from media.frames import SAMPLE_RATE


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
