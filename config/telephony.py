"""The node's telephony settings: SIP (pjsua2) and its trunk, Asterisk AudioSocket and AMI, and
the dial plan (where outbound calls may go). Sections of `config.schema.Settings`."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from config.section import Port, Section


class SipTrunkSettings(Section, frozen=True):
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


class SipSettings(Section, frozen=True):
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


class AudioSocketSettings(Section, frozen=True):
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


class AmiSettings(Section, frozen=True):
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


class DialPlanOverride(Section, frozen=True):
    """One tenant's dial plan: each field set replaces the node's `[dialplan]` value."""

    allowed_prefixes: tuple[_PREFIX, ...] | None = None
    refused_prefixes: tuple[_PREFIX, ...] | None = None
    allowed_domains: tuple[_DOMAIN, ...] | None = None
    extensions: tuple[_EXTENSION, ...] | None = None
    calls_per_minute: Annotated[int, Meta(ge=0, le=100_000)] | None = None


class DialPlanSettings(Section, frozen=True):
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
