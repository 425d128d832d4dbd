"""The node's SIP user agent: pjsua2 on one owned thread, UDP/TCP (and TLS) transports, codecs,
inbound INVITE routing and outbound calls.

Inbound: pjsua2 sends 100 Trying itself; the INVITE (request-URI user, headers, source
address) goes to the owner's `route` coroutine, which answers `Accept` (the call is answered
200 and handed to `Accept.start`) or `Reject` (a final status, e.g. 404 or 503 with
Retry-After). OPTIONS is answered by pjsua2: 200, or 503 once `refuse_options()` (the node
drains; the pjsua2 build's patch 0002 adds the status). Outbound: `dial(uri, info)` sends an INVITE
through the trunk account (digest auth, optional registration) or directly.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import pjsua2 as pj

from config.loader import ConfigError
from config.schema import SipSettings
from media.call import CallInfo
from sip import pjlog
from sip.calls import PjCall, PjCalls, SipCall, op
from sip.lifetime import LIFETIMES
from sip.media_port import FramePort, SipAudio
from sip.message import SipRequest, parse_request, source_host
from sip.thread import SipThread, SipThreadError, release_frames

log = logging.getLogger(__name__)

T = TypeVar("T")

CODEC_IDS = {"PCMU": "PCMU/8000/1", "PCMA": "PCMA/8000/1", "G722": "G722/16000/1"}


def call_capacity() -> int:
    """Concurrent calls pjsua2 can hold in this process: the `PJSUA_MAX_CALLS` it was built
    with (the default of `UaConfig.maxCalls`, which cannot go higher). The node's own
    admission (`node.max_calls`, engine load) refuses calls before this limit; past it pjsua2
    answers 486 by itself (`onRejectedIncomingCall`)."""
    return int(pj.UaConfig().maxCalls)


_ENDPOINT = threading.Lock()
"""Held while this process has a pjsua2 Endpoint (from `_setup` to the end of `_teardown`)."""


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


class IncomingInvite(msgspec.Struct, frozen=True):
    """What the node routes an inbound call on."""

    request: SipRequest
    source: str
    """The address the INVITE came from (the proxy's, behind Kamailio)."""

    @property
    def number(self) -> str:
        return self.request.user


class Accept(msgspec.Struct, frozen=True):
    info: CallInfo
    start: Callable[[SipCall], None]
    """Called in the event loop once 200 OK is sent, with the answered call."""
    abandon: Callable[[], None]
    """Called instead when the caller hung up before the answer."""


class Reject(msgspec.Struct, frozen=True):
    status: int
    reason: str = ""
    headers: dict[str, str] = {}


Route = Callable[[IncomingInvite], Awaitable[Accept | Reject]]


class _Account(pj.Account):  # type: ignore[misc]
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


class _Endpoint(pj.Endpoint):  # type: ignore[misc]
    def onRejectedIncomingCall(self, prm: Any) -> None:  # noqa: N802
        """pjsua2 refused an INVITE before the node saw it: malformed, unacceptable offer
        (488), or more calls at once than pjsua2 was built for (486, "too many calls")."""
        log.info(
            "sip: INVITE refused by pjsua2",
            extra={"status": int(prm.statusCode), "reason": str(prm.reason)},
        )


PJ_LOG_LEVELS = {"error": 1, "warning": 2, "info": 3, "debug": 5}
"""`sip.log_level` as pjlib's verbosity (5: trace, what pjsua2's debug output needs)."""

_PORT_PICKS = 20
"""Tries at a UDP+TCP port pair when the kernel picks the port."""


class UserAgent:
    """pjsua2, owned: `start()`, `dial()`, `stop()`; inbound calls go to `route`."""

    def __init__(self, settings: SipSettings, route: Route) -> None:
        self.settings = settings
        self._route = route
        self._thread = SipThread("sip")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._endpoint: Any = None
        self._account: _Account | None = None
        self._trunk: _Account | None = None
        self._pjcalls = PjCalls()
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0
        self.tls_port = 0
        self._tls = False
        self._rtp_watch: asyncio.Task[None] | None = None
        self._holds_endpoint = False
        """This user agent holds the process's one pjsua2 Endpoint (`_ENDPOINT`)."""
        self._retiring: list[FramePort] = []
        """Frame ports of disconnected calls waiting to leave the bridge (SIP thread)."""
        self.rtp_watch_interval_s = 1.0

    # -- lifecycle ----------------------------------------------------------------------
    async def start(self) -> None:
        # SipSettingsError before pjsua2 starts (reading the files off the event loop).
        self._tls = await asyncio.to_thread(tls_enabled, self.settings)
        self._loop = asyncio.get_running_loop()
        try:
            await asyncio.to_thread(self._thread.start, self._setup)
        except pj.Error as exc:
            s = self.settings
            raise OSError(f"SIP cannot start on {s.host}:{s.port}: {exc.reason}") from exc
        if self.settings.rtp_timeout_s > 0:
            self._rtp_watch = asyncio.create_task(self._watch_rtp(), name="sip-rtp-watch")
        log.info(
            "sip listening",
            extra={"host": self.settings.host, "port": self.port, "tls_port": self.tls_port},
        )

    async def stop(self) -> None:
        if self._rtp_watch is not None:
            self._rtp_watch.cancel()
            await asyncio.gather(self._rtp_watch, return_exceptions=True)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks))
        await asyncio.to_thread(self._thread.stop, self._teardown)
        if self._thread.ended and self._holds_endpoint:
            # The thread has ended, and with it the poll's reference to the endpoint: the C++
            # Endpoint is gone, so another user agent may make one.
            self._holds_endpoint = False
            _ENDPOINT.release()

    async def _watch_rtp(self) -> None:
        """Hang up the calls whose caller sent no RTP for `sip.rtp_timeout_s` (a caller that
        vanished without a BYE); checked every `rtp_watch_interval_s` on the SIP thread."""
        while True:
            await asyncio.sleep(self.rtp_watch_interval_s)
            try:
                await self._thread.call(self._hang_up_silent)
            except SipThreadError:
                return

    def _hang_up_silent(self) -> None:
        limit, now = self.settings.rtp_timeout_s, time.monotonic()
        for key in self._pjcalls.keys():
            pjcall = self._pjcalls.get(key)
            if pjcall is None:
                continue
            try:
                if pjcall.rtp_silent_s(now) < limit:
                    continue
                log.info("sip: no RTP from the caller, hanging up", extra={"timeout_s": limit})
                pjcall.hangup(op())
            except pj.Error as exc:
                log.info("sip: RTP check failed", extra={"error": exc.reason})

    def refuse_options(self, status: int = 503) -> None:
        """Answer OPTIONS `status` from now on (a proxy's probe takes the node out of
        rotation); a no-op once the SIP thread has stopped."""

        def refuse() -> None:
            if self._endpoint is not None:
                self._endpoint.setOptionsStatus(status)

        try:
            self._thread.submit(refuse)
        except SipThreadError:
            pass

    async def call_count(self) -> int:
        """pjsua2 calls still held (answered, ringing or not yet released)."""
        return await self._thread.call(lambda: len(self._pjcalls))

    async def media_ports(self) -> int:
        """Ports on the conference bridge (each live call adds its stream and frame port)."""
        return await self._thread.call(lambda: int(self._endpoint.mediaActivePorts()))

    def _setup(self) -> Callable[[int], object]:
        # pjsua2 allows one Endpoint per process, and a second one aborts it (the C++
        # constructor throws out of SWIG): refuse before making one.
        if not _ENDPOINT.acquire(blocking=False):
            raise SipThreadError("another SIP user agent is running in this process")
        self._holds_endpoint = True
        try:
            ep = _Endpoint()
            ep.libCreate()
        except BaseException:
            self._holds_endpoint = False
            _ENDPOINT.release()
            raise
        self._endpoint = ep
        try:
            return self._configure(ep)
        except BaseException as exc:
            # A failed start must not leave an endpoint behind: not even in the exception's
            # traceback, whose frames (`_configure(ep)`) would keep it alive after the guard
            # is released.
            self._account = self._trunk = None
            self._endpoint = None
            ep.libDestroy()
            release_frames(exc)
            del ep
            self._holds_endpoint = False
            _ENDPOINT.release()  # (no poll was handed out: `ep` was the last reference)
            raise

    def _configure(self, ep: Any) -> Callable[[int], object]:
        s = self.settings
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
        ep.libInit(cfg)
        self._create_transports(ep)
        if self._tls:
            tc = pj.TransportConfig()
            tc.boundAddress = s.host
            tc.port = s.tls_port
            tc.tlsConfig.certFile = s.tls_cert_file
            tc.tlsConfig.privKeyFile = s.tls_key_file
            tc.tlsConfig.CaListFile = s.tls_ca_file
            tid = ep.transportCreate(pj.PJSIP_TRANSPORT_TLS, tc)
            self.tls_port = int(ep.transportGetInfo(tid).localName.rsplit(":", 1)[1])
        ep.audDevManager().setNullDev()
        ep.libStart()
        self._set_codecs(ep)
        self._account = _Account(self._on_incoming)
        LIFETIMES.track(self._account, threading.get_ident())
        port = self.port or self.tls_port  # TLS alone: its port
        self._account.create(self._account_config(f"sip:voicenode@{s.host}:{port}"))
        if s.trunk.uri:
            self._trunk = _Account(self._on_incoming)
            LIFETIMES.track(self._trunk, threading.get_ident())
            self._trunk.create(self._trunk_config())
        return ep.libHandleEvents  # type: ignore[no-any-return]

    def _create_transports(self, ep: Any) -> None:
        """UDP and TCP on one port. With `sip.port = 0` (tests) the kernel picks UDP's port,
        which a TCP socket elsewhere may already hold: then both are closed and the pair is
        picked again (a few tries), so a free port is never reported as "in use"."""
        s = self.settings
        kinds = [k for k in s.transports if k != "tls"]
        tries = _PORT_PICKS if s.port == 0 and len(kinds) > 1 else 1
        for attempt in range(1, tries + 1):
            made: list[int] = []
            self.port = 0
            try:
                for kind in kinds:
                    tc = pj.TransportConfig()
                    tc.boundAddress = s.host
                    tc.port = self.port or s.port
                    if s.public_address:
                        tc.publicAddress = s.public_address
                    ttype = pj.PJSIP_TRANSPORT_UDP if kind == "udp" else pj.PJSIP_TRANSPORT_TCP
                    made.append(ep.transportCreate(ttype, tc))
                    if not self.port:
                        self.port = int(ep.transportGetInfo(made[-1]).localName.rsplit(":", 1)[1])
                return
            except pj.Error as exc:
                if attempt == tries or "in use" not in str(exc.reason):
                    raise
                for tid in made:
                    ep.transportClose(tid)

    def _set_codecs(self, ep: Any) -> None:
        wanted = [CODEC_IDS[name] for name in self.settings.codecs]
        for codec in ep.codecEnum2():
            priority = 255 - wanted.index(codec.codecId) if codec.codecId in wanted else 0
            ep.codecSetPriority(codec.codecId, priority)

    def _account_config(self, id_uri: str) -> Any:
        s = self.settings
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

    def _trunk_config(self) -> Any:
        trunk = self.settings.trunk
        host = trunk.uri.split(":", 1)[1] if ":" in trunk.uri else trunk.uri
        user = trunk.username or "voicenode"
        acfg = self._account_config(f"sip:{user}@{host.split(';')[0]}")
        if trunk.register:
            acfg.regConfig.registrarUri = trunk.uri
            acfg.regConfig.timeoutSec = trunk.register_expires_s
        acfg.regConfig.registerOnAdd = trunk.register
        if trunk.username:  # answers the trunk's realm only, never another server's challenge
            realm = trunk.realm or host.split(";")[0].rsplit(":", 1)[0].strip("[]")
            cred = pj.AuthCredInfo("digest", realm, trunk.username, 0, trunk.password)
            acfg.sipConfig.authCreds.append(cred)
        if not trunk.register:
            acfg.sipConfig.proxies.append(
                trunk.uri + ";lr" if ";lr" not in trunk.uri else trunk.uri
            )
        return acfg

    def _teardown(self) -> None:
        """Stop pjsua2 in the order `sip.lifetime` gives: calls hung up and released (their
        ports retired), accounts shut down, then `libDestroy()` last."""
        ep = self._endpoint
        if ep is None:
            return
        ep.hangupAllCalls()
        for _ in range(50):  # let the BYEs go out and the calls disconnect
            if not self._pjcalls:
                break
            ep.libHandleEvents(10)
        for key in self._pjcalls.keys():
            self._pjcalls.drop(key)
        self._retire_ports()
        accounts = [a for a in (self._trunk, self._account) if a is not None]
        self._trunk = self._account = None
        while accounts:
            accounts.pop().shutdown()  # and the last reference goes, here
        ep.libDestroy()
        self._endpoint = None
        del ep  # the last reference is the poll's, dropped when the thread ends (see `stop`)
        LIFETIMES.endpoint_stopped(threading.get_ident())

    # -- inbound (SIP thread, then the loop) ----------------------------------------------
    def _on_incoming(self, prm: Any) -> None:
        """pjsua2's onIncomingCall (SIP thread, inside the callback): keep the call and route
        it. No final answer is sent from inside the callback: refusals go out from a job on
        the next poll (`_refuse`), like every answer the event loop decides."""
        account = self._account if self._account is not None else self._trunk
        pjcall = PjCall(account, threading.get_ident(), prm.callId)
        key = self._keep(pjcall)
        try:
            invite = IncomingInvite(
                request=parse_request(prm.rdata.wholeMsg), source=source_host(prm.rdata.srcAddress)
            )
            invite.number  # noqa: B018  (the dialled number must be readable to route)
        except ValueError as exc:
            log.info("sip: unroutable INVITE refused", extra={"error": str(exc)})
            self._refuse(key, Reject(400, "Bad Request"))
            return
        loop = self._loop
        if loop is None:
            self._refuse(key, Reject(503, "Service Unavailable"))
            return
        loop.call_soon_threadsafe(self._spawn, self._decide(key, invite))

    def _refuse(self, key: int, reject: Reject) -> None:
        """Answer the call `reject` from a SIP-thread job (any thread may call this)."""

        def refuse() -> None:
            pjcall = self._pjcalls.get(key)
            if pjcall is None or pjcall.disconnected:
                return
            try:
                pjcall.answer(op(reject.status, reject.reason, reject.headers))
            except pj.Error as exc:
                log.info("sip: refusal not sent", extra={"error": exc.reason})

        self._thread.submit(refuse)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _decide(self, key: int, invite: IncomingInvite) -> None:
        try:
            decision = await self._route(invite)
        except Exception:
            log.exception("sip: routing failed")
            decision = Reject(500, "Server Internal Error")
        if isinstance(decision, Reject):
            try:
                self._refuse(key, decision)
            except SipThreadError:
                pass  # stopping: the teardown hangs the call up
            return
        assert self._loop is not None
        loop, info = self._loop, decision.info

        def answer() -> SipCall | None:
            pjcall = self._pjcalls.get(key)
            if pjcall is None or pjcall.disconnected:
                return None
            call = SipCall(info, pjcall, self._pjcalls, self._thread, loop, SipAudio(loop))
            pjcall.answer(op(200))
            return call

        call = await self._on_thread(answer)
        if call is None:
            decision.abandon()
        else:
            decision.start(call)

    async def _on_thread(self, job: Callable[[], T]) -> T | None:
        """Run a pjsua2 job on the SIP thread; a pjsua2 error is logged and gives None."""
        try:
            return await self._thread.call(job)
        except pj.Error as exc:
            log.info("sip: call operation failed", extra={"error": exc.reason})
            return None

    # -- outbound -------------------------------------------------------------------------
    async def dial(
        self, uri: str, info: CallInfo, headers: dict[str, str] | None = None
    ) -> SipCall:
        """Send an INVITE to `uri`; the returned call's `wait_answered()` tells the outcome."""
        assert self._loop is not None
        loop = self._loop
        audio = SipAudio(loop)

        def make() -> SipCall:
            account = self._trunk if self._trunk is not None else self._account
            pjcall = PjCall(account, threading.get_ident())
            self._keep(pjcall)
            call = SipCall(info, pjcall, self._pjcalls, self._thread, loop, audio)
            try:
                pjcall.makeCall(uri, op(headers=headers))
            except pj.Error:
                self._pjcalls.drop(pjcall.key)
                raise
            return call

        try:
            return await self._thread.call(make)
        except pj.Error as exc:
            raise ValueError(f"cannot call {uri!r}: {exc.reason}") from exc

    # -- the SIP thread's registry: pjsua2 objects must stay referenced until disconnected --
    def _keep(self, pjcall: PjCall) -> int:
        pjcall.on_disconnected = self._forget
        return self._pjcalls.add(pjcall)

    def _forget(self, pjcall: PjCall) -> None:
        """The call disconnected (inside its callback): the registry lets it go now; its
        port is retired by a job after the callback (or by the teardown, before libDestroy)."""
        port = self._pjcalls.forget(pjcall.key)
        if port is None:
            return
        self._retiring.append(port)
        try:
            self._thread.submit(self._retire_ports)
        except SipThreadError:
            pass  # stopping: the teardown retires it

    def _retire_ports(self) -> None:
        """Retire the ports of disconnected calls (SIP thread, outside callbacks)."""
        while self._retiring:
            self._retiring.pop().retire()
