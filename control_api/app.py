"""The node's HTTP app: browser call signalling, probes, metrics, the /phone page, OpenAPI.

`create_app(settings, host)` builds it; `voicenode.serve` runs it on uvicorn in the node's
event loop. The app owns its calls' tasks and ends them on shutdown.
"""

from __future__ import annotations

from litestar import Litestar, Router
from litestar.di import Provide
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme

from config.schema import Settings
from control_api.acting_tenant import tenant_dependency
from control_api.admin_api import admin_router
from control_api.agents_api import agents_router
from control_api.auth import BearerAuth, KeyRing, token_guard
from control_api.auth_limits import FailedAuth
from control_api.call_control_api import CALL_CONTROL
from control_api.events_ws import EventSockets
from control_api.health import healthz, metrics, readyz
from control_api.host import CallHost
from control_api.keys_api import keys_router
from control_api.metrics import ACTIVE_CALLS
from control_api.numbers_api import numbers_router
from control_api.phone import PhoneTokens, phone_router
from control_api.secrets_api import secrets_router
from control_api.state import ApiState
from control_api.tenants_api import tenants_router
from control_api.webrtc_api import calls_router
from media.clock import Clock, MonotonicClock
from media.webrtc import WebRtcOptions

API_VERSION = "0.1.0"


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

    def provide_state() -> ApiState:
        return state

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
    # Litestar refuses one path in two routers: with analytics on, the call-control handlers
    # join its `/v1/calls` history router.
    analytics = getattr(host, "analytics", None)
    extra: list[Router] = []
    scoped = tenant_dependency(host.store)  # the acting tenant, for tenant-scoped routes
    if analytics is not None:
        api = calls_router(middleware=auth, security=bearer, tags=["calls"], dependencies=scoped)
        extra = analytics.routers(
            principal_for=keyring.principal_for,
            call_handlers=CALL_CONTROL,
            event_sockets=sockets,
            middleware=auth,
            security=bearer,
        )
    else:
        api = calls_router(
            CALL_CONTROL, middleware=auth, security=bearer, tags=["calls"], dependencies=scoped
        )
    control = [
        make(middleware=auth, security=[{"bearer": []}], tags=[tag], dependencies=deps)
        for make, tag, deps in [
            (tenants_router, "tenants", None),  # its paths name a tenant themselves
            (keys_router, "keys", scoped),
            (agents_router, "agents", scoped),
            (numbers_router, "numbers", scoped),
            (secrets_router, "secrets", scoped),
        ]
    ]
    return Litestar(
        route_handlers=[
            api,
            *control,
            admin_router(middleware=auth, security=bearer, tags=["admin"]),
            *extra,
            healthz,
            readyz,
            Router(path="/", route_handlers=[metrics], guards=admin_surface),
            phone_router(),
        ],
        dependencies={"api": Provide(provide_state, use_cache=True, sync_to_thread=False)},
        on_shutdown=[state.calls.shutdown],
        openapi_config=OpenAPIConfig(
            title="voicenode",
            version=API_VERSION,
            path="/schema",
            openapi_router=Router(path="/schema", route_handlers=[], guards=admin_surface),
            components=Components(
                security_schemes={"bearer": SecurityScheme(type="http", scheme="bearer")}
            ),
        ),
        request_max_body_size=http.max_body_bytes,
        logging_config=None,
        debug=False,
    )
