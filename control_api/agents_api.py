"""Agents of a tenant, versioned. Reading needs any role; changing needs `admin`.

`GET|POST /v1/agents`, `GET|PUT|DELETE /v1/agents/{name}`, `GET /v1/agents/{name}/versions`,
`POST /v1/agents/{name}/rollback {"version"}`.

A body carries the spec either as a JSON object (`{"spec": {...}}`, the `AgentSpec` fields) or
as the TOML text of a spec file (`{"toml": "..."}`); both are validated by
`agents.catalog.parse_spec` (a JSON spec is first written as TOML), so a 400 names the field
exactly as a bad spec file would. Every change appends a version; rollback appends a copy of
an older version (history only grows). Calls pin the version they started with.

A tenant's spec may not reach into the node (`check_tenant_spec`, a 400 naming the field):
secrets are never in a spec and never the node's — an LLM agent names a tenant secret
(`llm.api_key_secret`, stored with `POST /v1/secrets`), `llm.api_key_env` is refused (the
environment is for the operator's file agents); `llm.base_url` must pass the URL guard (public,
or in `analytics.url_allowlist`; checked again at every request); `voice` and `stt_model` must
be ones the operator installed (`tts.voice`/`tts.voices`, `stt.model`). Its MCP servers
(`[[mcp]]`) are reached by `url` only (stdio `command` is for the operator's agent files), each
URL passes the same guard, and the secrets their `headers` name must be stored.
"""

from __future__ import annotations

import json
import logging
import math
from datetime import datetime
from typing import Any, Final

import msgspec
from litestar import Router, delete, get, post, put
from litestar.exceptions import NotFoundException, ValidationException
from litestar.params import FromPath, JSONBody

from agents.catalog import SpecError, parse_spec
from agents.mcp_spec import secret_names, tenant_problem
from agents.spec import AgentSpec
from agents.urlguard import UnsafeUrlError, check_url
from control_api.acting_tenant import TENANT_MUST_EXIST, ActingTenant
from control_api.agent_bodies import AgentIn, AgentUpdate, RollbackIn
from control_api.api_errors import errors
from control_api.auth import can_manage
from control_api.state import Api, ApiState
from control_api.store import agents as agent_rows
from control_api.store import secrets as secret_rows
from control_api.store.models import Agent, AgentVersion
from control_api.tenants_api import store_errors, utc

log = logging.getLogger(__name__)

MAX_DEPTH: Final = 32


class AgentSummary(msgspec.Struct, frozen=True):
    name: str
    version: int
    kind: str
    description: str
    updated_at: datetime


class AgentOut(msgspec.Struct, frozen=True):
    name: str
    version: int
    kind: str
    description: str
    created_at: datetime
    updated_at: datetime
    spec: dict[str, Any]
    """The validated spec with every default filled in."""
    toml: str
    """The spec as stored (the text given, or the JSON spec written as TOML)."""


class VersionOut(msgspec.Struct, frozen=True):
    version: int
    created_at: datetime
    note: str
    spec: dict[str, Any]


def _parse(text: str, origin: str) -> AgentSpec:
    try:
        return parse_spec(text, origin)
    except SpecError as exc:
        raise ValidationException(str(exc)) from exc
    except RecursionError as exc:
        raise ValidationException(f"{origin}: nested too deeply") from exc


def _out(agent: Agent, version: AgentVersion) -> AgentOut:
    spec = _parse(version.spec, "stored spec")
    return AgentOut(
        name=agent.name,
        version=version.version,
        kind=spec.kind,
        description=spec.description,
        created_at=utc(agent.created_at),
        updated_at=utc(agent.updated_at),
        spec=msgspec.to_builtins(spec),
        toml=version.spec,
    )


# ---- a JSON spec as TOML text (inline tables), so one validator serves files and the API ----


def _toml_string(value: str) -> str:
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


def _toml(value: object, field: str, depth: int = 0) -> str:
    if depth > MAX_DEPTH:
        raise ValidationException(f"spec.{field}: nested too deeply")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValidationException(f"spec.{field}: must be a finite number")
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, list):
        items = []
        for i, item in enumerate(value):
            if item is None:
                raise ValidationException(f"spec.{field}[{i}]: null is not allowed in a list")
            items.append(_toml(item, f"{field}[{i}]", depth + 1))
        return "[" + ", ".join(items) + "]"
    if isinstance(value, dict):
        pairs = (
            f"{_toml_string(str(k))} = {_toml(v, f'{field}.{k}', depth + 1)}"
            for k, v in value.items()
            if v is not None
        )
        return "{" + ", ".join(pairs) + "}"
    raise ValidationException(f"spec.{field}: unsupported value")  # pragma: no cover


def _origin(data: AgentIn | AgentUpdate) -> str:
    return "spec" if data.spec is not None else "toml"


def spec_text(data: AgentIn | AgentUpdate, name: str | None = None) -> tuple[str, AgentSpec]:
    """The TOML text to store and its validated spec; `name` (PUT) must match the spec's."""
    if (data.spec is None) == (data.toml is None):
        raise ValidationException("spec: give exactly one of `spec` (JSON object) and `toml`")
    if data.spec is not None:
        fields = dict(data.spec)
        if name is not None:
            fields.setdefault("name", name)
        origin = "spec"
        text = "".join(
            f"{_toml_string(str(k))} = {_toml(v, str(k))}\n"
            for k, v in fields.items()
            if v is not None
        )
    else:
        origin, text = "toml", data.toml or ""
    spec = _parse(text, origin)
    if name is not None and spec.name != name:
        raise ValidationException(f"{origin}: name: {spec.name!r} does not match the path {name!r}")
    return text, spec


async def check_tenant_spec(api: ApiState, tenant_id: str, spec: AgentSpec, origin: str) -> None:
    """400 unless a tenant may run `spec` (see the module docstring)."""
    settings = api.settings
    llm = spec.llm
    if llm is not None and llm.api_key_env:
        raise ValidationException(
            f"{origin}: llm.api_key_env: the node's environment is for the operator's agents; "
            "store the key with POST /v1/secrets and name it in llm.api_key_secret"
        )
    if llm is not None and spec.kind == "llm":
        try:
            await check_url(llm.base_url, settings.analytics.url_allowlist)
        except UnsafeUrlError as exc:
            raise ValidationException(f"{origin}: llm.base_url: refused: {exc}") from exc
    if llm is not None and llm.api_key_secret:
        async with api.store.session() as session:
            known = await secret_rows.has_secret(session, tenant_id, llm.api_key_secret)
        if not known:
            raise ValidationException(
                f"{origin}: llm.api_key_secret: no secret {llm.api_key_secret!r} "
                "(store it with POST /v1/secrets first)"
            )
    for server in spec.mcp:  # stdio refused; the URL guard, as for llm.base_url
        if (problem := await tenant_problem(server, settings.analytics.url_allowlist)) is not None:
            raise ValidationException(f"{origin}: {problem}")
    for secret in secret_names(spec.mcp):
        async with api.store.session() as session:
            known = await secret_rows.has_secret(session, tenant_id, secret)
        if not known:
            raise ValidationException(
                f"{origin}: mcp headers: no secret {secret!r} "
                "(store it with POST /v1/secrets first)"
            )
    voices = {settings.tts.voice, *settings.tts.voices} - {""}
    if spec.voice and spec.voice not in voices:
        raise ValidationException(
            f"{origin}: voice: {spec.voice!r} is not a voice installed on this node "
            "(leave it empty for the default, or ask the operator to add it to tts.voices)"
        )
    if spec.stt_model and spec.stt_model != settings.stt.model:
        raise ValidationException(
            f"{origin}: stt_model: only the node's model may be named (leave it empty)"
        )


# ---- routes ----


@get("/agents", summary="List agents")
async def list_agents(api: Api, tenant_id: ActingTenant) -> list[AgentSummary]:
    async with api.store.session() as session:
        rows = await agent_rows.list_agents(session, tenant_id)
    out = []
    for agent, version in rows:
        spec = _parse(version.spec, "stored spec")
        out.append(
            AgentSummary(
                name=agent.name,
                version=version.version,
                kind=spec.kind,
                description=spec.description,
                updated_at=utc(agent.updated_at),
            )
        )
    return out


@post(
    "/agents",
    guards=[can_manage],
    responses=errors(409),
    summary="Create an agent (version 1)",
)
async def create_agent(
    data: JSONBody[AgentIn],
    api: Api,
    tenant_id: ActingTenant,
) -> AgentOut:
    text, spec = spec_text(data)
    await check_tenant_spec(api, tenant_id, spec, _origin(data))
    async with api.store.session() as session:
        agent, version = await agent_rows.create_agent(session, tenant_id, spec.name, text)
    log.info("agent created", extra={"tenant_id": tenant_id, "agent": spec.name, "version": 1})
    return _out(agent, version)


@get("/agents/{name:str}", responses=errors(404), summary="Show an agent's current version")
async def show_agent(
    name: FromPath[str],
    api: Api,
    tenant_id: ActingTenant,
) -> AgentOut:
    async with api.store.session() as session:
        found = await agent_rows.get_agent(session, tenant_id, name)
    if found is None:
        raise NotFoundException(f"no agent {name!r}")
    return _out(*found)


@put(
    "/agents/{name:str}",
    guards=[can_manage],
    responses=errors(404, 409),
    summary="Update an agent",
)
async def update_agent(
    name: FromPath[str],
    data: JSONBody[AgentUpdate],
    api: Api,
    tenant_id: ActingTenant,
) -> AgentOut:
    """Store the spec as the agent's next version; live calls keep the version they run."""
    async with api.store.session() as session:
        if await agent_rows.get_agent(session, tenant_id, name) is None:
            raise NotFoundException(f"no agent {name!r}")
    text, spec = spec_text(data, name)
    await check_tenant_spec(api, tenant_id, spec, _origin(data))
    async with api.store.session() as session:
        found = await agent_rows.update_agent(session, tenant_id, name, text)
    if found is None:
        raise NotFoundException(f"no agent {name!r}")
    log.info(
        "agent updated", extra={"tenant_id": tenant_id, "agent": name, "version": found[1].version}
    )
    return _out(*found)


@delete(
    "/agents/{name:str}",
    guards=[can_manage],
    responses=errors(404, 409),
    summary="Delete an agent",
)
async def delete_agent(
    name: FromPath[str],
    api: Api,
    tenant_id: ActingTenant,
) -> None:
    """409 while numbers route to the agent. Live calls on it go on."""
    async with api.store.session() as session:
        if not await agent_rows.delete_agent(session, tenant_id, name):
            raise NotFoundException(f"no agent {name!r}")
    log.info("agent deleted", extra={"tenant_id": tenant_id, "agent": name})


@get(
    "/agents/{name:str}/versions",
    responses=errors(404),
    summary="An agent's versions, newest first",
)
async def list_versions(
    name: FromPath[str],
    api: Api,
    tenant_id: ActingTenant,
) -> list[VersionOut]:
    async with api.store.session() as session:
        rows = await agent_rows.list_versions(session, tenant_id, name)
    if rows is None:
        raise NotFoundException(f"no agent {name!r}")
    return [
        VersionOut(
            version=row.version,
            created_at=utc(row.created_at),
            note=row.note,
            spec=msgspec.to_builtins(_parse(row.spec, "stored spec")),
        )
        for row in rows
    ]


@post(
    "/agents/{name:str}/rollback",
    guards=[can_manage],
    status_code=200,
    responses=errors(404, 409),
    summary="Roll an agent back to an older version",
)
async def rollback_agent(
    name: FromPath[str],
    data: JSONBody[RollbackIn],
    api: Api,
    tenant_id: ActingTenant,
) -> AgentOut:
    """Appends a new version equal to `version` (so the history keeps the rollback)."""
    async with api.store.session() as session:
        found = await agent_rows.rollback_agent(session, tenant_id, name, data.version)
    if found is None:
        raise NotFoundException(f"no agent {name!r}")
    log.info(
        "agent rolled back",
        extra={
            "tenant_id": tenant_id,
            "agent": name,
            "to": data.version,
            "version": found[1].version,
        },
    )
    return _out(*found)


def agents_router(**kwargs: Any) -> Router:
    return Router(
        path="/v1",
        route_handlers=[
            list_agents,
            create_agent,
            show_agent,
            update_agent,
            delete_agent,
            list_versions,
            rollback_agent,
        ],
        exception_handlers=store_errors(),
        opt={TENANT_MUST_EXIST: True},
        **kwargs,
    )
