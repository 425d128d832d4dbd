"""A tenant's `[[mcp]]` servers over the agents API: stdio refused, the URL guard, header
secrets that must be stored; a good spec round-trips."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.harness import Node, auth

# public address literals: the URL guard needs no DNS
LLM_AGENT: dict[str, Any] = {
    "name": "concierge",
    "kind": "llm",
    "prompt": "You are a concierge.",
    "llm": {"base_url": "https://93.184.216.34/v1", "model": "m", "api_key_secret": "concierge"},
}
CRM: dict[str, Any] = {
    "name": "crm",
    "url": "https://93.184.216.34/mcp",
    "headers": {"Authorization": "crm-token"},
    "allowed_tools": ["find_customer"],
}


@pytest.mark.parametrize(
    ("server", "detail"),
    [
        ({"name": "local", "command": ["crm-mcp"], "allowed_tools": ["*"]}, "command: stdio"),
        ({**CRM, "url": "http://127.0.0.1:9/mcp"}, "mcp 'crm': url: refused"),
        (CRM, "mcp headers: no secret 'crm-token'"),
    ],
    ids=["stdio", "private-url", "unstored-secret"],
)
async def test_a_tenant_spec_with_a_bad_server_is_400(
    node: Node, server: dict[str, Any], detail: str
) -> None:
    spec = {**LLM_AGENT, "mcp": [server]}
    await node.http.post("/v1/secrets", json={"name": "concierge", "value": "sk-1"}, headers=auth())
    resp = await node.http.post("/v1/agents", json={"spec": spec}, headers=auth())
    assert resp.status_code == 400, resp.text
    assert detail in resp.json()["detail"]


async def test_a_good_server_is_saved_with_its_secret_named(node: Node) -> None:
    for name in ("concierge", "crm-token"):
        stored = await node.http.post(
            "/v1/secrets", json={"name": name, "value": f"value-of-{name}"}, headers=auth()
        )
        assert stored.status_code == 201, stored.text
    resp = await node.http.post(
        "/v1/agents", json={"spec": {**LLM_AGENT, "mcp": [CRM]}}, headers=auth()
    )
    assert resp.status_code == 201, resp.text
    (saved,) = resp.json()["spec"]["mcp"]
    assert saved["headers"] == {"Authorization": "crm-token"}
    assert saved["allowed_tools"] == ["find_customer"]
    assert "value-of-crm-token" not in resp.text
