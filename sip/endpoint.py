"""pjsua2's endpoint for the node's user agent, as plain functions of `SipSettings`: the library
configuration, the transports (UDP/TCP on one port, TLS), codec priorities, the account and trunk
configurations, TLS file checks, and the pjsua2 subclasses whose callbacks the user agent takes
(`Account`, `Endpoint`). `sip.ua.UserAgent` owns the thread these run on and the objects' lifetimes.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pjsua2 as pj

from config.loader import ConfigError
from config.schema import SipSettings
from sip import pjlog

log = logging.getLogger(__name__)

CODEC_IDS = {"PCMU": "PCMU/8000/1", "PCMA": "PCMA/8000/1", "G722": "G722/16000/1"}


def call_capacity() -> int:
    """Concurrent calls pjsua2 can hold in this process: the `PJSUA_MAX_CALLS` it was built
    with (the default of `UaConfig.maxCalls`, which cannot go higher). The node's own
    admission (`node.max_calls`, engine load) refuses calls before this limit; past it pjsua2
    answers 486 by itself (`onRejectedIncomingCall`)."""
    return int(pj.UaConfig().maxCalls)


class SipSettingsError(OSError, ConfigError):
    """A `[sip]` setting the user agent cannot start with (a TLS file missing, unreadable or
    not what it should be); the message names the key. An OSError too, like any other
    reason the node cannot listen."""


def tls_enabled(s: SipSettings) -> bool:
    """Whether TLS listens: "tls" in `transports`, or a certificate configured. Checks the
    files as OpenSSL will read them (pjsip only loads them at the first TLS connection, so a
    bad path would otherwise go unnoticed); SipSettingsError names the key at fault."""
    if "tls" not in s.transports and not s.tls_cert_file:
        return False
    for key in ("tls_cert_file", "tls_key_file"):
        if not getattr(s, key):
            raise SipSettingsError(f"sip.{key}: required for TLS (a PEM file path)")
    texts: dict[str, bytes] = {}
    for key in ("tls_cert_file", "tls_key_file", "tls_ca_file"):
        path = str(getattr(s, key))
        if path:
            try:
                texts[key] = Path(path).read_bytes()
            except OSError as exc:
                raise SipSettingsError(
                    f"sip.{key}: cannot read {path!r}: {exc.strerror or exc}"
                ) from exc
    if b"-----BEGIN CERTIFICATE-----" not in texts["tls_cert_file"]:
        raise SipSettingsError(f"sip.tls_cert_file: no PEM certificate in {s.tls_cert_file!r}")
    if b"PRIVATE KEY-----" not in texts["tls_key_file"]:
        raise SipSettingsError(f"sip.tls_key_file: no PEM private key in {s.tls_key_file!r}")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(s.tls_cert_file, s.tls_key_file)
    except ssl.SSLError as exc:
        raise SipSettingsError(
            f"sip.tls_key_file: {s.tls_key_file!r} is not the key of sip.tls_cert_file "
            f"{s.tls_cert_file!r}, or either is malformed ({exc.reason or exc})"
        ) from exc
    if s.tls_ca_file:
        try:
            context.load_verify_locations(s.tls_ca_file)
        except ssl.SSLError as exc:
            raise SipSettingsError(
                f"sip.tls_ca_file: no PEM CA certificates in {s.tls_ca_file!r} ({exc.reason})"
            ) from exc
    return True


class Account(pj.Account):  # type: ignore[misc]
    def __init__(self, on_incoming: Callable[[Any], None]) -> None:
        super().__init__()
        self._on_incoming = on_incoming

    def onIncomingCall(self, prm: Any) -> None:  # noqa: N802
        self._on_incoming(prm)

    def onRegState(self, prm: Any) -> None:  # noqa: N802
        """The trunk's REGISTER outcome (SIP thread); logged without any credential."""
        status, reason, expires = int(prm.code), str(prm.reason), int(prm.expiration)
        if 200 <= status < 300:
            if expires > 0:
                log.info("sip trunk registered", extra={"expires_s": expires})
            else:
                log.info("sip trunk unregistered")
        else:
            log.warning("sip trunk registration failed", extra={"status": status, "reason": reason})


class Endpoint(pj.Endpoint):  # type: ignore[misc]
    def onRejectedIncomingCall(self, prm: Any) -> None:  # noqa: N802
        """pjsua2 refused an INVITE before the node saw it: malformed, unacceptable offer
        (488), or more calls at once than pjsua2 was built for (486, "too many calls")."""
        log.info(
            "sip: INVITE refused by pjsua2",
            extra={"status": int(prm.statusCode), "reason": str(prm.reason)},
        )


PJ_LOG_LEVELS = {"error": 1, "warning": 2, "info": 3, "debug": 5}
"""`sip.log_level` as pjlib's verbosity (5: trace, what pjsua2's debug output needs)."""

PORT_PICKS = 20
"""Tries at a UDP+TCP port pair when the kernel picks the port."""


def ep_config(s: SipSettings) -> Any:
    """The library configuration: pjsua2 polled from the owner's thread, no sound device, 16 kHz
    20 ms frames on the bridge, pjsip's log lines into the node's log."""
    cfg = pj.EpConfig()
    cfg.uaConfig.threadCnt = 0
    cfg.uaConfig.mainThreadOnly = False
    cfg.uaConfig.userAgent = "voicenode"
    cfg.uaConfig.maxCalls = call_capacity()
    cfg.logConfig.level = cfg.logConfig.consoleLevel = PJ_LOG_LEVELS[s.log_level]
    pjlog.install(cfg)  # pjsip's lines go to the node's log as records
    if s.trace_file:  # every SIP message and pjsua2's debug log, for troubleshooting
        cfg.logConfig.level = 5
        cfg.logConfig.msgLogging = True
        cfg.logConfig.filename = s.trace_file
        cfg.logConfig.decor = int(pj.LogConfig().decor)  # timestamps in the trace file
    cfg.medConfig.clockRate = 16_000
    cfg.medConfig.sndClockRate = 16_000
    cfg.medConfig.audioFramePtime = 20
    cfg.medConfig.channelCount = 1
    cfg.medConfig.noVad = True
    cfg.medConfig.ecTailLen = 0
    cfg.medConfig.quality = s.media_quality
    return cfg


def create_transports(ep: Any, s: SipSettings) -> int:
    """UDP and TCP on one port, which is returned. With `sip.port = 0` (tests) the kernel picks
    UDP's port, which a TCP socket elsewhere may already hold: then both are closed and the pair
    is picked again (a few tries), so a free port is never reported as "in use"."""
    kinds = [k for k in s.transports if k != "tls"]
    tries = PORT_PICKS if s.port == 0 and len(kinds) > 1 else 1
    for attempt in range(1, tries + 1):
        made: list[int] = []
        port = 0
        try:
            for kind in kinds:
                tc = pj.TransportConfig()
                tc.boundAddress = s.host
                tc.port = port or s.port
                if s.public_address:
                    tc.publicAddress = s.public_address
                ttype = pj.PJSIP_TRANSPORT_UDP if kind == "udp" else pj.PJSIP_TRANSPORT_TCP
                made.append(ep.transportCreate(ttype, tc))
                if not port:
                    port = int(ep.transportGetInfo(made[-1]).localName.rsplit(":", 1)[1])
            return port
        except pj.Error as exc:
            if attempt == tries or "in use" not in str(exc.reason):
                raise
            for tid in made:
                ep.transportClose(tid)
    return 0  # (no transport kinds: TLS alone)


def create_tls_transport(ep: Any, s: SipSettings) -> int:
    """The TLS listener (its files checked by `tls_enabled` first); returns its port."""
    tc = pj.TransportConfig()
    tc.boundAddress = s.host
    tc.port = s.tls_port
    tc.tlsConfig.certFile = s.tls_cert_file
    tc.tlsConfig.privKeyFile = s.tls_key_file
    tc.tlsConfig.CaListFile = s.tls_ca_file
    tid = ep.transportCreate(pj.PJSIP_TRANSPORT_TLS, tc)
    return int(ep.transportGetInfo(tid).localName.rsplit(":", 1)[1])


def set_codecs(ep: Any, codecs: Sequence[str]) -> None:
    """The configured codecs first, in order; every other codec off."""
    wanted = [CODEC_IDS[name] for name in codecs]
    for codec in ep.codecEnum2():
        priority = 255 - wanted.index(codec.codecId) if codec.codecId in wanted else 0
        ep.codecSetPriority(codec.codecId, priority)


def account_config(s: SipSettings, id_uri: str) -> Any:
    """An account at `id_uri`: session timers, the RTP port range, no NAT rewriting."""
    acfg = pj.AccountConfig()
    acfg.idUri = id_uri
    acfg.callConfig.timerUse = pj.PJSUA_SIP_TIMER_OPTIONAL
    acfg.callConfig.timerSessExpiresSec = s.session_expires_s
    acfg.callConfig.timerMinSESec = min(90, s.session_expires_s)
    acfg.mediaConfig.transportConfig.boundAddress = s.host
    acfg.mediaConfig.transportConfig.port = s.rtp_port
    acfg.mediaConfig.transportConfig.portRange = s.rtp_port_range
    if s.public_address:
        acfg.mediaConfig.transportConfig.publicAddress = s.public_address
    acfg.natConfig.sdpNatRewriteUse = 0
    acfg.natConfig.contactRewriteUse = 0
    acfg.natConfig.viaRewriteUse = 0
    return acfg


def trunk_config(s: SipSettings) -> Any:
    """The trunk account: digest credentials for its realm only, optional REGISTER, and the
    trunk as outbound proxy when not registering."""
    trunk = s.trunk
    host = trunk.uri.split(":", 1)[1] if ":" in trunk.uri else trunk.uri
    user = trunk.username or "voicenode"
    acfg = account_config(s, f"sip:{user}@{host.split(';')[0]}")
    if trunk.register:
        acfg.regConfig.registrarUri = trunk.uri
        acfg.regConfig.timeoutSec = trunk.register_expires_s
    acfg.regConfig.registerOnAdd = trunk.register
    if trunk.username:  # answers the trunk's realm only, never another server's challenge
        realm = trunk.realm or host.split(";")[0].rsplit(":", 1)[0].strip("[]")
        cred = pj.AuthCredInfo("digest", realm, trunk.username, 0, trunk.password)
        acfg.sipConfig.authCreds.append(cred)
    if not trunk.register:
        acfg.sipConfig.proxies.append(trunk.uri + ";lr" if ";lr" not in trunk.uri else trunk.uri)
    return acfg
