"""An agent's MCP headers name tenant secrets: at call time the node reads those secrets from
the store (sealed at rest) with the model key, for that tenant only; a secret that is not
stored is left out (the server then gets no such header), never another tenant's."""

from __future__ import annotations

import msgspec

from agents.spec import AgentSpec
from control_api.store.secrets import box_of, llm_access_for, put_secret
from control_api.store.tenants import create_tenant
from tests.support.host import temp_store


def spec(headers: dict[str, str]) -> AgentSpec:
    return msgspec.convert(
        {
            "name": "assistant",
            "kind": "llm",
            "llm": {"base_url": "https://llm.example.com/v1", "api_key_secret": "llm_key"},
            "mcp": [
                {
                    "name": "crm",
                    "url": "https://crm.example.com/mcp",
                    "headers": headers,
                    "allowed_tools": ["*"],
                }
            ],
        },
        AgentSpec,
    )


async def test_header_secrets_are_read_for_the_call_s_tenant_only() -> None:
    async with temp_store() as store:
        async with store.session() as session:
            for tenant in ("acme", "other"):
                await create_tenant(session, tenant, tenant_id=tenant)
            box = box_of(store)
            await put_secret(session, box, "acme", "llm_key", "sk-acme")
            await put_secret(session, box, "acme", "crm_token", "Bearer acme-crm")
            await put_secret(session, box, "other", "crm_token", "Bearer other-crm")
            await session.commit()
        agent = spec({"Authorization": "crm_token", "X-Missing": "not_stored"})
        access = await llm_access_for(
            store, "acme", agent, operator_agent=False, env={}, url_allowlist=()
        )
        other = await llm_access_for(
            store, "other", agent, operator_agent=False, env={}, url_allowlist=()
        )
    assert access.api_key == "sk-acme"
    assert access.secrets == {"llm_key": "sk-acme", "crm_token": "Bearer acme-crm"}
    assert other.secrets == {"crm_token": "Bearer other-crm"}  # its own, and no model key
    assert "acme-crm" not in repr(access)  # never printed
