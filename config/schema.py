"""The node's settings. Every section is a frozen msgspec Struct; unknown keys are errors."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from config.clickhouse import ClickHouseSettings

Port = Annotated[int, Meta(ge=0, le=65535)]
PositiveInt = Annotated[int, Meta(ge=1)]


class _Section(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    pass


class NodeSettings(_Section, frozen=True):
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


class HttpSettings(_Section, frozen=True):
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
    context_s: Annotated[float, Meta(ge=5, le=30)] = 10.0
    """Encoder window for utterances that fit in it (30: always Whisper's full window)."""
    batch_window_ms: Annotated[int, Meta(ge=0, le=200)] = 8
    """How long a decode waits for others (other calls') to run with it in one model call: a
    latency paid for throughput; 0 takes whatever is queued at once."""
    max_batch: Annotated[int, Meta(ge=1, le=64)] = 8
    """At most this many decodes in one model call (1: one at a time, no batching)."""


class TtsSettings(_Section, frozen=True):
    """Text to speech. An empty `voice` means the embedded Piper voice en_US-joe-medium."""

    voice: str = ""
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


class VadSettings(_Section, frozen=True):
    """Voice activity detection: webrtcvad gate, then Silero v6."""

    webrtc_mode: Annotated[int, Meta(ge=0, le=3)] = 2
    speech_threshold: Annotated[float, Meta(gt=0.0, lt=1.0)] = 0.5
    silence_threshold: Annotated[float, Meta(gt=0.0, lt=1.0)] = 0.35
    model: str = ""


class TurnModelSettings(_Section, frozen=True):
    """The audio end-of-turn model (Smart Turn v3.2, ONNX) asked at the caller's pauses. An
    empty `model` means the one `make venv` installs (`<venv>/share/voicenode/models/`); a
    node with `enabled` and no model file does not start (the error names this setting)."""

    enabled: bool = True
    model: str = ""
    threads: Annotated[int, Meta(ge=1, le=64)] = 1
    """onnxruntime intra-op threads for one run (runs are serial, batched across calls)."""


class AgentsSettings(_Section, frozen=True):
    """Agent files: embedded + `dir`; `strict`: a bad one stops the start (docs/operations.md)."""

    dir: str = ""
    default: str = "receptionist"
    strict: bool = False
    file_conflict: Literal["file-wins", "keep-api"] = "file-wins"


class WebRtcSettings(_Section, frozen=True):
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


class SipTrunkSettings(_Section, frozen=True):
    """Where outbound calls go: a carrier or PBX, with digest auth and optional registration."""

    uri: str = ""
    """The trunk's SIP URI, e.g. `sip:trunk.example.com:5060`; empty: dial URIs directly."""
    username: str = ""
    password: str = ""
    realm: str = ""
    """The realm the trunk challenges with; the credentials answer only that realm. Empty:
    the host of `uri`. `*` (answer any server that challenges) is refused."""
    register: bool = False
    register_expires_s: Annotated[int, Meta(ge=60, le=86_400)] = 300

    def __post_init__(self) -> None:
        if self.realm.strip() == "*":
            raise ValueError(
                "realm: `*` would hand the trunk's digest to any server that challenges;"
                " set the trunk's realm (empty: the host of `uri`)"
            )


class SipSettings(_Section, frozen=True):
    """The SIP user agent (pjsua2). Port 0 picks a free port."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: Port = 5060
    transports: list[Literal["udp", "tcp", "tls"]] = msgspec.field(
        default_factory=lambda: ["udp", "tcp"]
    )
    """UDP and TCP listen on `port`; TLS on `tls_port` ("tls" here, or `tls_cert_file` set)."""
    public_address: str = ""
    """The address put in Contact and SDP when it differs from `host` (NAT)."""
    tls_port: Port = 5061
    """TLS listens here when "tls" is in `transports` or `tls_cert_file` is set."""
    tls_cert_file: str = ""
    """The node's certificate (PEM); TLS needs it and `tls_key_file`. Both are checked when
    SIP starts: a missing, unreadable or mismatched file stops the node, naming the key."""
    tls_key_file: str = ""
    tls_ca_file: str = ""
    """CA certificates (PEM) to verify peers with; optional."""
    codecs: list[Literal["PCMU", "PCMA", "G722"]] = msgspec.field(
        default_factory=lambda: ["PCMU", "PCMA", "G722"]
    )
    """Offered and accepted in this order of preference."""
    rtp_port: Port = 20_000
    rtp_port_range: Annotated[int, Meta(ge=2, le=60_000)] = 10_000
    session_expires_s: Annotated[int, Meta(ge=90, le=86_400)] = 1800
    rtp_timeout_s: Annotated[float, Meta(ge=0, le=3600)] = 60.0
    """Hang up a call whose caller sent no audio this long, media active (a vanished caller)."""
    media_quality: Annotated[int, Meta(ge=1, le=10)] = 4
    """pjmedia's resampling quality (8 kHz codecs <-> the 16 kHz bridge): 4 uses the small
    filter, half the media CPU of pjmedia's default 8 (large filter), transcripts unchanged."""
    trusted_proxies: list[str] = msgspec.field(default_factory=list)  # whose tenant_header counts
    tenant_header: str = "X-Voicenode-Tenant"
    allowed_sources: list[str] = msgspec.field(default_factory=list)
    """Addresses (IPs or CIDRs) whose INVITEs the node takes (Kamailio's, the trunk's); an
    INVITE from anywhere else gets 403. Empty: any source (fine on 127.0.0.1; list the proxy
    when the port is reachable from elsewhere)."""
    trace_file: str = ""
    """Write every SIP message and pjsua2's debug log here (contains numbers: debugging only)."""
    log_level: Literal["error", "warning", "info", "debug"] = "error"
    """pjlib's own verbosity; its lines go to the `pjsip` logger (which `node.log_level` gates)."""
    trunk: SipTrunkSettings = msgspec.field(default_factory=SipTrunkSettings)

    def __post_init__(self) -> None:
        check_networks("allowed_sources", self.allowed_sources)
        check_networks("trusted_proxies", self.trusted_proxies)


def check_networks(key: str, entries: list[str] | tuple[str, ...]) -> None:
    """Each entry is an IP address or a CIDR network."""
    for entry in entries:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ValueError(f"{key}: {entry!r} is not an IP address or CIDR network") from None


def _check_agent_ref(key: str, value: str) -> None:
    tenant, _, agent = value.partition("/")
    if not tenant or not agent or "/" in agent:
        raise ValueError(f"{key}: {value!r} is not `tenant/agent`")


class AudioSocketSettings(_Section, frozen=True):
    """Asterisk AudioSocket calls (dialplan `AudioSocket(UUID,HOST:PORT)`). Port 0: a free port.

    The call's UUID picks who answers: a call this node originated through AMI, else the
    longest matching prefix in `routes`, else `default_agent`."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: Port = 9092
    default_agent: str = "demo/receptionist"
    """`tenant/agent` answering UUIDs the node does not know; empty: they get the error kind."""
    routes: dict[str, str] = msgspec.field(default_factory=dict)
    """UUID prefix (hex digits, dashes ignored, e.g. "00000001") -> `tenant/agent`."""
    uuid_timeout_s: Annotated[float, Meta(gt=0, le=60)] = 5.0
    """A connection that has not sent its UUID by then is closed."""
    inbound_buffer_frames: Annotated[int, Meta(ge=5, le=500)] = 50
    outbound_buffer_frames: Annotated[int, Meta(ge=2, le=500)] = 10
    allowed_sources: list[str] = msgspec.field(default_factory=list)
    """Addresses (IPs or CIDRs) that may connect (Asterisk's); a connection from anywhere else
    is closed at accept, before it may send a UUID. Empty: any source."""

    def __post_init__(self) -> None:
        check_networks("allowed_sources", self.allowed_sources)
        if self.default_agent:
            _check_agent_ref("default_agent", self.default_agent)
        for prefix, target in self.routes.items():
            digits = prefix.replace("-", "").lower()
            if not digits or len(digits) > 32 or any(c not in "0123456789abcdef" for c in digits):
                raise ValueError(f"routes: {prefix!r} is not a UUID prefix (hex digits)")
            _check_agent_ref(f"routes.{prefix}", target)


class AmiSettings(_Section, frozen=True):
    """Asterisk Manager Interface (call control for AudioSocket calls); empty `host`: off.

    Set the secret with VOICENODE_AMI__SECRET rather than in a file; it is never logged."""

    host: str = ""
    port: Port = 5038
    username: str = ""
    secret: str = ""
    originate_channel: str = "PJSIP/{to}@trunk"
    """The channel an outbound call dials; `{to}` is the number or URI user asked for."""
    originate_context: str = "voicenode-outbound"
    """Where the answered channel goes: its dialplan runs `AudioSocket(${VOICENODE_UUID},...)`."""
    originate_exten: str = "s"
    originate_timeout_s: Annotated[float, Meta(gt=0, le=600)] = 30.0
    caller_id: str = ""
    transfer_context: str = "voicenode-transfer"
    """Transfers Redirect the channel here, with the target in ${VOICENODE_TRANSFER_TARGET}."""
    audiosocket_address: str = ""
    """`HOST:PORT` Asterisk connects to, passed as ${VOICENODE_AUDIOSOCKET} to originated
    calls; empty: `audiosocket.host:audiosocket.port`."""
    connect_timeout_s: Annotated[float, Meta(gt=0, le=60)] = 5.0
    action_timeout_s: Annotated[float, Meta(gt=0, le=60)] = 10.0
    backoff_initial_s: Annotated[float, Meta(gt=0, le=60)] = 0.5
    backoff_max_s: Annotated[float, Meta(gt=0, le=3600)] = 30.0


_PREFIX = Annotated[str, Meta(pattern=r"^\+?[0-9]{1,15}$")]
_DOMAIN = Annotated[str, Meta(pattern=r"^(\*\.)?[A-Za-z0-9.:\[\]-]{1,253}$")]
_EXTENSION = Annotated[str, Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
_REFUSED_PREFIXES = (
    # NANP premium rate, then NANP codes outside the US and Canada (Caribbean, Atlantic):
    # billed as international, the classic targets of toll fraud.
    *("+1900", "+1976"),
    *(f"+1{a}" for a in "242 246 264 268 284 345 441 473 649 658 664 721 758 767".split()),
    *(f"+1{a}" for a in "784 809 829 849 868 869 876".split()),
    # International access codes, should a SIP URI's user spell a number that way.
    *("00", "011"),
)


class DialPlanOverride(_Section, frozen=True):
    """One tenant's dial plan: each field set replaces the node's `[dialplan]` value."""

    allowed_prefixes: tuple[_PREFIX, ...] | None = None
    refused_prefixes: tuple[_PREFIX, ...] | None = None
    allowed_domains: tuple[_DOMAIN, ...] | None = None
    extensions: tuple[_EXTENSION, ...] | None = None
    calls_per_minute: Annotated[int, Meta(ge=0, le=100_000)] | None = None


class DialPlanSettings(_Section, frozen=True):
    """Where outbound calls and transfers may go (`media.dialplan`), set by the operator.

    A number (E.164) must start with one of `allowed_prefixes` and with none of
    `refused_prefixes`; a SIP URI's host must be in `allowed_domains` (`*.example.com`: its
    subdomains), and a number as its user obeys the number rules too; an extension or queue
    name must be listed in `extensions`. `tenants.<id>` overrides any of these per tenant."""

    allowed_prefixes: tuple[_PREFIX, ...] = ()
    """E.164 prefixes that may be dialled (`+1`, `+4420`); empty: no number at all."""
    refused_prefixes: tuple[_PREFIX, ...] = _REFUSED_PREFIXES
    """Refused even inside an allowed prefix: premium rate and high-fraud ranges."""
    allowed_domains: tuple[_DOMAIN, ...] = ()
    """SIP URI hosts calls and transfers may go to; empty: no SIP URI."""
    extensions: tuple[_EXTENSION, ...] = ()
    """PBX extensions and queues (the Asterisk transfer context's names) that may be used."""
    calls_per_minute: Annotated[int, Meta(ge=0, le=100_000)] = 10
    """Outbound calls (`POST /v1/calls`) one tenant may start in any 60 s; 0: none."""
    tenants: dict[str, DialPlanOverride] = msgspec.field(default_factory=dict)
    """Per-tenant overrides, by tenant id."""


class StoreSettings(_Section, frozen=True):
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


class AnalyticsSettings(_Section, frozen=True):
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
    clickhouse: ClickHouseSettings = msgspec.field(default_factory=ClickHouseSettings)


class Settings(_Section, frozen=True):
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
