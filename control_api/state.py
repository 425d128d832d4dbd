"""What every route handler may depend on: the node's settings, host and live calls."""

from __future__ import annotations

from dataclasses import dataclass

from litestar.di import NamedDependency

from config.schema import Settings
from control_api.calls import LiveCalls
from control_api.host import CallHost
from media.webrtc import WebRtcOptions


@dataclass(frozen=True, slots=True)
class ApiState:
    settings: Settings
    host: CallHost
    calls: LiveCalls
    webrtc: WebRtcOptions


Api = NamedDependency[ApiState]
"""A handler parameter `api: Api` receives the app's `ApiState`."""
