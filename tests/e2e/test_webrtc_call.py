"""A WebRTC call to the real node (embedded models, the receptionist) from an aiortc peer.

The node is served in this process on a free loopback port, as `voicenode serve` serves it:
`open_node` loads the models, the control API answers the peer's offer. The peer waits for
the greeting, says one line in the caller voice, and hears the reply. The node's transcript
arrives on the `events` data channel; the audio the peer received transcribes back (with the
node's own STT engine) to what the agent said.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt
import pytest

from media.frames import SAMPLE_RATE
from pipeline.tts import TtsEngine
from tests.support.harness import RealNode, auth, real_node_settings, serve_real_node
from tests.support.speech import transcribe, words
from tests.support.webrtc_peer import TestPeer
from voicenode.simulate import caller_voice

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

Message = dict[str, Any]
LINE = "Hi, I'd like to book a cleaning."
REPLY_WORDS = {"sure", "help", "book", "cleaning", "name"}
"""The receptionist's answer: "Sure, I can help you book a cleaning. Can I have your name,
please?" (config/agents/receptionist.toml)."""


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[RealNode]:
    s = real_node_settings(tmp_path / "node")
    # The agent's voice without Piper's sampling noise: what the peer hears transcribes the same
    # way every run (tests/e2e/speech.py).
    s = msgspec.structs.replace(s, tts=msgspec.structs.replace(s.tts, deterministic=True))
    async with serve_real_node(s) as n:
        yield n


def is_state(state: str) -> Any:
    return lambda m: m.get("type") == "state" and m.get("state") == state


def agent_line(turn: int) -> Any:
    return lambda m: m.get("type") == "transcript" and m["role"] == "agent" and m["turn"] == turn


def rms(audio: npt.NDArray[np.int16]) -> float:
    return float(np.sqrt(np.mean(audio.astype(np.float64) ** 2))) if len(audio) else 0.0


async def call(node: RealNode, peer: TestPeer, **extra: str) -> str:
    offer = await peer.offer()
    resp = await node.http.post(
        "/v1/webrtc/offer", json={"agent": "receptionist", **offer, **extra}, headers=auth()
    )
    assert resp.status_code == 200, resp.text
    answer = resp.json()
    assert answer["type"] == "answer"
    await peer.accept(answer["sdp"])
    return str(answer["call_id"])


@pytest.mark.parametrize("codec", ["audio/opus", "audio/PCMU"])
async def test_a_browser_call_to_the_receptionist(node: RealNode, codec: str) -> None:
    tts = node.engines.tts
    assert isinstance(tts, TtsEngine)
    line = caller_voice(tts, LINE)
    peer = TestPeer(np.zeros(0, dtype=np.int16), codecs=(codec,))
    try:
        call_id = await call(node, peer, tenant="demo")
        await peer.wait_state("connected", limit_s=15)
        # The greeting is spoken, then the agent listens.
        greeting = await peer.wait_message(agent_line(0), limit_s=20)
        assert "bright smile dental" in greeting["text"].lower()
        await peer.wait_message(is_state("listening"), limit_s=10)
        start = len(peer.audio())
        peer.mic.say(line)
        await peer.mic.finished.wait()
        spoke_at = time.monotonic()

        # The node heard the line: partials while it was spoken, then the final transcript.
        final = await peer.wait_message(
            lambda m: m.get("type") == "transcript" and m["role"] == "user" and m["final"],
            limit_s=15,
        )
        assert {"book", "cleaning"} <= words(final["text"]), final
        await peer.wait_audio(lambda a: rms(a[-1600:]) > 300, limit_s=10)  # the reply starts
        heard_at = time.monotonic()
        reply = await peer.wait_message(agent_line(final["turn"]), limit_s=20)
        assert len(words(reply["text"]) & REPLY_WORDS) >= 4, reply
        turn = await peer.wait_message(lambda m: m.get("type") == "turn", limit_s=5)
        assert turn["voice_to_voice_ms"] is not None and turn["voice_to_voice_ms"] > 0
        await peer.wait_message(is_state("listening"), limit_s=5)
        # ... and the reply's audio, as the peer received it, says what the agent said.
        received = peer.audio()[start:]
        heard = words(await transcribe(node.engines, received[: 12 * SAMPLE_RATE]))
        assert len(heard & REPLY_WORDS) >= 3, (heard, reply["text"])
        print(
            f"webrtc call ({codec}): voice-to-voice {turn['voice_to_voice_ms']:.0f} ms at the"
            f" node, {(heard_at - spoke_at) * 1000:.0f} ms at the peer; heard {sorted(heard)}"
        )

        # The caller hangs up through the API: the node closes the call and counts it.
        resp = await node.http.delete(f"/v1/calls/{call_id}", headers=auth())
        assert resp.status_code == 204
        ended = await peer.wait_message(lambda m: m.get("type") == "ended", limit_s=10)
        assert ended["reason"] == "hangup"
        await peer.wait_state("closed", "failed", limit_s=10)
    finally:
        await peer.close()
    await node.node.wait_idle()
    assert node.node.active_calls() == 0
    text = (await node.http.get("/metrics")).text
    assert 'voicenode_calls_total{outcome="hangup",transport="webrtc"}' in text
    assert 'voicenode_turn_stage_seconds_count{stage="voice_to_voice"}' in text
    assert 'voicenode_engine_queue_depth{engine="stt"}' in text


async def test_the_caller_saying_goodbye_ends_the_call_with_its_outcome(node: RealNode) -> None:
    tts = node.engines.tts
    assert isinstance(tts, TtsEngine)
    peer = TestPeer(np.zeros(0, dtype=np.int16))
    try:
        await call(node, peer)
        await peer.wait_message(is_state("listening"), limit_s=25)
        peer.mic.say(caller_voice(tts, "No thank you goodbye."))
        # The agent says goodbye and ends the call; the outcome reaches the peer, then the
        # node closes the connection.
        ended = await peer.wait_message(lambda m: m.get("type") == "ended", limit_s=25)
        assert ended["reason"] == "completed"
        await peer.wait_state("closed", "failed", limit_s=10)
    finally:
        await peer.close()
    await node.node.wait_idle()
