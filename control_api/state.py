"""What every route handler may depend on: the node's settings, host, live calls, store and
tenant quotas."""

from __future__ import annotations

from dataclasses import dataclass

from litestar.di import NamedDependency

from config.schema import Settings
from control_api.calls import LiveCalls
from control_api.host import CallHost
from control_api.quotas import Quotas
from control_api.store import Store
from media.webrtc import WebRtcOptions


@dataclass(frozen=True, slots=True)
class ApiState:
    settings: Settings
    host: CallHost
    calls: LiveCalls
    webrtc: WebRtcOptions
    store: Store
    quotas: Quotas


Api = NamedDependency[ApiState]
"""A handler parameter `api: Api` receives the app's `ApiState`."""
