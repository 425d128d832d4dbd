"""Real models, real audio: engines are loaded once per test session (they are process-wide)."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from config import load_settings
from media.g711 import ulaw_decode, ulaw_encode
from media.resample import resample
from media.wav import read_wav
from pipeline.engines import Engines
from pipeline.stt import SttEngine
from pipeline.tts import TtsEngine
from tests.support.pjsua_watch import pjsua_lifetimes
from voicenode.simulate import caller_voice

from .speech import DETERMINISTIC_VOICE

Samples = npt.NDArray[np.int16]
__all__ = ["pjsua_lifetimes"]  # autouse: SIP calls here are watched too


@pytest.fixture(scope="session")
def engines() -> Iterator[Engines]:
    eng = Engines.load_blocking(load_settings(env=DETERMINISTIC_VOICE))
    yield eng
    eng.close()


def telephone(samples: Samples) -> Samples:
    """16 kHz audio through a G.711 mu-law phone line and back (8 kHz, companded)."""
    narrow = resample(samples, 16_000, 8_000)
    return resample(ulaw_decode(ulaw_encode(narrow)), 8_000, 16_000)


@pytest.fixture(scope="session")
def say(engines: Engines) -> object:
    """Caller speech (Piper, caller voice) as it arrives over a mu-law phone line."""
    tts = engines.tts
    assert isinstance(tts, TtsEngine)

    def render(text: str) -> Samples:
        return telephone(caller_voice(tts, text))

    return render


def espeak(text: str, tmp: Path) -> Samples:
    """A second, unrelated synthetic voice (espeak-ng), at 16 kHz."""
    exe = shutil.which("espeak-ng")
    assert exe, "espeak-ng is installed by `make test` (Debian package espeak-ng)"
    out = tmp / "espeak.wav"
    subprocess.run([exe, "-v", "en-us", "-s", "150", "-w", str(out), text], check=True)
    return read_wav(out)


async def transcribe(engines: Engines, audio: Samples) -> str:
    stt = engines.stt
    assert isinstance(stt, SttEngine)
    return await stt.transcribe(audio, final=True) or ""


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9']+", text.lower()))
