"""The node's HTTP app: browser call signalling, probes, metrics, the /phone and /analytics pages,
OpenAPI.

`create_app(settings, host)` builds it and assembles the routers (`api_routers`; the analytics
routes in `analytics_routers`, since analytics itself knows nothing about HTTP);
`voicenode.serve` runs it on uvicorn in the node's event loop. The app owns its calls' tasks and
ends them on shutdown.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from litestar import Litestar, Router
from litestar.di import Provide
from litestar.handlers import HTTPRouteHandler
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme

from config.schema import Settings
from control_api.acting_tenant import tenant_dependency
from control_api.admin_api import admin_router
from control_api.agent_bodies import SPEC_TYPES
from control_api.agents_api import agents_router
from control_api.analytics import Analytics
from control_api.analytics_api import analytics_summary_router
from control_api.analytics_page import analytics_page_router
from control_api.auth import (
    BearerAuth,
    KeyRing,
    can_manage,
    can_operate,
    platform_only,
    token_guard,
)
from control_api.auth_limits import FailedAuth
from control_api.call_control_api import CALL_CONTROL
from control_api.calls_history_api import calls_history_router
from control_api.campaigns_api import campaigns_router
from control_api.dnc_api import dnc_router
from control_api.events_ws import EventSockets, PrincipalFor, events_router
from control_api.health import healthz, metrics, readyz
from control_api.host import CallHost
from control_api.keys_api import keys_router
from control_api.metrics import ACTIVE_CALLS
from control_api.numbers_api import numbers_router
from control_api.openapi_doc import Layers, document
from control_api.phone import PhoneTokens, phone_router
from control_api.recordings.live import LiveRecordings
from control_api.recordings_api import recording_router
from control_api.redaction_api import redaction_router
from control_api.secrets_api import secrets_router
from control_api.state import ApiState
from control_api.subjects_api import subjects_router
from control_api.tenants_api import tenants_router
from control_api.webhooks_api import webhooks_router
from control_api.webrtc_api import calls_router
from media.clock import Clock, MonotonicClock
from media.webrtc import WebRtcOptions

API_VERSION = "0.1.0"


def analytics_routers(
    analytics: Analytics,
    *,
    principal_for: PrincipalFor,
    call_handlers: Sequence[HTTPRouteHandler] = (),
    event_sockets: EventSockets | None = None,
    **router_kwargs: Any,
) -> list[Router]:
    """The routes that read analytics: `/v1/webhooks`, `/v1/calls` (history) — both behind the
    middleware in `router_kwargs` (the bearer auth) — and `WS /v1/events`, which authenticates
    itself with `principal_for(key)` so browsers can pass the key.

    `call_handlers` join the history router: Litestar refuses one path in two routers, so a
    handler on `/v1/calls/{call_id:str}` (the hang-up `DELETE`) must be passed here instead of
    living in another router. `event_sockets`: the event sockets' limits and clock (None: from
    the settings)."""
    return [
        webhooks_router(analytics, **router_kwargs),
        calls_history_router(analytics, extra_handlers=call_handlers, **router_kwargs),
        events_router(analytics, principal_for=principal_for, sockets=event_sockets),
        analytics_summary_router(analytics, **router_kwargs),
    ]


def api_routers(
    host: CallHost,
    *,
    principal_for: PrincipalFor,
    event_sockets: EventSockets,
    **router_kwargs: Any,
) -> list[Router]:
    """The `/v1` routers: calls, tenants and their configuration, and (when the host has
    analytics) `analytics_routers` and the data-subject routes; `router_kwargs` (the bearer
    auth) go to each. Tenant-scoped routers carry the acting-tenant dependency
    (`control_api.acting_tenant`)."""
    scoped = tenant_dependency(host.store)
    control = [
        make(tags=[tag], dependencies=deps, **router_kwargs)
        for make, tag, deps in [
            (tenants_router, "tenants", None),  # its paths name a tenant themselves
            (redaction_router, "tenants", None),
            (keys_router, "keys", scoped),
            (agents_router, "agents", scoped),
            (numbers_router, "numbers", scoped),
            (secrets_router, "secrets", scoped),
            (campaigns_router, "campaigns", scoped),
            (dnc_router, "campaigns", scoped),
        ]
    ]
    recordings: LiveRecordings | None = getattr(host, "recordings", None)
    if recordings is not None:  # /v1/calls/{id}/recording: paths of its own, beside /v1/calls
        control.append(
            recording_router(
                recordings.store, recordings, tags=["calls"], dependencies=scoped, **router_kwargs
            )
        )
    analytics: Analytics | None = getattr(host, "analytics", None)
    if analytics is None:
        calls = calls_router(CALL_CONTROL, tags=["calls"], dependencies=scoped, **router_kwargs)
        return [calls, *control]
    # Litestar refuses one path in two routers: with analytics on, the call-control handlers
    # join its `/v1/calls` history router.
    calls = calls_router(tags=["calls"], dependencies=scoped, **router_kwargs)
    kept = recordings.store if recordings is not None else None
    subjects = subjects_router(
        analytics, kept, tags=["subjects"], dependencies=scoped, **router_kwargs
    )
    return [
        calls,
        *control,
        subjects,
        *analytics_routers(
            analytics,
            principal_for=principal_for,
            call_handlers=CALL_CONTROL,
            event_sockets=event_sockets,
            **router_kwargs,
        ),
    ]


def _openapi(guards: list[Any]) -> OpenAPIConfig:
    """The schema at `/schema`, behind `guards` (the metrics token)."""
    return OpenAPIConfig(
        title="voicenode",
        version=API_VERSION,
        path="/schema",
        openapi_router=Router(path="/schema", route_handlers=[], guards=guards),
        components=Components(
            security_schemes={"bearer": SecurityScheme(type="http", scheme="bearer")}
        ),
    )


def create_app(
    settings: Settings,
    host: CallHost,
    *,
    webrtc: WebRtcOptions | None = None,
    clock: Clock | None = None,
    phone: PhoneTokens | None = None,
) -> Litestar:
    """The app; `clock` times the auth limits and event-socket re-checks (default: monotonic),
    `phone` the tokens of printed /phone links (none: no phone token is accepted)."""
    state = ApiState(
        settings=settings,
        host=host,
        calls=host.calls,
        webrtc=webrtc or WebRtcOptions.from_settings(settings.webrtc),
        store=host.store,
        quotas=host.quotas,
    )
    ACTIVE_CALLS.set_function(lambda: float(host.active_calls()))
    host.calls.use_dialplan(settings.dialplan)

    http = settings.http
    clock = clock or MonotonicClock()
    limiter = FailedAuth(http.auth_failures_max, http.auth_failures_window_s)
    keyring = KeyRing(http.admin_key, host.store, clock=clock, limiter=limiter, phone=phone)
    auth = [DefineMiddleware(BearerAuth, keys=keyring)]
    admin_surface = [token_guard(http.metrics_token, keyring)]
    sockets = EventSockets(
        clock=clock,
        recheck_s=http.events_recheck_s,
        max_per_tenant=http.events_max_per_tenant,
        limits=keyring,
    )
    bearer: list[dict[str, list[str]]] = [{"bearer": []}]
    routers = api_routers(
        host,
        principal_for=keyring.principal_for,
        event_sockets=sockets,
        middleware=auth,
        security=bearer,
    )
    app = Litestar(
        route_handlers=[
            *routers,
            admin_router(middleware=auth, security=bearer, tags=["admin"]),
            healthz,
            readyz,
            Router(path="/", route_handlers=[metrics], guards=admin_surface),
            phone_router(),
            analytics_page_router(),
        ],
        dependencies={"api": Provide(lambda: state, use_cache=True, sync_to_thread=False)},
        on_shutdown=[state.calls.shutdown],
        openapi_config=_openapi(admin_surface),
        request_max_body_size=http.max_body_bytes,
        logging_config=None,
        debug=False,
    )
    document(app, _layers(admin_surface if http.metrics_token else []), extra=SPEC_TYPES)
    return app


def _layers(token_guards: list[Any]) -> Layers:
    """What answers before the routes, for the document: the bearer key, the metrics token
    (when one is set), the role guards."""
    return Layers(
        bearer=BearerAuth,
        token_guards=token_guards,
        role_guards=(can_operate, can_manage, platform_only),
    )
