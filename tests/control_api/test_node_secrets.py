"""Issue 12, item 1 against the real node (store, analytics, HTTP API; fake speech engines): a
tenant admin cannot make the node send the node's environment to a server it names, its agents'
model calls — and the outcome model after the call — carry the tenant secret it stored, and
webhook secrets are sealed at rest yet sign every delivery.

The LLM endpoint is the `LlmDouble` (real HTTP + SSE) on 127.0.0.1, which the node's operator
allow-lists (`analytics.url_allowlist`), standing in for "the tenant's own server".
"""

from __future__ import annotations

import logging
import os
import stat
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from sqlalchemy import select

from config import ConfigError, load_settings
from control_api.analytics.sinks import SIGNATURE_HEADER, verify_signature
from control_api.analytics.tables import WebhookRow
from control_api.store import agents as agent_rows
from control_api.store.crypto import KEY_FILE, SecretBox, new_key
from tests.support.analytics import Receiver, wait_for
from tests.support.harness import auth
from tests.support.llm_double import LlmDouble, Reply, ScriptedToolCall
from tests.support.served_node import (
    light_node,
    light_node_settings,
    run_call,
    served_light_node,
)
from voicenode.node import Node

PLATFORM_SECRET = "vn-platform-admin-key-from-the-environment-0123"
TENANT_SECRET = "sk-acme-tenant-key-0123456789"


@asynccontextmanager
async def api_node(data_dir: Path) -> AsyncIterator[tuple[Node, httpx.AsyncClient]]:
    """The real node and its HTTP API, with fake speech engines (no models loaded)."""
    settings = light_node_settings(data_dir, webhook_require_https=False, relay_interval_s=0.2)
    async with served_light_node(settings) as served:
        yield served


def llm_spec(name: str, double: LlmDouble, **llm: Any) -> dict[str, Any]:
    return {
        "name": name,
        "kind": "llm",
        "prompt": f"You are {name}.",
        "tools": [{"name": "end_call"}],
        "llm": {"base_url": double.base_url, "model": "m", **llm},
    }


def greet_and_hang_up(name: str) -> Reply:
    return Reply(tokens=["Hello ", f"from {name}."], tool_calls=[ScriptedToolCall("end_call")])


async def test_a_tenant_cannot_obtain_the_node_environment_as_its_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("VOICENODE_ADMIN_KEY", PLATFORM_SECRET)
    async with LlmDouble() as double, api_node(tmp_path) as (node, http):
        tenant = (await http.post("/v1/tenants", json={"name": "acme"}, headers=auth())).json()
        key = await http.post(
            "/v1/keys", json={"tenant": tenant["id"], "role": "admin"}, headers=auth()
        )
        acme = auth(key.json()["key"])

        # The attack through the API: refused, nothing stored.
        attack = llm_spec("exfil", double, api_key_env="VOICENODE_ADMIN_KEY")
        refused = await http.post("/v1/agents", json={"spec": attack}, headers=acme)
        assert refused.status_code == 400 and "llm.api_key_env" in refused.json()["detail"]

        # The supported way: a tenant secret, named by the agent.
        stored = await http.post(
            "/v1/secrets", json={"name": "openai", "value": TENANT_SECRET}, headers=acme
        )
        assert stored.status_code == 201
        own = llm_spec("concierge", double, api_key_secret="openai")
        created = await http.post("/v1/agents", json={"spec": own}, headers=acme)
        assert created.status_code == 201, created.text

        # An agent stored before the fix (the old API took `api_key_env` from tenants).
        legacy = (
            'name = "legacy"\nkind = "llm"\nprompt = "You are legacy."\n'
            'tools = [{name = "end_call"}]\n'
            f'[llm]\nbase_url = "{double.base_url}"\napi_key_env = "VOICENODE_ADMIN_KEY"\n'
        )
        async with node.store.session() as session:
            await agent_rows.create_agent(session, tenant["id"], "legacy", legacy)

        with caplog.at_level(logging.DEBUG):
            for name, requests in (("concierge", 2), ("legacy", 4)):
                double.script(greet_and_hang_up(name))  # the outcome gets the default reply
                await run_call(node, tenant["id"], name)

                async def outcome_asked(n: int = requests) -> bool:  # after the call ends
                    return len(double.chat_requests) >= n

                await wait_for(outcome_asked, what="the outcome model's request")

    chats = [r for r in double.requests if r.path == "/v1/chat/completions"]
    assert all(PLATFORM_SECRET.encode() not in r.body for r in double.requests)

    def keys_of(name: str) -> list[str]:
        """The bearer tokens of the agent's turns and of the outcome model for its call."""
        return [
            r.headers["authorization"]
            for r in chats
            if r.json()["messages"][0]["content"].startswith(f"You are {name}.")
            or f"Hello from {name}." in r.json()["messages"][-1]["content"]
        ]

    # The agent's turn and the outcome model both used the tenant's secret...
    assert keys_of("concierge") == [f"Bearer {TENANT_SECRET}"] * 2
    # ...and the legacy agent got no key at all: never the node's environment.
    assert keys_of("legacy") == ["Bearer not-needed"] * 2
    logged = [str(r.__dict__) for r in caplog.records]
    assert not any(TENANT_SECRET in line or PLATFORM_SECRET in line for line in logged)


async def test_the_key_file_is_generated_private_and_webhook_secrets_are_sealed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        async with Receiver() as receiver, api_node(tmp_path) as (node, http):
            created = await http.post(
                "/v1/webhooks", json={"url": receiver.url("/hook")}, headers=auth()
            )
            assert created.status_code == 201, created.text
            secret = created.json()["secret"]
            async with node.store.session() as session:
                (row,) = (await session.scalars(select(WebhookRow))).all()
            assert row.secret.startswith("v1.") and secret not in row.secret

            await run_call(node, "demo", "receptionist", hang_up=True)

            async def delivered() -> bool:
                return any(
                    r.headers.get("x-voicenode-event-type") == "call.ended"
                    for r in receiver.requests
                )

            await wait_for(delivered, timeout_s=30, what="call.ended delivered")
    # Every delivery is signed with the secret the API showed once.
    assert receiver.requests
    for request in receiver.requests:
        header = request.headers[SIGNATURE_HEADER.lower()]
        assert verify_signature(secret, header, request.body, now=time.time())
    key_file = tmp_path / KEY_FILE
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert any("generated a secrets key" in r.getMessage() for r in caplog.records)
    assert all(key_file.read_text().strip() not in str(r.__dict__) for r in caplog.records)


async def test_a_configured_key_is_used_and_a_malformed_one_stops_the_node(tmp_path: Path) -> None:
    key = new_key()
    loaded = load_settings(env={"VOICENODE_STORE__SECRETS_KEY": key})
    assert loaded.store.secrets_key == key
    settings = light_node_settings(tmp_path)
    settings = msgspec.structs.replace(settings, store=loaded.store)
    async with light_node(settings) as node:
        assert node.store.box is not None
        sealed = node.store.box.seal("x", "ctx")
    assert SecretBox(key).open(sealed, "ctx") == "x"
    assert not (tmp_path / KEY_FILE).exists()
    bad = msgspec.structs.replace(
        settings, store=msgspec.structs.replace(settings.store, secrets_key="not-a-key-0123")
    )
    with pytest.raises(ConfigError, match="store.secrets_key") as refused:
        async with light_node(bad):
            pass
    assert "not-a-key-0123" not in str(refused.value)
