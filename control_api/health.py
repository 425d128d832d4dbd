"""Probes and metrics: `/healthz` (alive), `/readyz` (ready for calls), `/metrics`."""

from __future__ import annotations

from typing import Final, Protocol, runtime_checkable

import msgspec
from litestar import Response, get
from litestar.openapi.datastructures import ResponseSpec
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from control_api.state import Api


class Health(msgspec.Struct, frozen=True):
    status: str
    active_calls: int = 0


@runtime_checkable
class LoadAware(Protocol):
    """A host that knows whether its engines can take one more call (the node's
    `AdmittingHost`): while `saturated`, `/readyz` answers 503."""

    @property
    def saturated(self) -> bool: ...


METRICS_TYPE: Final = "; ".join(
    part for part in CONTENT_TYPE_LATEST.split("; ") if not part.startswith("charset=")
)
"""Prometheus's text format without its charset: Litestar adds `charset=utf-8` to a text type
(given twice, the header named it twice)."""


@get("/healthz", summary="The process is alive", sync_to_thread=False)
def healthz(api: Api) -> Health:
    return Health(status="ok", active_calls=api.host.active_calls())


@get(
    "/readyz",
    summary="Ready for new calls (503 while loading, draining or saturated)",
    sync_to_thread=False,
    responses={
        503: ResponseSpec(
            Health,
            description="Loading, draining, or saturated (engines over the voice-to-voice SLO)",
            generate_examples=False,
        )
    },
)
def readyz(api: Api) -> Response[Health]:
    host = api.host
    if host.draining:
        return Response(
            Health(status="draining", active_calls=host.active_calls()), status_code=503
        )
    if not host.ready:
        return Response(Health(status="loading"), status_code=503)
    if isinstance(host, LoadAware) and host.saturated:
        return Response(
            Health(status="saturated", active_calls=host.active_calls()), status_code=503
        )
    return Response(Health(status="ready", active_calls=host.active_calls()))


@get("/metrics", summary="Prometheus metrics", sync_to_thread=False, media_type=CONTENT_TYPE_LATEST)
def metrics() -> Response[bytes]:
    return Response(generate_latest(REGISTRY), media_type=METRICS_TYPE)
