"""End-to-end fixtures: caller speech over a phone line (`say`), on the session's real models
(the `engines` fixture of tests/conftest.py), and the pjsua2 lifetime watch."""

from __future__ import annotations

import pytest

from pipeline.engines import Engines
from pipeline.tts import TtsEngine
from tests.support.pjsua_watch import pjsua_lifetimes
from tests.support.speech import Samples, telephone
from voicenode.simulate import caller_voice

__all__ = ["pjsua_lifetimes"]  # autouse: SIP calls here are watched too


@pytest.fixture(scope="session")
def say(engines: Engines) -> object:
    """Caller speech (Piper, caller voice) as it arrives over a mu-law phone line."""
    tts = engines.tts
    assert isinstance(tts, TtsEngine)

    def render(text: str) -> Samples:
        return telephone(caller_voice(tts, text))

    return render
