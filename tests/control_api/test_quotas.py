"""Per-tenant quotas: concurrent calls and calls per minute, on an injected clock; 429 with
Retry-After from the WebRTC offer."""

from __future__ import annotations

import numpy as np
import pytest

from control_api.quotas import QuotaExceeded, Quotas, TenantQuota
from tests.support.harness import auth, serve_node
from tests.support.host import FakeHost
from tests.support.webrtc_peer import TestPeer


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_concurrent_calls_limit_and_release() -> None:
    quotas = Quotas(clock=Clock())
    limit = TenantQuota(max_concurrent_calls=2)
    quotas.take_with("a", "c1", limit)
    quotas.take_with("a", "c2", limit)
    quotas.take_with("b", "c3", limit)  # another tenant has its own count
    with pytest.raises(QuotaExceeded) as refused:
        quotas.take_with("a", "c4", limit)
    assert (refused.value.reason, refused.value.retry_after_s) == ("max_concurrent_calls", 5)
    quotas.release("c1")
    quotas.release("c1")  # idempotent
    quotas.take_with("a", "c4", limit)
    assert (quotas.active("a"), quotas.active("b")) == (2, 1)
    with pytest.raises(ValueError, match="already"):
        quotas.take_with("a", "c4", limit)


def test_calls_per_minute_is_a_sliding_window() -> None:
    clock = Clock()
    quotas = Quotas(clock=clock)
    limit = TenantQuota(calls_per_minute=3)
    for i, at in enumerate((0.0, 10.0, 20.5)):
        clock.now = 1000.0 + at
        quotas.take_with("a", f"c{i}", limit)
        quotas.release(f"c{i}")  # ended calls still count as starts
    clock.now = 1030.0
    with pytest.raises(QuotaExceeded) as refused:
        quotas.take_with("a", "c3", limit)
    assert (refused.value.reason, refused.value.retry_after_s) == ("calls_per_minute", 30)
    clock.now = 1059.5
    with pytest.raises(QuotaExceeded) as refused:
        quotas.take_with("a", "c3", limit)
    assert refused.value.retry_after_s == 1
    clock.now = 1060.0  # the first start leaves the window
    quotas.take_with("a", "c3", limit)
    with pytest.raises(QuotaExceeded) as refused:
        quotas.take_with("a", "c4", limit)
    assert refused.value.retry_after_s == 10  # the start at 1010 leaves at 1070
    quotas.take_with("b", "c5", TenantQuota())  # no limits
    with pytest.raises(QuotaExceeded, match="calls_per_minute"):
        quotas.take_with("z", "c6", TenantQuota(calls_per_minute=0))


async def test_offer_over_quota_is_429_with_retry_after() -> None:
    clock = Clock()
    host = FakeHost(max_calls=4, clock=clock)
    async with serve_node(host) as node:
        resp = await node.http.put(
            "/v1/tenants/demo/quotas",
            json={"max_concurrent_calls": 1, "calls_per_minute": 2},
            headers=auth(),
        )
        assert resp.status_code == 200
        peer = TestPeer(np.zeros(320, dtype=np.int16))
        try:
            sdp = (await peer.offer())["sdp"]
        finally:
            await peer.close()
        body = {"agent": "receptionist", "sdp": sdp, "type": "offer"}
        first = await node.http.post("/v1/webrtc/offer", json=body, headers=auth())
        assert first.status_code == 200, first.text
        busy = await node.http.post("/v1/webrtc/offer", json=body, headers=auth())
        assert busy.status_code == 429
        assert busy.headers["retry-after"] == "5" and "max_concurrent_calls" in busy.text
        assert host.active_calls() == 1  # the refused call's admission was given back
        call_id = first.json()["call_id"]
        assert (await node.http.delete(f"/v1/calls/{call_id}", headers=auth())).status_code == 204
        await host.wait_idle()
        clock.now += 15
        second = await node.http.post("/v1/webrtc/offer", json=body, headers=auth())
        assert second.status_code == 200, second.text
        await node.http.delete(f"/v1/calls/{second.json()['call_id']}", headers=auth())
        await host.wait_idle()
        clock.now += 15
        rate = await node.http.post("/v1/webrtc/offer", json=body, headers=auth())
        assert rate.status_code == 429
        assert rate.headers["retry-after"] == "30" and "calls_per_minute" in rate.text
