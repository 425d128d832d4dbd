"""The printed /phone link carries a phone token, not the admin key: against the real app, the
token places a WebRTC call to a demo agent and does nothing else, and stops working when it
expires (virtual clock)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from control_api.phone import PhoneTokens
from media.clock import VirtualClock
from tests.support.harness import auth, serve_node
from tests.support.host import FakeHost
from tests.support.webrtc_peer import TestPeer

TTL_S = 3600.0


def test_tokens_expire_and_are_not_keys() -> None:
    tokens = PhoneTokens(TTL_S)
    token = tokens.issue(now=100.0)
    assert token.startswith("vnp_") and len(token) > 30
    assert tokens.valid(token, 100.0) and tokens.valid(token, 100.0 + TTL_S - 0.001)
    assert not tokens.valid(token, 100.0 + TTL_S)
    assert not tokens.valid(token.removeprefix("vnp_"), 100.0)
    assert not tokens.valid(token[:-1] + ("A" if token[-1] != "A" else "B"), 100.0)
    assert not tokens.valid("vnp_" + "x" * 32, 100.0)
    with pytest.raises(ValueError):
        PhoneTokens(0)


async def test_a_phone_token_places_a_demo_call_and_nothing_else() -> None:
    clock = VirtualClock(start=1000.0)
    phone = PhoneTokens(TTL_S)
    token = phone.issue(clock.now())
    host = FakeHost()
    async with serve_node(host, clock=clock, phone=phone) as node:
        page = await node.http.get("/phone")
        assert page.headers["cache-control"] == "no-store"
        assert page.headers["referrer-policy"] == "no-referrer"
        # the one thing it may do: offer a WebRTC call to one of demo's agents
        peer = TestPeer(np.zeros(16_000, dtype=np.int16))
        try:
            offer = await peer.offer()
            resp = await node.http.post(
                "/v1/webrtc/offer", json={"agent": "receptionist", **offer}, headers=auth(token)
            )
            assert resp.status_code == 200, resp.text
            call_id = resp.json()["call_id"]
            await peer.accept(resp.json()["sdp"])
            info = await asyncio.wait_for(host.started.get(), 20)
            assert (info.call_id, info.tenant_id, info.transport) == (call_id, "demo", "webrtc")
        finally:
            await peer.close()
        # not for another tenant
        body = {"agent": "receptionist", "sdp": "v=0\r\n", "type": "offer", "tenant": "acme"}
        resp = await node.http.post("/v1/webrtc/offer", json=body, headers=auth(token))
        assert resp.status_code == 403
        # nothing else: refused everywhere else (403; a known token, not counted as a guess)
        for method, path, json in [
            ("GET", "/v1/agents", None),
            ("GET", "/v1/numbers", None),
            ("GET", "/v1/keys", None),
            ("POST", "/v1/keys", {"role": "admin"}),
            ("GET", "/v1/tenants", None),
            ("POST", "/v1/calls", {"agent": "receptionist", "to": "+15550100"}),
            ("DELETE", f"/v1/calls/{call_id}", None),
            ("GET", "/v1/tenants/demo", None),
        ]:
            resp = await node.http.request(method, path, json=json, headers=auth(token))
            assert resp.status_code == 403, (method, path, resp.text)
            assert token not in resp.text
        # expired: refused on its own route too, while the admin key still works
        await clock.advance(TTL_S)
        body = {"agent": "receptionist", "sdp": "v=0\r\n", "type": "offer"}
        resp = await node.http.post("/v1/webrtc/offer", json=body, headers=auth(token))
        assert resp.status_code == 401
        resp = await node.http.post("/v1/webrtc/offer", json=body, headers=auth())
        assert resp.status_code == 400  # past authentication, to the SDP check
        resp = await node.http.delete(f"/v1/calls/{call_id}", headers=auth())
        assert resp.status_code in (204, 404)  # hung up (or already ended with the peer)
        async with asyncio.timeout(10):
            await host.wait_idle()


async def test_without_phone_tokens_a_token_is_an_unknown_key() -> None:
    token = PhoneTokens(TTL_S).issue(0.0)  # issued by another node (or process run)
    async with serve_node(FakeHost()) as node:
        body = {"agent": "receptionist", "sdp": "v=0\r\n", "type": "offer"}
        resp = await node.http.post("/v1/webrtc/offer", json=body, headers=auth(token))
        assert resp.status_code == 401
