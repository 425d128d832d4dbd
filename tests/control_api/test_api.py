"""Signalling errors, auth, probes, metrics, OpenAPI and the /phone page."""

from __future__ import annotations

import numpy as np
import pytest

from tests.support.harness import Node, auth
from tests.support.webrtc_peer import TestPeer


@pytest.fixture
async def offer_sdp() -> str:
    peer = TestPeer(np.zeros(320, dtype=np.int16))
    try:
        return (await peer.offer())["sdp"]
    finally:
        await peer.close()


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-key"},
        {"Authorization": "Basic dGVzdDp0ZXN0"},
        {"Authorization": "Bearer"},
    ],
    ids=["missing", "wrong", "not-bearer", "empty"],
)
async def test_offer_without_a_valid_key_is_401(
    node: Node, offer_sdp: str, headers: dict[str, str]
) -> None:
    resp = await node.http.post(
        "/v1/webrtc/offer",
        json={"agent": "receptionist", "sdp": offer_sdp, "type": "offer"},
        headers=headers,
    )
    assert resp.status_code == 401
    assert resp.headers["www-authenticate"].startswith("Bearer")
    assert "wrong-key" not in resp.text
    assert node.host.active_calls() == 0


async def test_delete_without_key_is_401_and_unknown_call_404(node: Node) -> None:
    assert (await node.http.delete("/v1/calls/abc")).status_code == 401
    resp = await node.http.delete("/v1/calls/abc", headers=auth())
    assert resp.status_code == 404
    assert "abc" in resp.json()["detail"]


@pytest.mark.parametrize(
    ("agent", "tenant"),
    [("nobody", None), ("nobody", "demo"), ("receptionist", "other-tenant")],
)
async def test_unknown_agent_is_404(
    node: Node, offer_sdp: str, agent: str, tenant: str | None
) -> None:
    body = {"agent": agent, "sdp": offer_sdp, "type": "offer"}
    if tenant is not None:
        body["tenant"] = tenant
    resp = await node.http.post("/v1/webrtc/offer", json=body, headers=auth())
    assert resp.status_code == 404
    assert agent in resp.json()["detail"]


def _strip(sdp: str, *prefixes: str) -> str:
    return "".join(line for line in sdp.splitlines(keepends=True) if not line.startswith(prefixes))


def _only_pcma(sdp: str) -> str:
    out = []
    for line in sdp.splitlines(keepends=True):
        if line.startswith("m=audio"):
            head = line.split()[:3]
            line = " ".join([*head, "8"]) + "\r\n"
        elif line.startswith("a=rtpmap:") and not line.startswith("a=rtpmap:8 "):
            continue
        out.append(line)
    return "".join(out)


@pytest.mark.parametrize(
    ("mangle", "problem"),
    [
        (lambda s: "", "empty"),
        (lambda s: "hello world", "must start with 'v=0'"),
        (lambda s: _strip(s, "m=audio"), "no audio m-line"),
        (lambda s: _strip(s, "a=ice-ufrag", "a=ice-pwd"), "no ICE credentials"),
        (lambda s: _strip(s, "a=fingerprint"), "no DTLS fingerprint"),
        (_only_pcma, "neither Opus nor PCMU"),
        (lambda s: s.replace("a=sendrecv", "a=recvonly"), "recvonly"),
    ],
    ids=["empty", "garbage", "no-audio", "no-ice", "no-dtls", "codecs", "recvonly"],
)
async def test_malformed_sdp_is_400_naming_the_problem(
    node: Node, offer_sdp: str, mangle: object, problem: str
) -> None:
    sdp = mangle(offer_sdp)  # type: ignore[operator]
    resp = await node.http.post(
        "/v1/webrtc/offer",
        json={"agent": "receptionist", "sdp": sdp, "type": "offer"},
        headers=auth(),
    )
    assert resp.status_code == 400, resp.text
    assert problem in resp.json()["detail"]
    assert node.host.active_calls() == 0


@pytest.mark.parametrize(
    "body",
    [
        {"agent": "receptionist", "sdp": "v=0"},
        {"agent": "receptionist", "sdp": "v=0", "type": "answer"},
        {"agent": "receptionist", "sdp": "v=0", "type": "offer", "extra": 1},
        {"agent": "", "sdp": "v=0", "type": "offer"},
        ["not", "an", "object"],
    ],
    ids=["no-type", "answer", "unknown-field", "empty-agent", "array"],
)
async def test_malformed_body_is_400(node: Node, body: object) -> None:
    resp = await node.http.post("/v1/webrtc/offer", json=body, headers=auth())
    assert resp.status_code == 400, resp.text


async def test_not_json_is_400(node: Node) -> None:
    resp = await node.http.post(
        "/v1/webrtc/offer",
        content=b"{not json",
        headers={**auth(), "Content-Type": "application/json"},
    )
    assert resp.status_code == 400


async def test_over_capacity_checked_after_validation(node: Node, offer_sdp: str) -> None:
    node.host.start_drain()
    resp = await node.http.post(
        "/v1/webrtc/offer",
        json={"agent": "receptionist", "sdp": "v=0\r\n", "type": "offer"},
        headers=auth(),
    )
    assert resp.status_code == 400
    resp = await node.http.post(
        "/v1/webrtc/offer",
        json={"agent": "receptionist", "sdp": offer_sdp, "type": "offer"},
        headers=auth(),
    )
    assert resp.status_code == 503
    assert int(resp.headers["retry-after"]) > 0


async def test_healthz_and_readyz(node: Node) -> None:
    resp = await node.http.get("/healthz")
    assert resp.status_code == 200 and resp.json()["status"] == "ok"
    resp = await node.http.get("/readyz")
    assert resp.status_code == 200 and resp.json()["status"] == "ready"
    node.host.ready = False
    resp = await node.http.get("/readyz")
    assert resp.status_code == 503 and resp.json()["status"] == "loading"
    node.host.ready = True
    node.host.start_drain()
    resp = await node.http.get("/readyz")
    assert resp.status_code == 503 and resp.json()["status"] == "draining"
    assert (await node.http.get("/healthz")).status_code == 200


async def test_metrics_exposition(node: Node) -> None:
    resp = await node.http.get("/metrics")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain")
    text = resp.text
    for name in (
        "voicenode_active_calls 0.0",
        "# TYPE voicenode_calls_total counter",
        "# TYPE voicenode_calls_refused_total counter",
        "# TYPE voicenode_webrtc_frames_late_total counter",
        "# TYPE voicenode_webrtc_frames_dropped_total counter",
    ):
        assert name in text


async def test_openapi_schema(node: Node) -> None:
    resp = await node.http.get("/schema/openapi.json")
    assert resp.status_code == 200
    schema = resp.json()
    assert schema["info"]["title"] == "voicenode"
    paths = schema["paths"]
    assert "post" in paths["/v1/webrtc/offer"]
    assert "delete" in paths["/v1/calls/{call_id}"]
    assert {"/healthz", "/readyz", "/metrics"} <= set(paths)
    assert schema["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    offer = paths["/v1/webrtc/offer"]["post"]
    assert offer["security"] == [{"bearer": []}]


async def test_phone_page_and_assets(node: Node) -> None:
    resp = await node.http.get("/phone")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/html")
    html = resp.text
    assert "/phone/static/phone.js" in html and "/phone/static/phone.css" in html
    for asset, kind in (("phone.js", "javascript"), ("phone.css", "text/css")):
        resp = await node.http.get(f"/phone/static/{asset}")
        assert resp.status_code == 200, asset
        assert kind in resp.headers["content-type"]
    assert (await node.http.get("/phone/static/../app.py")).status_code == 404
