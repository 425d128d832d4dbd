"""Browser calls through the real app and uvicorn: an aiortc client offers, talks, hangs up."""

from __future__ import annotations

import asyncio
from typing import Any

import aioice.ice
import numpy as np
import numpy.typing as npt
import pytest

from media.webrtc import WebRtcOptions
from tests.support.harness import Node, auth, serve_node
from tests.support.host import AGENT_TEXT, USER_TEXT, VOICE_TO_VOICE_MS, FakeHost
from tests.support.load_fakes import LoadDriver
from tests.support.webrtc_peer import LOOPBACK, TestPeer

Samples = npt.NDArray[np.int16]


def loud_seconds(samples: Samples, threshold: float = 300.0) -> float:
    n = len(samples) // 320
    frames = samples[: n * 320].reshape(n, 320).astype(np.float64)
    return float(np.sum(np.sqrt(np.mean(frames**2, axis=1)) > threshold) * 0.02)


async def place_call(node: Node, peer: TestPeer, **body: Any) -> str:
    offer = await peer.offer()
    resp = await node.http.post(
        "/v1/webrtc/offer",
        json={"agent": "receptionist", **offer, **body},
        headers=auth(),
    )
    assert resp.status_code == 200, resp.text
    answer = resp.json()
    assert answer["type"] == "answer" and answer["sdp"].startswith("v=0")
    await peer.accept(answer["sdp"])
    return str(answer["call_id"])


def is_type(kind: str, **fields: Any) -> Any:
    return lambda m: m.get("type") == kind and all(m.get(k) == v for k, v in fields.items())


async def test_call_echoes_audio_streams_events_and_hangs_up_by_delete(
    node: Node, utterance: Samples
) -> None:
    peer = TestPeer(utterance)
    try:
        call_id = await place_call(node, peer, tenant="demo")
        info = await asyncio.wait_for(node.host.started.get(), 10)
        assert info.call_id == call_id and info.tenant_id == "demo" and info.transport == "webrtc"
        await peer.wait_state("connected")
        assert (await peer.wait_message(is_type("state")))["state"] == "listening"
        user = await peer.wait_message(is_type("transcript", role="user", final=True))
        assert user["text"] == USER_TEXT
        partial = await peer.wait_message(is_type("transcript", role="user", final=False))
        assert USER_TEXT.startswith(partial["text"])
        agent = await peer.wait_message(is_type("transcript", role="agent"))
        assert agent["text"] == AGENT_TEXT
        turn = await peer.wait_message(is_type("turn"))
        assert turn["voice_to_voice_ms"] == VOICE_TO_VOICE_MS
        # the echo of the utterance comes back as speech
        await peer.wait_audio(lambda a: loud_seconds(a) > 1.0, limit_s=15)
        assert node.host.active_calls() == 1

        resp = await node.http.delete(f"/v1/calls/{call_id}", headers=auth())
        assert resp.status_code == 204
        assert await asyncio.wait_for(node.host.finished.get(), 10) == call_id
        await peer.wait_state("closed", "failed")
        assert node.host.active_calls() == 0
        resp = await node.http.delete(f"/v1/calls/{call_id}", headers=auth())
        assert resp.status_code == 404
    finally:
        await peer.close()
    metrics = (await node.http.get("/metrics")).text
    assert 'voicenode_calls_total{outcome="hangup",transport="webrtc"}' in metrics


async def test_client_closing_ends_the_call(node: Node, utterance: Samples) -> None:
    peer = TestPeer(utterance)
    try:
        call_id = await place_call(node, peer)
        await peer.wait_state("connected")
        await peer.wait_audio(lambda a: len(a) > 0)
    finally:
        await peer.close()
    assert await asyncio.wait_for(node.host.finished.get(), 10) == call_id
    async with asyncio.timeout(10):
        await node.host.wait_idle()


async def test_host_ending_the_call_closes_the_peer(utterance: Samples) -> None:
    async with serve_node(FakeHost(end_after_frames=25)) as node:
        peer = TestPeer(utterance)
        try:
            await place_call(node, peer)
            ended = await peer.wait_message(is_type("ended"))
            assert ended["reason"] == "completed"
            await peer.wait_state("closed", "failed")
        finally:
            await peer.close()
        async with asyncio.timeout(10):
            await node.host.wait_idle()
        metrics = (await node.http.get("/metrics")).text
        assert 'voicenode_calls_total{outcome="completed",transport="webrtc"}' in metrics


def answer_codecs(sdp: str) -> list[str]:
    audio = next(line for line in sdp.splitlines() if line.startswith("m=audio"))
    pts = audio.split()[3:]
    names = {
        line.split()[0].split(":")[1]: line.split()[1].split("/")[0]
        for line in sdp.splitlines()
        if line.startswith("a=rtpmap:")
    }
    return [names[pt] for pt in pts]


async def test_opus_is_preferred_and_pcmu_works(node: Node, utterance: Samples) -> None:
    opus = TestPeer(utterance)
    pcmu = TestPeer(utterance, codecs=("audio/PCMU",))
    try:
        offer = await opus.offer()
        resp = await node.http.post(
            "/v1/webrtc/offer", json={"agent": "receptionist", **offer}, headers=auth()
        )
        assert answer_codecs(resp.json()["sdp"]) == ["opus", "PCMU"]
        await opus.accept(resp.json()["sdp"])

        offer = await pcmu.offer()
        resp = await node.http.post(
            "/v1/webrtc/offer", json={"agent": "receptionist", **offer}, headers=auth()
        )
        assert answer_codecs(resp.json()["sdp"]) == ["PCMU"]
        await pcmu.accept(resp.json()["sdp"])
        await pcmu.wait_message(is_type("transcript", role="agent"))
        await pcmu.wait_audio(lambda a: loud_seconds(a) > 1.0, limit_s=15)
    finally:
        await opus.close()
        await pcmu.close()


async def test_admission_refuses_over_max_calls_and_live_calls_go_on(utterance: Samples) -> None:
    async with serve_node(FakeHost(max_calls=1)) as node:
        first = TestPeer(utterance)
        second = TestPeer(utterance)
        try:
            await place_call(node, first)
            await first.wait_state("connected")
            offer = await second.offer()
            resp = await node.http.post(
                "/v1/webrtc/offer", json={"agent": "receptionist", **offer}, headers=auth()
            )
            assert resp.status_code == 503
            assert resp.headers["retry-after"] == "3"
            assert "max_calls" in resp.json()["detail"]
            # the live call is unaffected
            heard = len(first.audio())
            await first.wait_audio(lambda a: len(a) > heard + 16000)
            await first.wait_message(is_type("transcript", role="agent"))
        finally:
            await first.close()
            await second.close()
        async with asyncio.timeout(10):
            await node.host.wait_idle()
        metrics = (await node.http.get("/metrics")).text
        assert 'voicenode_calls_refused_total{reason="max_calls"}' in metrics
        # a slot is free again
        third = TestPeer(utterance)
        try:
            await place_call(node, third)
        finally:
            await third.close()


async def test_saturated_engines_refuse_new_calls_and_live_calls_go_on(
    utterance: Samples,
) -> None:
    load = LoadDriver()
    async with serve_node(FakeHost(max_calls=4)) as node:
        node.host.engines = load.engines  # the fake host's admission reads this estimator
        first = TestPeer(utterance)
        second = TestPeer(utterance)
        try:
            await place_call(node, first)
            await first.wait_state("connected")
            load.saturate()
            ready = await node.http.get("/readyz")
            assert ready.status_code == 503 and ready.json()["status"] == "saturated"
            offer = await second.offer()
            resp = await node.http.post(
                "/v1/webrtc/offer", json={"agent": "receptionist", **offer}, headers=auth()
            )
            assert resp.status_code == 503
            assert resp.headers["retry-after"] == "3"
            assert "engines_saturated" in resp.json()["detail"]
            # the live call is unaffected
            heard = len(first.audio())
            await first.wait_audio(lambda a: len(a) > heard + 16000)
            await first.wait_message(is_type("transcript", role="agent"))
            assert node.host.active_calls() == 1
        finally:
            await first.close()
            await second.close()
        async with asyncio.timeout(10):
            await node.host.wait_idle()
        metrics = (await node.http.get("/metrics")).text
        assert 'voicenode_calls_refused_total{reason="engines_saturated"}' in metrics
        # the load gone, the node is ready and takes calls again
        load.relieve()
        assert (await node.http.get("/readyz")).status_code == 200
        third = TestPeer(utterance)
        try:
            await place_call(node, third)
        finally:
            await third.close()


async def test_draining_refuses_new_calls(node: Node, utterance: Samples) -> None:
    node.host.start_drain()
    peer = TestPeer(utterance)
    try:
        offer = await peer.offer()
        resp = await node.http.post(
            "/v1/webrtc/offer", json={"agent": "receptionist", **offer}, headers=auth()
        )
    finally:
        await peer.close()
    assert resp.status_code == 503
    assert resp.headers["retry-after"] == "17"
    assert "draining" in resp.json()["detail"]
    ready = await node.http.get("/readyz")
    assert ready.status_code == 503 and ready.json()["status"] == "draining"


async def test_a_caller_that_never_connects_is_closed_and_released(utterance: Samples) -> None:
    """An offer nobody completes holds its slot until `connect_timeout_s`, and never any
    agent work: the agent starts when the media connects, not on the offer."""
    options = WebRtcOptions(host_addresses=LOOPBACK, connect_timeout_s=0.5)
    async with serve_node(FakeHost(), webrtc=options) as node:
        peer = TestPeer(utterance)
        try:
            offer = await peer.offer()
            resp = await node.http.post(
                "/v1/webrtc/offer", json={"agent": "receptionist", **offer}, headers=auth()
            )
            assert resp.status_code == 200
            call_id = resp.json()["call_id"]  # the caller never applies the answer
            assert node.host.active_calls() == 1  # admitted while it may still connect
            async with asyncio.timeout(10):
                await node.host.wait_idle()
            assert node.host.started.empty()  # the agent never ran
            assert node.host.finished.empty()
        finally:
            await peer.close()
        assert (await node.http.delete(f"/v1/calls/{call_id}", headers=auth())).status_code == 404


def vanish(peer: TestPeer) -> None:
    """The caller's machine drops off the network: its ICE sockets close without a word."""
    for transceiver in peer.pc.getTransceivers():
        connection = transceiver.sender.transport.transport._connection
        for protocol in connection._protocols:
            protocol.transport.close()


async def test_ice_failure_ends_the_call(
    node: Node, utterance: Samples, monkeypatch: pytest.MonkeyPatch
) -> None:
    # ICE consent (RFC 7675) checked every ~0.1 s instead of 5 s, expiring after 2 misses
    monkeypatch.setattr(aioice.ice, "CONSENT_INTERVAL", 0.1)
    monkeypatch.setattr(aioice.ice, "CONSENT_FAILURES", 2)
    peer = TestPeer(utterance)
    try:
        call_id = await place_call(node, peer)
        await peer.wait_state("connected")
        await peer.wait_message(is_type("state"))
        vanish(peer)
        assert await asyncio.wait_for(node.host.finished.get(), 15) == call_id
        async with asyncio.timeout(10):
            await node.host.wait_idle()
    finally:
        await peer.close()
    metrics = (await node.http.get("/metrics")).text
    assert 'voicenode_calls_total{outcome="hangup",transport="webrtc"}' in metrics
