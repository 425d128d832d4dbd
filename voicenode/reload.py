"""Reloading a running node (SIGHUP, `POST /v1/admin/reload`): the configuration is read
again and compared with what the node runs.

- Live (new calls get it, live calls keep what they started with): the agent files
  (reconciled with the store), `node.log_level`/`log_format`/`redact_pii`, `node.max_calls`,
  `node.tenant_share`, `analytics.url_allowlist` (agents' tools and model access, webhook
  deliveries), `sip.trusted_proxies`/`allowed_sources`, `audiosocket.routes`/`default_agent`,
  `dialplan.*`, `agents.*`. Tenant quotas live in the store and apply to the next call anyway.
  The node's parts read these through the node's settings holder (`Node.live`,
  `voicenode.live`), which the reload replaces: no listener is rebuilt.
- Everything else (ports, transports, models, the store URL, the keys, `sip.tenant_header`,
  `audiosocket.allowed_sources`, ...) needs a restart: named in one warning line, left as it
  was.
- A configuration that does not load, or an `agents.dir` that is gone, changes nothing.

`split_settings` is the pure part: old and new settings in, the settings to run (new for live
keys, old for the rest) and the changed keys of each kind out.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Final, Protocol, runtime_checkable

import httpx
import msgspec

from agents.urlguard import guarded_client
from config import ConfigError, Settings
from control_api.admin_api import AgentChange, ReloadReport
from control_api.agent_files import Plan
from control_api.host import CallHost
from control_api.quotas import tenant_cap
from control_api.store.file_agents import reconcile
from control_api.store.seed import agent_files
from voicenode.admission import Admission
from voicenode.live import Live
from voicenode.logs import setup_logging

log = logging.getLogger(__name__)

LIVE: Final = (
    "node.log_level",
    "node.log_format",
    "node.redact_pii",
    "node.max_calls",
    "node.tenant_share",
    "analytics.url_allowlist",
    "sip.trusted_proxies",
    "sip.allowed_sources",
    "audiosocket.routes",
    "audiosocket.default_agent",
    "dialplan",
    "agents",
)
"""Settings (a key or a whole section) a reload applies to new calls."""


def _leaves(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The `section.key` names whose values differ (a table-valued key compared whole)."""
    out: list[str] = []
    for section in sorted(old):
        a, b = old[section], new[section]
        out += [f"{section}.{key}" for key in sorted(a) if a[key] != b[key]]
    return out


def _is_live(key: str) -> bool:
    return any(key == live or key.startswith(live + ".") for live in LIVE)


def _put(tree: dict[str, Any], key: str, value: Any) -> None:
    section, name = key.split(".")
    tree[section][name] = value


def _get(tree: dict[str, Any], key: str) -> Any:
    section, name = key.split(".")
    return tree[section][name]


def split_settings(old: Settings, new: Settings) -> tuple[Settings, list[str], list[str]]:
    """The settings to run after a reload (live keys from `new`, the others from `old`), the
    live keys that changed and those that changed but need a restart."""
    a, b = msgspec.to_builtins(old), msgspec.to_builtins(new)
    changed = _leaves(a, b)
    live = [k for k in changed if _is_live(k)]
    restart = [k for k in changed if not _is_live(k)]
    for key in restart:
        _put(b, key, _get(a, key))
    return msgspec.convert(b, Settings), live, restart


def _changes(plan: Plan, versions: dict[str, int]) -> list[AgentChange]:
    return [
        AgentChange(
            agent=s.agent,
            action=s.action,
            version=s.version,
            new_version=versions.get(s.agent) if s.action in ("create", "update") else None,
            fields=list(s.fields),
            error=s.error,
        )
        for s in plan.steps
        if s.action != "unchanged"
    ]


@runtime_checkable
class _NodeParts(Protocol):
    """What a reload swaps on the node (`voicenode.node.Node`; a test's fake host has none)."""

    live: Live[Settings]
    admission: Admission

    def use_http(self, client: httpx.AsyncClient) -> None: ...


def _logging(s: Settings) -> tuple[str, str, bool]:
    return s.node.log_level, s.node.log_format, s.node.redact_pii


class Reloader:
    """The node's reload, one at a time."""

    def __init__(self, settings: Settings, host: CallHost, load: Callable[[], Settings]) -> None:
        self.settings = settings
        self._host = host
        self._load = load
        self._lock = asyncio.Lock()

    async def reload(self, by: str) -> ReloadReport:
        async with self._lock:
            try:
                new = await asyncio.to_thread(self._load)
                merged, live, restart = split_settings(self.settings, new)
                found, refused = await asyncio.to_thread(agent_files, merged)
            except ConfigError as exc:
                log.error("reload refused, nothing changed", extra={"by": by, "error": str(exc)})
                return ReloadReport(ok=False, error=str(exc))
            conflict = merged.agents.file_conflict
            plan = await reconcile(self._host.store, found, refused, conflict)
            versions = await self._versions(plan)
            self._apply(merged, live)
            if restart:
                log.warning(
                    "reload: these settings need a restart and keep their old values",
                    extra={"by": by, "restart": restart},
                )
            log.info("reloaded", extra={"by": by, "live": live, "agents": len(plan.writes)})
            return ReloadReport(
                ok=True, live=live, restart=restart, agents=_changes(plan, versions)
            )

    async def _versions(self, plan: Plan) -> dict[str, int]:
        out: dict[str, int] = {}
        for step in plan.writes:
            ref = await self._host.find_agent("demo", step.agent)
            if ref is not None:
                out[step.agent] = ref.version
        return out

    def _apply(self, new: Settings, live: list[str]) -> None:
        """Swap the live settings in; calls already running keep what they hold."""
        old, self.settings = self.settings, new
        if _logging(old) != _logging(new):
            setup_logging(new.node.log_level, new.node.log_format, redact_pii=new.node.redact_pii)
        self._host.quotas.tenant_cap = tenant_cap(new.node.max_calls, new.node.tenant_share)
        self._host.calls.use_dialplan(new.dialplan)
        if not isinstance(self._host, _NodeParts):
            return
        if old.analytics.url_allowlist != new.analytics.url_allowlist:
            # the node closes it when it stops; live calls keep the client they have
            self._host.use_http(guarded_client(new.analytics.url_allowlist))
        self._host.live.value = new  # routes, networks, allowlist: the next call reads them
        self._host.admission.max_calls = new.node.max_calls
