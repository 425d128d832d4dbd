"""The node's settings. Every section is a frozen msgspec Struct; unknown keys are errors."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

Port = Annotated[int, Meta(ge=0, le=65535)]
PositiveInt = Annotated[int, Meta(ge=1)]


class _Section(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    pass


class NodeSettings(_Section, frozen=True):
    """Process-wide settings."""

    name: str = "voicenode-1"
    data_dir: str = "var"
    max_calls: Annotated[int, Meta(ge=1, le=10_000)] = 8
    drain_timeout_s: Annotated[float, Meta(ge=0)] = 300.0
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "text"] = "json"
    redact_pii: bool = True


class HttpSettings(_Section, frozen=True):
    host: str = "127.0.0.1"
    port: Port = 8080
    admin_key: str = ""


class SttSettings(_Section, frozen=True):
    """Speech to text. An empty `model` means the embedded Whisper tiny.en (int8, CPU)."""

    model: str = ""
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    compute_type: str = "int8"
    cpu_threads: Annotated[int, Meta(ge=0, le=64)] = 2
    beam_size: Annotated[int, Meta(ge=1, le=10)] = 1
    language: str = "en"
    partial_interval_ms: Annotated[int, Meta(ge=100, le=5000)] = 400
    queue_size: Annotated[int, Meta(ge=1, le=1024)] = 32


class TtsSettings(_Section, frozen=True):
    """Text to speech. An empty `voice` means the embedded Piper voice en_US-joe-medium."""

    voice: str = ""
    speaker_id: Annotated[int, Meta(ge=0)] | None = None
    length_scale: Annotated[float, Meta(gt=0.2, le=4.0)] = 1.0
    queue_size: Annotated[int, Meta(ge=1, le=1024)] = 32


class VadSettings(_Section, frozen=True):
    """Voice activity detection: webrtcvad gate, then Silero v6."""

    webrtc_mode: Annotated[int, Meta(ge=0, le=3)] = 2
    speech_threshold: Annotated[float, Meta(gt=0.0, lt=1.0)] = 0.5
    silence_threshold: Annotated[float, Meta(gt=0.0, lt=1.0)] = 0.35
    model: str = ""


class AgentsSettings(_Section, frozen=True):
    """Where agent specs come from: the embedded ones plus an optional directory of TOML files."""

    dir: str = ""
    default: str = "receptionist"


class SipSettings(_Section, frozen=True):
    host: str = "127.0.0.1"
    port: Port = 5060


class AudioSocketSettings(_Section, frozen=True):
    host: str = "127.0.0.1"
    port: Port = 9092


class StoreSettings(_Section, frozen=True):
    url: str = ""


class AnalyticsSettings(_Section, frozen=True):
    redis_url: str = ""
    stream: str = "voicenode:events"


class Settings(_Section, frozen=True):
    node: NodeSettings = msgspec.field(default_factory=NodeSettings)
    http: HttpSettings = msgspec.field(default_factory=HttpSettings)
    stt: SttSettings = msgspec.field(default_factory=SttSettings)
    tts: TtsSettings = msgspec.field(default_factory=TtsSettings)
    vad: VadSettings = msgspec.field(default_factory=VadSettings)
    agents: AgentsSettings = msgspec.field(default_factory=AgentsSettings)
    sip: SipSettings = msgspec.field(default_factory=SipSettings)
    audiosocket: AudioSocketSettings = msgspec.field(default_factory=AudioSocketSettings)
    store: StoreSettings = msgspec.field(default_factory=StoreSettings)
    analytics: AnalyticsSettings = msgspec.field(default_factory=AnalyticsSettings)
