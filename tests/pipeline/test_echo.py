"""EchoGuard on real speech: the agent's voice (Piper) coming back in the caller's audio,
with and without the caller (espeak-ng) talking over it, through the real Silero VAD and the
turn detector, gated as the session gates it (`pipeline/session_turns.py`)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from prometheus_client import REGISTRY

from agents.spec import TurnSettings
from config.schema import TtsSettings
from media.frames import FRAME_SAMPLES, SAMPLE_RATE, AudioFrame
from media.g711 import ulaw_decode, ulaw_encode
from pipeline.echo import EchoGuard
from pipeline.tts import TtsEngine
from pipeline.turn import TurnDetector
from pipeline.vad import SileroModel, VadStream, default_silero_path, webrtc_gate
from tests.support.speech import espeak

Samples = npt.NDArray[np.int16]
FRAME_S = FRAME_SAMPLES / SAMPLE_RATE
AGENT_LINE = (
    "Our clinic was founded in nineteen ninety by two sisters. Since then we have grown to "
    "six dentists and four hygienists, and we offer cleanings, fillings and crowns."
)


@pytest.fixture(scope="module")
def agent_voice() -> Samples:
    tts = TtsEngine(TtsSettings())
    try:
        return tts.synthesize_blocking(AGENT_LINE, deterministic=True)
    finally:
        tts.close()


@pytest.fixture(scope="module")
def caller_voice() -> Samples:
    return espeak("Sorry to interrupt, what is your address please?")


@pytest.fixture(scope="module")
def silero() -> SileroModel:
    return SileroModel(default_silero_path())


def echo_of(agent: Samples, *, db: float, delay_s: float, length: int) -> npt.NDArray[np.float64]:
    out = np.zeros(length)
    d = round(delay_s * SAMPLE_RATE)
    n = min(len(agent), length - d)
    out[d : d + n] = agent[:n] * 10 ** (db / 20)
    return out


def longest_barge(
    silero: SileroModel,
    agent: Samples,
    inbound: npt.NDArray[np.float64],
    *,
    guard: bool,
) -> float:
    """The agent plays `agent` from t=1 s while the caller's line carries `inbound`; returns
    the most speech (s) one caller utterance reached: at `backchannel_ms` it is a barge-in."""
    echo = EchoGuard()
    vad = VadStream(silero, gate=webrtc_gate(2))
    turns = TurnDetector(TurnSettings())
    pcm = np.asarray(np.clip(inbound, -32768, 32767), dtype=np.int16)
    most = 0.0
    for i in range(0, len(pcm) - FRAME_SAMPLES + 1, FRAME_SAMPLES):
        slot = 1.0 + i / SAMPLE_RATE
        if i < len(agent):
            echo.played(agent[i : i + FRAME_SAMPLES], slot)
        frame = AudioFrame.from_samples(pcm[i : i + FRAME_SAMPLES])
        now = slot + FRAME_S
        p = vad.feed(frame)
        echo.heard(frame.samples, now)
        if guard and p >= turns.silence_threshold and echo.explains():
            p = 0.0
        turns.feed(p, now)
        if turns.in_utterance:
            most = max(most, turns.voiced_s)
    return most


def suppressed() -> float:
    return REGISTRY.get_sample_value("voicenode_echo_suppressed_frames_total") or 0.0


def barges_in(voiced_s: float) -> bool:
    return voiced_s * 1000 >= TurnSettings().backchannel_ms


@pytest.mark.parametrize(("db", "delay_s", "ulaw"), [(-10, 0.06, False), (-6, 0.2, True)])
def test_the_agents_own_voice_coming_back_does_not_barge_in(
    silero: SileroModel, agent_voice: Samples, db: float, delay_s: float, ulaw: bool
) -> None:
    inbound = echo_of(agent_voice, db=db, delay_s=delay_s, length=len(agent_voice) + 16000)
    if ulaw:  # through a trunk's G.711 both ways
        coded = ulaw_decode(ulaw_encode(np.clip(inbound, -32768, 32767).astype(np.int16)))
        inbound = coded.astype(np.float64)
    before = suppressed()
    # Unguarded, the echo is speech enough to interrupt the agent (what the guard prevents).
    assert barges_in(longest_barge(silero, agent_voice, inbound, guard=False))
    assert not barges_in(longest_barge(silero, agent_voice, inbound, guard=True))
    assert suppressed() - before >= 100  # 2 s and more of speech frames


def test_the_caller_talking_over_the_echo_still_barges_in(
    silero: SileroModel, agent_voice: Samples, caller_voice: Samples
) -> None:
    inbound = echo_of(agent_voice, db=-10, delay_s=0.06, length=len(agent_voice) + 16000)
    start = 2 * SAMPLE_RATE
    inbound[start : start + len(caller_voice)] += caller_voice
    assert barges_in(longest_barge(silero, agent_voice, inbound, guard=True))


def test_without_outbound_audio_the_guard_changes_nothing(
    silero: SileroModel, caller_voice: Samples
) -> None:
    guard = EchoGuard()
    for i in range(0, len(caller_voice) - FRAME_SAMPLES + 1, FRAME_SAMPLES):
        guard.heard(caller_voice[i : i + FRAME_SAMPLES], 1.0 + (i + FRAME_SAMPLES) / SAMPLE_RATE)
        assert not guard.explains()
    assert guard.suppressed == 0
    silent: Samples = np.zeros(0, dtype=np.int16)
    inbound = np.concatenate([np.zeros(SAMPLE_RATE), caller_voice, np.zeros(SAMPLE_RATE)])
    guarded = longest_barge(silero, silent, inbound, guard=True)
    assert guarded == longest_barge(silero, silent, inbound, guard=False)
    assert barges_in(guarded)


def test_a_frame_is_explained_only_by_audio_that_went_out_before_it() -> None:
    """Speech the agent has not sent yet, or sent more than `max_delay_s` earlier, does not
    explain an inbound frame."""
    rng = np.random.default_rng(1)
    agent = np.asarray(rng.uniform(-3000, 3000, SAMPLE_RATE), dtype=np.int16)
    for delay_s, explained in [(0.1, True), (0.5, False)]:
        guard = EchoGuard(max_delay_s=0.3)
        verdicts = []
        for k in range(len(agent) // FRAME_SAMPLES):
            guard.played(agent[k * FRAME_SAMPLES : (k + 1) * FRAME_SAMPLES], k * FRAME_S)
            back = k - round(delay_s / FRAME_S)
            chunk = agent[back * FRAME_SAMPLES : (back + 1) * FRAME_SAMPLES] if back >= 0 else None
            if chunk is None:
                chunk = np.zeros(FRAME_SAMPLES, dtype=np.int16)
            guard.heard(np.asarray(chunk // 3, dtype=np.int16), (k + 1) * FRAME_S)
            verdicts.append(guard.explains())
        assert any(verdicts) == explained
