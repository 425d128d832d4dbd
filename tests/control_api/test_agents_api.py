"""Agents over HTTP: JSON and TOML specs, validation errors naming the field, versions,
rollback, and a live call keeping the version it started with."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest

from tests.control_api.test_calls import place_call
from tests.control_api.test_store import RECEPTIONIST
from tests.support.harness import Node, auth
from tests.support.webrtc_peer import TestPeer

LLM_AGENT: dict[str, Any] = {
    "name": "concierge",
    "kind": "llm",
    "prompt": "You are a concierge.",
    # a public address literal: the URL guard needs no DNS
    "llm": {"base_url": "https://93.184.216.34/v1", "model": "m", "api_key_secret": "concierge"},
}


async def test_llm_agent_from_json_references_its_key_by_secret_name(node: Node) -> None:
    stored = await node.http.post(
        "/v1/secrets", json={"name": "concierge", "value": "sk-secret-value-123"}, headers=auth()
    )
    assert stored.status_code == 201, stored.text
    resp = await node.http.post("/v1/agents", json={"spec": LLM_AGENT}, headers=auth())
    assert resp.status_code == 201, resp.text
    agent = resp.json()
    assert (agent["name"], agent["version"], agent["kind"]) == ("concierge", 1, "llm")
    assert agent["spec"]["llm"]["api_key_secret"] == "concierge"
    assert agent["spec"]["turn"]["silence_ms"] == 600  # defaults filled in
    listed = await node.http.get("/v1/agents", headers=auth())
    assert {a["name"] for a in listed.json()} == {"receptionist", "concierge"}
    for resp in (listed, await node.http.get("/v1/agents/concierge", headers=auth())):
        assert "sk-secret-value-123" not in resp.text
    resp = await node.http.post("/v1/agents", json={"spec": LLM_AGENT}, headers=auth())
    assert resp.status_code == 409


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"spec": {**LLM_AGENT, "turn": {"silence_ms": "long"}}}, "spec: turn.silence_ms"),
        ({"spec": {**LLM_AGENT, "turn": {"silence_ms": 1}}}, "spec: turn.silence_ms"),
        ({"spec": {**LLM_AGENT, "llm": {"modle": "x"}}}, "spec: llm.modle"),
        ({"spec": {**LLM_AGENT, "name": "Bad Name"}}, "spec: name"),
        ({"spec": {"name": "flowless"}}, "flow"),
        ({"toml": 'name = "x"\nkind = '}, "toml: not valid TOML"),
        ({"toml": RECEPTIONIST.replace("no_input_s = ", "no_input_s = -", 1)}, "toml: turn."),
        ({"toml": RECEPTIONIST, "spec": LLM_AGENT}, "exactly one"),
        ({}, "exactly one"),
    ],
    ids=["type", "range", "unknown", "name", "no-flow", "toml", "toml-range", "both", "none"],
)
async def test_invalid_specs_are_400_naming_the_field(
    node: Node, body: dict[str, Any], field: str
) -> None:
    resp = await node.http.post("/v1/agents", json=body, headers=auth())
    assert resp.status_code == 400, resp.text
    assert field in resp.json()["detail"]
    assert len((await node.http.get("/v1/agents", headers=auth())).json()) == 1


async def test_update_versions_and_rollback(node: Node) -> None:
    edited = RECEPTIONIST.replace('greeting = "', 'greeting = "Edited. ', 1)
    resp = await node.http.put("/v1/agents/receptionist", json={"toml": edited}, headers=auth())
    assert resp.status_code == 200, resp.text
    assert resp.json()["version"] == 2 and resp.json()["toml"] == edited
    assert resp.json()["spec"]["greeting"].startswith("Edited.")
    resp = await node.http.put(
        "/v1/agents/receptionist", json={"spec": {**LLM_AGENT, "name": "other"}}, headers=auth()
    )
    assert resp.status_code == 400
    assert resp.json()["detail"] == "spec: name: 'other' does not match the path 'receptionist'"
    resp = await node.http.put("/v1/agents/nobody", json={"toml": edited}, headers=auth())
    assert resp.status_code == 404
    resp = await node.http.post(
        "/v1/agents/receptionist/rollback", json={"version": 1}, headers=auth()
    )
    assert resp.status_code == 200
    assert resp.json()["version"] == 3 and resp.json()["toml"] == RECEPTIONIST
    resp = await node.http.post(
        "/v1/agents/receptionist/rollback", json={"version": 7}, headers=auth()
    )
    assert resp.status_code == 404 and "version" in resp.json()["detail"]
    versions = (await node.http.get("/v1/agents/receptionist/versions", headers=auth())).json()
    assert [(v["version"], v["note"]) for v in versions] == [
        (3, "rollback to 1"),
        (2, "updated"),
        (1, "seeded"),
    ]
    assert versions[1]["spec"]["greeting"].startswith("Edited.")
    # routed from number 1000: cannot be deleted yet
    resp = await node.http.delete("/v1/agents/receptionist", headers=auth())
    assert resp.status_code == 409 and "1000" in resp.json()["detail"]


async def test_a_live_call_keeps_its_version_while_the_agent_is_edited(node: Node) -> None:
    silence = np.zeros(16000, dtype=np.int16)
    first, second = TestPeer(silence), TestPeer(silence)
    try:
        call_1 = await place_call(node, first)
        await asyncio.wait_for(node.host.started.get(), 10)
        edited = RECEPTIONIST.replace('greeting = "', 'greeting = "Edited. ', 1)
        resp = await node.http.put("/v1/agents/receptionist", json={"toml": edited}, headers=auth())
        assert resp.json()["version"] == 2
        call_2 = await place_call(node, second)
        await asyncio.wait_for(node.host.started.get(), 10)
        pinned_1, pinned_2 = node.host.pinned[call_1], node.host.pinned[call_2]
        assert (pinned_1.version, pinned_2.version) == (1, 2)
        assert not pinned_1.spec.greeting.startswith("Edited.")
        assert pinned_2.spec.greeting.startswith("Edited.")
        for call_id in (call_1, call_2):
            assert (
                await node.http.delete(f"/v1/calls/{call_id}", headers=auth())
            ).status_code == 204
    finally:
        await first.close()
        await second.close()
    async with asyncio.timeout(10):
        await node.host.wait_idle()
