"""Tenant secrets and what a tenant's agent spec may name (issue 12, item 1 and the `voice` item),
over the real app's HTTP API: secrets are write-only and sealed at rest; a tenant agent that
names the node's environment (`llm.api_key_env`), a non-public `llm.base_url`, a secret it does
not have, or a voice the operator did not install is refused with a 400 naming the field."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
from sqlalchemy import select

from config.schema import AnalyticsSettings, TtsSettings
from control_api.store.models import TenantSecret
from tests.support.harness import Node, auth, node_settings, serve_node
from tests.support.host import FakeHost

SECRET_VALUE = "sk-acme-0123456789-do-not-echo"
PUBLIC_BASE_URL = "https://93.184.216.34/v1"  # a public literal: the guard needs no DNS


def llm_agent(**llm: Any) -> dict[str, Any]:
    return {
        "name": "concierge",
        "kind": "llm",
        "prompt": "You are a concierge.",
        "llm": {"base_url": PUBLIC_BASE_URL, "model": "m", **llm},
    }


async def tenant_keys(node: Node, name: str) -> dict[str, dict[str, str]]:
    """A new tenant's keys by role, as Authorization headers."""
    tenant = (await node.http.post("/v1/tenants", json={"name": name}, headers=auth())).json()
    keys = {}
    for role in ("admin", "operator", "viewer"):
        resp = await node.http.post(
            "/v1/keys", json={"tenant": tenant["id"], "role": role}, headers=auth()
        )
        assert resp.status_code == 201, resp.text
        keys[role] = auth(resp.json()["key"])
    return keys


@pytest.fixture
async def guarded() -> AsyncIterator[Node]:
    """The app with the defaults: no URL allowlist, the embedded voice only."""
    async with serve_node(FakeHost(max_calls=2)) as node:
        yield node


async def test_secrets_are_write_only_sealed_at_rest_and_never_logged(
    guarded: Node, caplog: pytest.LogCaptureFixture
) -> None:
    node = guarded
    acme = await tenant_keys(node, "acme")
    with caplog.at_level(logging.DEBUG):
        created = await node.http.post(
            "/v1/secrets", json={"name": "openai", "value": SECRET_VALUE}, headers=acme["admin"]
        )
        assert created.status_code == 201, created.text
        assert created.json()["name"] == "openai" and "value" not in created.json()
        replaced = await node.http.post(
            "/v1/secrets", json={"name": "openai", "value": SECRET_VALUE}, headers=acme["admin"]
        )
        assert replaced.status_code == 201
        listed = await node.http.get("/v1/secrets", headers=acme["admin"])
        assert [s["name"] for s in listed.json()["secrets"]] == ["openai"]
        for resp in (created, replaced, listed):
            assert SECRET_VALUE not in resp.text
    assert all(SECRET_VALUE not in record.getMessage() for record in caplog.records)
    assert all(SECRET_VALUE not in str(record.__dict__) for record in caplog.records)
    # Sealed in the database: not the value, not readable without the node's key.
    async with node.host.store.session() as session:
        (row,) = (await session.scalars(select(TenantSecret))).all()
    assert row.value.startswith("v1.") and SECRET_VALUE not in row.value
    # Roles below admin cannot read or write them; another tenant does not see them.
    for role in ("operator", "viewer"):
        assert (await node.http.get("/v1/secrets", headers=acme[role])).status_code == 403
        attempt = await node.http.post(
            "/v1/secrets", json={"name": "x", "value": "y"}, headers=acme[role]
        )
        assert attempt.status_code == 403
    other = await tenant_keys(node, "other")
    assert (await node.http.get("/v1/secrets", headers=other["admin"])).json()["secrets"] == []
    assert (await node.http.delete("/v1/secrets/openai", headers=other["admin"])).status_code == 404
    assert (await node.http.delete("/v1/secrets/openai", headers=acme["admin"])).status_code == 204
    assert (await node.http.get("/v1/secrets", headers=acme["admin"])).json()["secrets"] == []


async def test_a_bad_secret_body_does_not_echo_the_value(guarded: Node) -> None:
    acme = await tenant_keys(guarded, "acme")
    resp = await guarded.http.post(
        "/v1/secrets", json={"name": "bad name!", "value": SECRET_VALUE}, headers=acme["admin"]
    )
    assert resp.status_code == 400
    assert SECRET_VALUE not in resp.text


@pytest.mark.parametrize("form", ["spec", "toml"])
async def test_a_tenant_agent_naming_the_node_environment_is_refused(
    guarded: Node, form: str
) -> None:
    """The attack: a tenant admin names the platform admin key's variable and points the
    agent at its own server, to receive the key as a bearer token on the next call."""
    acme = await tenant_keys(guarded, "acme")
    spec = llm_agent(api_key_env="VOICENODE_ADMIN_KEY")
    if form == "spec":
        body: dict[str, Any] = {"spec": spec}
    else:
        body = {
            "toml": 'name = "concierge"\nkind = "llm"\n[llm]\n'
            f'base_url = "{PUBLIC_BASE_URL}"\napi_key_env = "VOICENODE_ADMIN_KEY"\n'
        }
    resp = await guarded.http.post("/v1/agents", json=body, headers=acme["admin"])
    assert resp.status_code == 400, resp.text
    assert f"{form}: llm.api_key_env" in resp.json()["detail"]
    agents = (await guarded.http.get("/v1/agents", headers=acme["admin"])).json()
    assert agents == []
    # Updating an existing agent to name it is refused too.
    await guarded.http.post("/v1/secrets", json={"name": "k", "value": "v"}, headers=acme["admin"])
    ok = await guarded.http.post(
        "/v1/agents", json={"spec": llm_agent(api_key_secret="k")}, headers=acme["admin"]
    )
    assert ok.status_code == 201, ok.text
    put = await guarded.http.put(
        "/v1/agents/concierge",
        json={"spec": llm_agent(api_key_env="VOICENODE_ADMIN_KEY")},
        headers=acme["admin"],
    )
    assert put.status_code == 400 and "llm.api_key_env" in put.json()["detail"]


async def test_a_tenant_agent_names_only_its_own_secrets(guarded: Node) -> None:
    acme = await tenant_keys(guarded, "acme")
    other = await tenant_keys(guarded, "other")
    await guarded.http.post(
        "/v1/secrets", json={"name": "openai", "value": SECRET_VALUE}, headers=other["admin"]
    )
    resp = await guarded.http.post(
        "/v1/agents", json={"spec": llm_agent(api_key_secret="openai")}, headers=acme["admin"]
    )
    assert resp.status_code == 400 and "llm.api_key_secret" in resp.json()["detail"]


@pytest.mark.parametrize(
    "base_url",
    [
        "http://127.0.0.1:8000/v1",
        "http://localhost:8000/v1",
        "http://169.254.169.254/latest",
        "http://10.0.0.5/v1",
        "http://[::1]/v1",
        "file:///etc/passwd",
    ],
)
async def test_a_tenant_agent_base_url_must_be_public(guarded: Node, base_url: str) -> None:
    acme = await tenant_keys(guarded, "acme")
    resp = await guarded.http.post(
        "/v1/agents", json={"spec": llm_agent(base_url=base_url)}, headers=acme["admin"]
    )
    assert resp.status_code == 400, resp.text
    detail = resp.json()["detail"]
    assert "llm.base_url" in detail
    if "localhost" in base_url:  # what a name resolved to is never echoed
        assert "127.0.0.1" not in detail and "::1" not in detail


async def test_the_operator_allowlist_lets_a_private_base_url_through() -> None:
    settings = node_settings()
    settings = msgspec.structs.replace(
        settings, analytics=AnalyticsSettings(url_allowlist=("127.0.0.0/8",))
    )
    async with serve_node(FakeHost(max_calls=2), settings) as node:
        acme = await tenant_keys(node, "acme")
        resp = await node.http.post(
            "/v1/agents",
            json={"spec": llm_agent(base_url="http://127.0.0.1:8000/v1")},
            headers=acme["admin"],
        )
        assert resp.status_code == 201, resp.text


async def test_a_tenant_agent_voice_must_be_installed(tmp_path: Any) -> None:
    installed = str(tmp_path / "en_GB-alba-medium.onnx")
    settings = msgspec.structs.replace(node_settings(), tts=TtsSettings(voices=(installed,)))
    async with serve_node(FakeHost(max_calls=2), settings) as node:
        acme = await tenant_keys(node, "acme")
        for voice in ("/etc/passwd", "../../secrets.key", str(tmp_path / "other.onnx")):
            resp = await node.http.post(
                "/v1/agents", json={"spec": {**llm_agent(), "voice": voice}}, headers=acme["admin"]
            )
            assert resp.status_code == 400, resp.text
            assert "spec: voice" in resp.json()["detail"]
        resp = await node.http.post(
            "/v1/agents", json={"spec": {**llm_agent(), "voice": installed}}, headers=acme["admin"]
        )
        assert resp.status_code == 201, resp.text
        bad_stt = await node.http.post(
            "/v1/agents",
            json={"spec": {**llm_agent(), "name": "stt", "stt_model": "/root"}},
            headers=acme["admin"],
        )
        assert bad_stt.status_code == 400 and "stt_model" in bad_stt.json()["detail"]
