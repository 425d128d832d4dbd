"""The node's settings. Every section is a frozen msgspec Struct; unknown keys are errors."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from config.clickhouse import ClickHouseSettings
from config.recording import RecordingSettings
from config.section import Port, PositiveInt, Section
from config.telephony import (
    AmiSettings,
    AudioSocketSettings,
    DialPlanOverride,
    DialPlanSettings,
    SipSettings,
    SipTrunkSettings,
    check_networks,
)

__all__ = [  # the telephony sections live in config.telephony; importable from here too
    "ADMIN_KEY_MIN_LENGTH",
    "AgentsSettings",
    "AmiSettings",
    "AnalyticsSettings",
    "AudioSocketSettings",
    "DialPlanOverride",
    "DialPlanSettings",
    "HttpSettings",
    "NodeSettings",
    "Port",
    "PositiveInt",
    "RecordingSettings",
    "Settings",
    "SipSettings",
    "SipTrunkSettings",
    "StoreSettings",
    "SttSettings",
    "TtsSettings",
    "TurnModelSettings",
    "VadSettings",
    "WebRtcSettings",
    "check_networks",
]


class NodeSettings(Section, frozen=True):
    """Process-wide settings."""

    name: str = "voicenode-1"
    data_dir: str = "var"
    max_calls: Annotated[int, Meta(ge=1, le=10_000)] = 8
    tenant_share: Annotated[float, Meta(gt=0, le=1)] = 0.5
    """One tenant's live calls on this node are at most this share of `max_calls` (at least 1),
    whatever its own quota says: no tenant can take the whole node."""
    drain_timeout_s: Annotated[float, Meta(ge=0)] = 300.0
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["auto", "json", "text"] = "auto"
    redact_pii: bool = True
    slo_v2v_ms: Annotated[int, Meta(ge=0, le=60_000)] = 0
    """Admission from load: a new call is refused (503, Retry-After) while the projected
    voice-to-voice p95 with it admitted exceeds this (`pipeline.load`); 0: off, only
    `max_calls` limits."""
    slo_base_ms: Annotated[int, Meta(ge=0, le=60_000)] = 500
    """The part of voice-to-voice that engine load does not change (the turn window, the
    agent's first words, playout); the projection adds the engines' projected times to it."""


ADMIN_KEY_MIN_LENGTH = 24


class HttpSettings(Section, frozen=True):
    """The HTTP API: where it listens, the platform admin key and the limits on its callers."""

    host: str = "127.0.0.1"
    port: Port = 8080
    admin_key: str = ""
    """The platform admin key (at least 24 characters); empty: no platform admin this run."""
    metrics_token: str = ""
    """When set, `/metrics` and the OpenAPI schema (`/schema`) need `Authorization: Bearer` it."""
    phone_token_ttl_s: Annotated[float, Meta(gt=0, le=86_400)] = 3600.0
    """How long the printed /phone link (a token that can only place a demo WebRTC call) works."""
    events_recheck_s: Annotated[float, Meta(gt=0, le=300)] = 5.0
    """`WS /v1/events` looks its key up again this often; a revoked key's socket closes (4401)."""
    events_max_per_tenant: Annotated[int, Meta(ge=1, le=10_000)] = 16
    """Open `WS /v1/events` sockets per tenant; more are closed with 4429."""
    auth_failures_max: Annotated[int, Meta(ge=1, le=100_000)] = 20
    auth_failures_window_s: Annotated[float, Meta(gt=0, le=86_400)] = 60.0
    """A source address that presented this many wrong keys within the window gets 429 (with
    Retry-After) for every request until the oldest failure is out of the window."""
    max_body_bytes: Annotated[int, Meta(ge=1024, le=100 * 1024 * 1024)] = 1024 * 1024
    """Larger request bodies are refused with 413."""
    max_ws_message_bytes: Annotated[int, Meta(ge=1024, le=16 * 1024 * 1024)] = 64 * 1024
    """Larger WebSocket messages close the socket with 1009."""

    def __post_init__(self) -> None:
        if self.admin_key and len(self.admin_key) < ADMIN_KEY_MIN_LENGTH:
            raise ValueError(
                f"http.admin_key: must be at least {ADMIN_KEY_MIN_LENGTH} characters "
                "(use a random value, e.g. `openssl rand -base64 32`)"
            )


class SttSettings(Section, frozen=True):
    """Speech to text. An empty `model` means the embedded Whisper tiny.en (int8, CPU)."""

    model: str = ""
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    compute_type: str = "int8"
    cpu_threads: Annotated[int, Meta(ge=0, le=64)] = 2
    beam_size: Annotated[int, Meta(ge=1, le=10)] = 1
    language: str = "en"
    partial_interval_ms: Annotated[int, Meta(ge=100, le=5000)] = 400
    queue_size: Annotated[int, Meta(ge=1, le=1024)] = 32
    context_s: Annotated[float, Meta(ge=5, le=30)] = 10.0
    """Encoder window for utterances that fit in it (30: always Whisper's full window)."""
    batch_window_ms: Annotated[int, Meta(ge=0, le=200)] = 8
    """How long a decode waits for others (other calls') to run with it in one model call: a
    latency paid for throughput; 0 takes whatever is queued at once."""
    max_batch: Annotated[int, Meta(ge=0, le=64)] = 0
    """At most this many decodes in one model call (1: one at a time, no batching). 0: 1 on
    the CPU, 8 on CUDA. On the CPU a batch of N costs as much as N decodes, and every decode in
    it waits for the whole batch: 12 calls' finals batched by 8 waited 1.5 s where one at a
    time they wait 0.2-1.8 s (the wire bench, 12 calls in a burst)."""


class TtsSettings(Section, frozen=True):
    """Text to speech. An empty `voice` means the embedded Piper voice en_US-joe-medium."""

    voice: str = ""
    device: Literal["cpu", "cuda"] = "cpu"
    """Where Piper runs: `cuda` is onnxruntime's CUDA provider (`voicenode[gpu]`), else no start."""
    speaker_id: Annotated[int, Meta(ge=0)] | None = None
    length_scale: Annotated[float, Meta(gt=0.2, le=4.0)] = 1.0
    queue_size: Annotated[int, Meta(ge=1, le=1024)] = 32
    workers: Annotated[int, Meta(ge=0, le=64)] = 0
    """Syntheses run at once, at most the cores TTS is given (`pipeline.threads`); 0: that
    many."""
    voices: tuple[str, ...] = ()
    """Further Piper voices (.onnx paths) the operator installed: a tenant's agent may name
    one of these (or `voice`) as its `voice`, nothing else."""
    deterministic: bool = False
    """Piper's sampling noise off: the same text is the same audio every time (a flatter
    voice). For tests that transcribe the agent's speech back; off in service."""


class VadSettings(Section, frozen=True):
    """Voice activity detection: Silero v6 on every frame (batched across calls), or behind a
    webrtcvad gate (`gate = "webrtcvad"`)."""

    gate: Literal["none", "webrtcvad"] = "none"
    """"webrtcvad": Silero is skipped (and its state reset) while webrtcvad hears no voice,
    which saves little now that Silero runs batched, and loses quiet, phone-band speech
    (webrtcvad at mode 2 heard 40 ms of a 1.6 s line through G.711 that Silero alone
    finds 880 ms of) and the onset Silero needs its running state for."""
    webrtc_mode: Annotated[int, Meta(ge=0, le=3)] = 2
    """The gate's aggressiveness (with `gate = "webrtcvad"`)."""
    speech_threshold: Annotated[float, Meta(gt=0.0, lt=1.0)] = 0.5
    silence_threshold: Annotated[float, Meta(gt=0.0, lt=1.0)] = 0.35
    model: str = ""
    device: Literal["cpu", "cuda"] = "cpu"
    """Where Silero runs: `cuda`, onnxruntime's CUDA provider (`voicenode[gpu]`), else no start."""


class TurnModelSettings(Section, frozen=True):
    """The audio end-of-turn model (Smart Turn v3.2, ONNX) asked at the caller's pauses. An
    empty `model` means the one `make venv` installs (`<venv>/share/voicenode/models/`); a
    node with `enabled` and no model file does not start (the error names this setting)."""

    enabled: bool = True
    model: str = ""
    threads: Annotated[int, Meta(ge=1, le=64)] = 1
    """onnxruntime intra-op threads for one run (runs are serial, batched across calls)."""


class AgentsSettings(Section, frozen=True):
    """Agent files: embedded + `dir`; `strict`: a bad one stops the start (docs/operations.md)."""

    dir: str = ""
    default: str = "receptionist"
    strict: bool = False
    file_conflict: Literal["file-wins", "keep-api"] = "file-wins"


class WebRtcSettings(Section, frozen=True):
    """Browser calls (aiortc): where ICE candidates come from and how much audio may wait."""

    host_addresses: tuple[str, ...] = ()
    """Local IP addresses for ICE host candidates; empty: every interface but loopback (what a
    browser on this machine or the LAN reaches). Only loopback addresses: media stays on this
    machine and the browser's other candidates are ignored."""
    stun_urls: tuple[Annotated[str, Meta(pattern=r"^stuns?:")], ...] = ()
    """STUN servers (`stun:host:port`) for server-reflexive candidates; none by default."""
    connect_timeout_s: Annotated[float, Meta(gt=0, le=300)] = 20.0
    inbound_buffer_frames: Annotated[int, Meta(ge=5, le=500)] = 50
    outbound_buffer_frames: Annotated[int, Meta(ge=5, le=500)] = 25
    event_backlog: Annotated[int, Meta(ge=1, le=10_000)] = 256
    allowed_networks: tuple[str, ...] = ()
    """Networks (CIDRs) an offer's ICE candidates may name; others are dropped before ICE sends
    them anything. Empty: any public or private unicast address and mDNS `.local` names.
    Link-local (cloud metadata), multicast, unspecified and reserved addresses never pass;
    loopback only when listed here or when `host_addresses` are all loopback."""
    max_candidates: Annotated[int, Meta(ge=1, le=256)] = 16
    """An offer's first this-many acceptable ICE candidates are used; the rest are dropped."""

    def __post_init__(self) -> None:
        for address in self.host_addresses:
            try:
                ipaddress.ip_address(address)
            except ValueError:
                raise ValueError(f"host_addresses: {address!r} is not an IP address") from None
        check_networks("allowed_networks", self.allowed_networks)


class StoreSettings(Section, frozen=True):
    """Tenants, keys, agents, numbers, calls. Migrated to the newest schema at node start."""

    url: str = ""
    """An SQLAlchemy async URL (`sqlite+aiosqlite:///path.db`, `postgresql+asyncpg://...`);
    empty: `voicenode.db` under `node.data_dir`."""
    secrets_key: str = ""
    """The key that encrypts tenant secrets and webhook secrets at rest (AES-256-GCM): 32
    random bytes, url-safe base64 (`python -c "import os,base64;print(base64.urlsafe_b64encode(
    os.urandom(32)).decode())"`); set it with VOICENODE_STORE__SECRETS_KEY. Empty: the key in
    `node.data_dir/secrets.key`, generated (mode 0600) on first start. Every node of a fleet
    sharing one store needs the same key."""


class AnalyticsSettings(Section, frozen=True):
    """Call records, the event outbox and its relay to Redis Streams and webhooks."""

    redis_url: str = ""
    """Redis to push events to (`redis://host:6379/0`); empty: events stay in the outbox."""
    stream: Annotated[str, Meta(min_length=1)] = "voicenode:events"
    stream_maxlen: Annotated[int, Meta(ge=0)] = 0  # approximate (XADD MAXLEN ~); 0: uncapped
    queue_size: Annotated[int, Meta(ge=16, le=1_000_000)] = 10_000
    """Events waiting for the database writer (beyond: dropped and counted, calls go on)."""
    write_batch_size: Annotated[int, Meta(ge=1, le=10_000)] = 256  # events per transaction
    relay_batch_size: Annotated[int, Meta(ge=1, le=10_000)] = 200
    """Outbox rows a sink takes per pass."""
    relay_interval_s: Annotated[float, Meta(gt=0, le=3600)] = 2.0
    """The relay looks at the outbox at least this often (new events wake it at once)."""
    redis_backoff_s: Annotated[float, Meta(gt=0, le=3600)] = 0.5
    redis_backoff_max_s: Annotated[float, Meta(gt=0, le=3600)] = 30.0
    """Redis unreachable: retry after `redis_backoff_s`, doubling up to this (never dropped)."""
    webhook_timeout_s: Annotated[float, Meta(gt=0, le=60)] = 5.0
    webhook_backoff_s: Annotated[float, Meta(gt=0, le=3600)] = 1.0
    webhook_backoff_max_s: Annotated[float, Meta(gt=0, le=86_400)] = 300.0
    """A failed webhook delivery is retried after `webhook_backoff_s`, doubling up to this."""
    webhook_max_attempts: Annotated[int, Meta(ge=1, le=100)] = 8
    """After this many failed tries an event goes to the dead letters (later ones go on)."""
    webhook_require_https: bool = True
    allow_private_urls: bool = False
    """Let webhooks reach loopback/private/link-local addresses (tests, closed networks)."""
    url_allowlist: tuple[str, ...] = ()
    """Host names, IPs or CIDRs webhooks may reach even though they are not public."""
    outcome_timeout_s: Annotated[float, Meta(gt=0, le=120)] = 15.0
    """How long an LLM agent's model may take to produce a call's outcome (then: rules)."""
    outbox_retention_hours: Annotated[int, Meta(ge=0, le=87_600)] = 0
    """Outbox events older than this that every sink has taken (none dead-lettered, their
    call ended) are deleted; undelivered ones are kept whatever their age (0: all kept). The
    node looks at start and then every 15 minutes."""
    clickhouse: ClickHouseSettings = msgspec.field(default_factory=ClickHouseSettings)


class Settings(Section, frozen=True):
    node: NodeSettings = msgspec.field(default_factory=NodeSettings)
    http: HttpSettings = msgspec.field(default_factory=HttpSettings)
    stt: SttSettings = msgspec.field(default_factory=SttSettings)
    tts: TtsSettings = msgspec.field(default_factory=TtsSettings)
    vad: VadSettings = msgspec.field(default_factory=VadSettings)
    turn_model: TurnModelSettings = msgspec.field(default_factory=TurnModelSettings)
    agents: AgentsSettings = msgspec.field(default_factory=AgentsSettings)
    webrtc: WebRtcSettings = msgspec.field(default_factory=WebRtcSettings)
    sip: SipSettings = msgspec.field(default_factory=SipSettings)
    audiosocket: AudioSocketSettings = msgspec.field(default_factory=AudioSocketSettings)
    ami: AmiSettings = msgspec.field(default_factory=AmiSettings)
    dialplan: DialPlanSettings = msgspec.field(default_factory=DialPlanSettings)
    store: StoreSettings = msgspec.field(default_factory=StoreSettings)
    analytics: AnalyticsSettings = msgspec.field(default_factory=AnalyticsSettings)
    recording: RecordingSettings = msgspec.field(default_factory=RecordingSettings)
