"""The admin surface of the real app: `/metrics` and the OpenAPI schema behind
`http.metrics_token`, wrong keys rate-limited per source address (virtual clock; 429 with
Retry-After, another address unaffected), oversized request bodies refused with 413."""

from __future__ import annotations

import httpx
import msgspec

from config.schema import Settings
from media.clock import VirtualClock
from tests.support.harness import ADMIN_KEY, auth, node_settings, serve_node
from tests.support.host import FakeHost

METRICS_TOKEN = "scrape-token-0123456789abcdef"


def settings_with(**http: object) -> Settings:
    s = node_settings()
    return msgspec.structs.replace(s, http=msgspec.structs.replace(s.http, **http))


async def test_metrics_and_schema_need_the_metrics_token_when_set() -> None:
    async with serve_node(FakeHost(), settings_with(metrics_token=METRICS_TOKEN)) as node:
        for path in ("/metrics", "/schema/openapi.json", "/schema"):
            for headers in ({}, auth("wrong-token"), auth(ADMIN_KEY)):
                resp = await node.http.get(path, headers=headers)
                assert resp.status_code == 401, (path, headers, resp.text)
                assert "voicenode_active_calls" not in resp.text and "/v1/" not in resp.text
                assert resp.headers["www-authenticate"].startswith("Bearer")
        resp = await node.http.get("/metrics", headers=auth(METRICS_TOKEN))
        assert resp.status_code == 200 and "# TYPE voicenode_active_calls gauge" in resp.text
        resp = await node.http.get("/schema/openapi.json", headers=auth(METRICS_TOKEN))
        assert resp.status_code == 200 and "/v1/webrtc/offer" in resp.json()["paths"]
        # the probes stay open (load balancers and orchestrators call them without a token)
        assert (await node.http.get("/healthz")).status_code == 200
        assert (await node.http.get("/readyz")).status_code == 200


async def test_without_a_metrics_token_metrics_stay_open() -> None:
    async with serve_node(FakeHost()) as node:
        assert (await node.http.get("/metrics")).status_code == 200
        assert (await node.http.get("/schema/openapi.json")).status_code == 200


async def test_wrong_keys_are_rate_limited_per_source_address() -> None:
    clock = VirtualClock(start=50.0)
    settings = settings_with(auth_failures_max=3, auth_failures_window_s=60.0)
    async with (
        serve_node(FakeHost(), settings, clock=clock) as node,
        httpx.AsyncClient(
            base_url=node.url,
            transport=httpx.AsyncHTTPTransport(local_address="127.0.0.2"),
            timeout=20,
        ) as neighbour,
    ):
        for i in range(3):
            await clock.advance(1.0)
            resp = await node.http.get("/v1/agents", headers=auth(f"guess-{i}"))
            assert resp.status_code == 401
        # locked out: even the right key is refused until the first failure is 60 s old
        resp = await node.http.get("/v1/agents", headers=auth())
        assert resp.status_code == 429
        assert resp.headers["retry-after"] == "58"  # failures at 51, 52, 53; now 53
        resp = await node.http.post(
            "/v1/webrtc/offer",
            json={"agent": "receptionist", "sdp": "v=0\r\n", "type": "offer"},
            headers=auth(),
        )
        assert resp.status_code == 429
        # a missing key is no guess (401, not counted); another address is not affected
        assert (await neighbour.get("/v1/agents")).status_code == 401
        assert (await neighbour.get("/v1/agents", headers=auth())).status_code == 200
        await clock.advance(57.0)
        assert (await node.http.get("/v1/agents", headers=auth())).status_code == 429
        await clock.advance(1.0)
        assert (await node.http.get("/v1/agents", headers=auth())).status_code == 200
        # one more wrong key (two are still in the window) locks it out again
        assert (await node.http.get("/v1/agents", headers=auth("guess-3"))).status_code == 401
        resp = await node.http.get("/v1/agents", headers=auth())
        assert resp.status_code == 429 and resp.headers["retry-after"] == "1"


async def test_wrong_metrics_tokens_count_as_failures() -> None:
    clock = VirtualClock()
    settings = settings_with(metrics_token=METRICS_TOKEN, auth_failures_max=2)
    async with serve_node(FakeHost(), settings, clock=clock) as node:
        for guess in ("a" * 30, "b" * 30):
            assert (await node.http.get("/metrics", headers=auth(guess))).status_code == 401
        resp = await node.http.get("/metrics", headers=auth(METRICS_TOKEN))
        assert resp.status_code == 429 and int(resp.headers["retry-after"]) == 60


async def test_oversized_request_bodies_are_refused() -> None:
    async with serve_node(FakeHost(), settings_with(max_body_bytes=4096)) as node:
        body = {"agent": "receptionist", "sdp": "v=0\r\n" + "a=x\r\n" * 2000, "type": "offer"}
        resp = await node.http.post("/v1/webrtc/offer", json=body, headers=auth())
        assert resp.status_code == 413
        before = (await node.http.get("/v1/agents", headers=auth())).json()
        resp = await node.http.post(
            "/v1/agents", content=b'{"toml": "' + b"#" * 10_000 + b'"}', headers=auth()
        )
        assert resp.status_code == 413
        assert (await node.http.get("/v1/agents", headers=auth())).json() == before
        body = {"agent": "receptionist", "sdp": "v=0\r\n", "type": "offer"}
        resp = await node.http.post("/v1/webrtc/offer", json=body, headers=auth())
        assert resp.status_code == 400  # a small body goes through to the SDP check
