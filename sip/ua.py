"""The node's SIP user agent: pjsua2 on one owned thread (its endpoint, transports, codecs and
accounts configured by `sip.endpoint`), inbound INVITE routing and outbound calls.

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
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import msgspec
import pjsua2 as pj

from config.schema import SipSettings
from core.tasks import OwnedTasks
from media.call import CallInfo
from sip.calls import SipCall
from sip.endpoint import (
    Account,
    Endpoint,
    account_config,
    create_tls_transport,
    create_transports,
    ep_config,
    set_codecs,
    tls_enabled,
    trunk_config,
)
from sip.lifetime import LIFETIMES
from sip.media_port import FramePort, SipAudio
from sip.message import SipRequest, parse_request, source_host
from sip.pjcall import PjCall, PjCalls, from_uri, op
from sip.thread import SipThread, SipThreadError, release_frames

log = logging.getLogger(__name__)

T = TypeVar("T")

_ENDPOINT = threading.Lock()
"""Held while this process has a pjsua2 Endpoint (from `_setup` to the end of `_teardown`)."""


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


class UserAgent:
    """pjsua2, owned: `start()`, `dial()`, `stop()`; inbound calls go to `route`."""

    def __init__(self, settings: SipSettings, route: Route) -> None:
        self.settings = settings
        self._route = route
        self._thread = SipThread("sip")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._endpoint: Any = None
        self._account: Account | None = None
        self._trunk: Account | None = None
        self._pjcalls = PjCalls()
        self._tasks = OwnedTasks("sip", log=log, failed="sip: routing task failed")
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
        await self._tasks.aclose()
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
            ep = Endpoint()
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
        ep.libInit(ep_config(s))
        self.port = create_transports(ep, s)
        if self._tls:
            self.tls_port = create_tls_transport(ep, s)
        ep.audDevManager().setNullDev()
        ep.libStart()
        set_codecs(ep, s.codecs)
        self._account = Account(self._on_incoming)
        LIFETIMES.track(self._account, threading.get_ident())
        port = self.port or self.tls_port  # TLS alone: its port
        self._account.create(account_config(s, f"sip:voicenode@{s.host}:{port}"))
        if s.trunk.uri:
            self._trunk = Account(self._on_incoming)
            LIFETIMES.track(self._trunk, threading.get_ident())
            self._trunk.create(trunk_config(s))
        return ep.libHandleEvents  # type: ignore[no-any-return]

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
        loop.call_soon_threadsafe(self._tasks.spawn, self._decide(key, invite), "sip-route")

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
        self,
        uri: str,
        info: CallInfo,
        headers: dict[str, str] | None = None,
        caller_id: str = "",
    ) -> SipCall:
        """Send an INVITE to `uri`; the returned call's `wait_answered()` tells the outcome.
        `caller_id` (checked by the caller: no characters that need quoting) is the From's
        user and display name, at the account's host; empty: the account's own From."""
        assert self._loop is not None
        loop = self._loop
        audio = SipAudio(loop)

        def make() -> SipCall:
            account = self._trunk if self._trunk is not None else self._account
            assert account is not None  # started
            local = from_uri(account.getInfo().uri, caller_id) if caller_id else ""
            pjcall = PjCall(account, threading.get_ident())
            self._keep(pjcall)
            call = SipCall(info, pjcall, self._pjcalls, self._thread, loop, audio)
            try:
                pjcall.makeCall(uri, op(headers=headers, local_uri=local))
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
