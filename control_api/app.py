"""The node's HTTP app: browser call signalling, probes, metrics, the /phone page, OpenAPI.

`create_app(settings, host)` builds it; `voicenode.serve` runs it on uvicorn in the node's
event loop. The app owns its calls' tasks and ends them on shutdown.
"""

from __future__ import annotations

from litestar import Litestar
from litestar.di import Provide
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme

from config.schema import Settings
from control_api.auth import BearerAuth, KeyRing
from control_api.calls import LiveCalls
from control_api.health import healthz, metrics, readyz
from control_api.host import CallHost
from control_api.metrics import ACTIVE_CALLS
from control_api.phone import phone_router
from control_api.state import ApiState
from control_api.webrtc_api import calls_router
from media.webrtc import WebRtcOptions

API_VERSION = "0.1.0"


def create_app(
    settings: Settings, host: CallHost, *, webrtc: WebRtcOptions | None = None
) -> Litestar:
    state = ApiState(
        settings=settings,
        host=host,
        calls=LiveCalls(host),
        webrtc=webrtc or WebRtcOptions(),
    )
    ACTIVE_CALLS.set_function(lambda: float(host.active_calls()))

    def provide_state() -> ApiState:
        return state

    api = calls_router(
        middleware=[DefineMiddleware(BearerAuth, keys=KeyRing(settings.http.admin_key))],
        security=[{"bearer": []}],
        tags=["calls"],
    )
    return Litestar(
        route_handlers=[api, healthz, readyz, metrics, phone_router()],
        dependencies={"api": Provide(provide_state, use_cache=True, sync_to_thread=False)},
        on_shutdown=[state.calls.shutdown],
        openapi_config=OpenAPIConfig(
            title="voicenode",
            version=API_VERSION,
            path="/schema",
            components=Components(
                security_schemes={"bearer": SecurityScheme(type="http", scheme="bearer")}
            ),
        ),
        logging_config=None,
        debug=False,
    )
