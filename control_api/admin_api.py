"""`POST /v1/admin/reload` (platform admin key only): re-read the configuration and the agent
files, as SIGHUP does. What changes live applies to new calls (live calls keep theirs); what
needs a restart is listed and left as it was; an invalid configuration changes nothing (422).

The node that serves the app puts its reload in the app's state (`RELOAD_STATE`); without one
(an app served without a configuration source, as in tests) the route answers 409.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Final

import msgspec
from litestar import Request, Router, post
from litestar.datastructures import State
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    PermissionDeniedException,
)

from control_api.auth import Principal, platform_only

RELOAD_STATE: Final = "reload"
"""The key of the node's `Reload` in `app.state`."""


class AgentChange(msgspec.Struct, frozen=True, kw_only=True):
    """What the reconcile did for one agent file."""

    agent: str
    action: str
    """create, update, refused, kept-api or removed (unchanged agents are not listed)."""
    version: int | None = None
    """The agent's version before (refused, kept-api, removed: the one it keeps)."""
    new_version: int | None = None
    fields: list[str] = msgspec.field(default_factory=list)
    error: str = ""


class ReloadReport(msgspec.Struct, frozen=True, kw_only=True):
    ok: bool
    """False: nothing changed (`error` says why)."""
    live: list[str] = msgspec.field(default_factory=list)
    """Settings changed now, for new calls."""
    restart: list[str] = msgspec.field(default_factory=list)
    """Settings that changed in the file but need a restart; the old values stay."""
    agents: list[AgentChange] = msgspec.field(default_factory=list)
    error: str = ""


Reload = Callable[[str], Awaitable[ReloadReport]]
"""The node's reload; the argument says what asked for it (for the log)."""


class ReloadRefused(HTTPException):
    status_code = 422


class NoReload(HTTPException):
    status_code = 409


@post(
    "/admin/reload",
    guards=[platform_only],
    status_code=200,
    raises=[NotAuthorizedException, PermissionDeniedException, NoReload, ReloadRefused],
    summary="Reload the configuration and the agent files",
)
async def reload_node(request: Request[Principal, Any, State]) -> ReloadReport:
    reload: Reload | None = request.app.state.get(RELOAD_STATE)
    if reload is None:
        raise NoReload(detail="this node has no configuration source to reload from")
    report = await reload("api")
    if not report.ok:
        raise ReloadRefused(detail=f"reload refused, nothing changed: {report.error}")
    return report


def admin_router(**kwargs: Any) -> Router:
    return Router(path="/v1", route_handlers=[reload_node], **kwargs)
