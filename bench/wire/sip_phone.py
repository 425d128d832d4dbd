"""The bench process's pjsua2 Endpoint, which places the SIP legs' calls (signalling only).

pjsua2 allows one Endpoint per process, and breaking that rule is not an exception one can
catch: constructing a second Endpoint while one exists throws PJ_EEXISTS from the C++
constructor, which SWIG does not translate, and the process aborts ("terminate called after
throwing an instance of 'pj::Error'"). `Endpoint.instance()` cannot tell safely either: once an
Endpoint has been destroyed it trips a pjlib assertion (also an abort). What does work is one
after the other: after `libDestroy()`, once the Python object is gone, a new Endpoint starts
cleanly (tests/sip creates one per test). So:
- every SIP leg in a process shares one `SipPhone` (`shared_phone()` starts it for the first
  leg and stops it after the last, so a later run starts a fresh one);
- the node under test must not run in the bench's process when SIP legs are used: its
  `UserAgent` holds its own Endpoint (`voicenode-bench --spawn` runs the node as a child
  process; tests that serve the node in-process run the SIP leg in a child process).

The phone runs on the node's own `SipThread` (pjsua2 with no threads of its own, every call
marshalled to one thread). Each call offers exactly one codec (the others get priority 0 for
that offer) and no session timers, and its SDP offer is rewritten on the way out
(`onCallSdpCreated`) to name the leg's own RTP socket. pjsua2 still creates its own transport
and stream for the call (an offer without them is not possible: `audioCount = 0` trips an
assertion in `pjmedia_endpt_create_base_sdp`, an abort), and that stream sends ~600 ms of
packets when it starts (pjmedia suspends VAD that long to open NAT bindings). The node follows
the first RTP source it hears, so without more it would send the start of its greeting to
pjsua2's port instead of the leg's (measured: the first ~800 ms). `medConfig.txDropPct = 100`
makes pjsua2's transports drop every RTP packet they would send (it only affects pjsua2's own
sockets), so the node hears the leg's socket only.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Final, Protocol

import pjsua2 as pj

from bench.wire.leg import LegError
from bench.wire.sip_rtp import move_audio
from sip.endpoint import CODEC_IDS
from sip.pjcall import op
from sip.thread import SipThread

log = logging.getLogger(__name__)

MAX_CALLS: Final = 32
"""Asked of pjsua; pjsua caps it at its compiled-in PJSUA_MAX_CALLS (512 in the node's own
build, deploy/pjsua2; 4 in the PyPI wheels, where a fifth call fails with PJ_ETOOMANY)."""
PJ_ETOOMANY: Final = 70010
TEARDOWN_POLLS: Final = 50
"""At stop, poll this many times (10 ms each) for the BYEs to complete."""


class CallWatcher(Protocol):
    """What a leg hears about its call, in the event loop."""

    def answered(self) -> None: ...

    def media(self, remote_rtp: str, codec: str) -> None: ...

    def ended(self, status: int, reason: str) -> None: ...


class _CallerCall(pj.Call):  # type: ignore[misc]
    """One outgoing call; lives and dies on the SIP thread."""

    def __init__(
        self,
        account: Any,
        rtp: tuple[str, int],
        watcher: CallWatcher,
        loop: asyncio.AbstractEventLoop,
        on_gone: Callable[[_CallerCall], None],
    ) -> None:
        super().__init__(account)
        self.key = 0
        self.gone = False
        self._rtp = rtp
        self._watcher = watcher
        self._loop = loop
        self._on_gone = on_gone

    def _tell(self, fn: Callable[..., object], *args: object) -> None:
        try:
            self._loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:
            pass  # the loop has closed

    def onCallSdpCreated(self, prm: Any) -> None:  # noqa: N802
        try:
            prm.sdp.wholeSdp = move_audio(prm.sdp.wholeSdp, *self._rtp)
        except Exception:  # never let an exception into pjsua2's callback
            log.exception("bench sip: could not point the SDP at the leg's RTP socket")

    def onCallState(self, prm: Any) -> None:  # noqa: N802
        info = self.getInfo()
        if info.state == pj.PJSIP_INV_STATE_CONFIRMED:
            self._tell(self._watcher.answered)
        elif info.state == pj.PJSIP_INV_STATE_DISCONNECTED and not self.gone:
            self.gone = True
            self._tell(self._watcher.ended, int(info.lastStatusCode), str(info.lastReason))
            self._on_gone(self)

    def onCallMediaState(self, prm: Any) -> None:  # noqa: N802
        info = self.getInfo()
        for index, media in enumerate(info.media):
            if media.type == pj.PJMEDIA_TYPE_AUDIO and media.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                try:
                    stream = self.getStreamInfo(index)
                except pj.Error as exc:
                    log.warning("bench sip: no stream info", extra={"error": exc.reason})
                    return
                self._tell(self._watcher.media, str(stream.remoteRtpAddress), str(stream.codecName))
                return


class SipPhone:
    """pjsua2 on its own thread with one UDP transport on `host` (a free port)."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.port = 0
        self._thread = SipThread("bench-sip")
        self._endpoint: Any = None
        self._account: Any = None
        self._calls: dict[int, _CallerCall] = {}
        self._next_key = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        try:
            await asyncio.to_thread(self._thread.start, self._setup)
        except pj.Error as exc:
            raise LegError(
                f"the bench's SIP phone cannot start on {self.host}: {exc.reason}"
            ) from exc
        log.info("bench sip phone started", extra={"host": self.host, "port": self.port})

    async def stop(self) -> None:
        await asyncio.to_thread(self._thread.stop, self._teardown)

    def _setup(self) -> Callable[[int], object]:
        ep = pj.Endpoint()
        ep.libCreate()
        self._endpoint = ep
        try:
            cfg = pj.EpConfig()
            cfg.uaConfig.threadCnt = 0
            cfg.uaConfig.mainThreadOnly = False
            cfg.uaConfig.maxCalls = MAX_CALLS
            cfg.uaConfig.userAgent = "voicenode-bench"
            cfg.logConfig.level = cfg.logConfig.consoleLevel = 1
            cfg.medConfig.txDropPct = 100  # pjsua2's own RTP never leaves (see the docstring)
            ep.libInit(cfg)
            transport = pj.TransportConfig()
            transport.boundAddress = self.host
            tid = ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, transport)
            self.port = int(ep.transportGetInfo(tid).localName.rsplit(":", 1)[1])
            ep.audDevManager().setNullDev()
            ep.libStart()
            account = pj.Account()
            acfg = pj.AccountConfig()
            acfg.idUri = f"sip:bench@{self.host}:{self.port}"
            acfg.callConfig.timerUse = pj.PJSUA_SIP_TIMER_INACTIVE
            acfg.mediaConfig.transportConfig.boundAddress = self.host
            acfg.mediaConfig.transportConfig.port = 0  # any free port (pjsua2 sends nothing)
            acfg.natConfig.sdpNatRewriteUse = acfg.natConfig.contactRewriteUse = 0
            account.create(acfg)
            self._account = account
        except BaseException:
            self._account = self._endpoint = None
            ep.libDestroy()  # one Endpoint per process: a failed start must not leave one
            raise
        return ep.libHandleEvents  # type: ignore[no-any-return]

    def _teardown(self) -> None:
        ep = self._endpoint
        if ep is None:
            return
        ep.hangupAllCalls()
        for _ in range(TEARDOWN_POLLS):
            if not self._calls:
                break
            ep.libHandleEvents(10)
        self._calls.clear()
        if self._account is not None:
            self._account.shutdown()
        self._account = None
        ep.libDestroy()
        self._endpoint = None  # the Endpoint object dies here, on this thread

    # -- calls ------------------------------------------------------------------------------
    async def dial(
        self, uri: str, codec: str, rtp: tuple[str, int], watcher: CallWatcher
    ) -> tuple[int, str]:
        """INVITE `uri` offering only `codec`, with audio to `rtp`; (key, SIP Call-ID)."""
        assert self._loop is not None
        loop, wanted = self._loop, CODEC_IDS[codec]

        def make() -> tuple[int, str]:
            for known in self._endpoint.codecEnum2():
                self._endpoint.codecSetPriority(
                    known.codecId, 255 if known.codecId == wanted else 0
                )
            call = _CallerCall(self._account, rtp, watcher, loop, self._forget)
            self._next_key += 1
            call.key = self._next_key
            self._calls[call.key] = call
            try:
                call.makeCall(uri, op())
            except pj.Error:
                self._calls.pop(call.key, None)
                raise
            return call.key, str(call.getInfo().callIdString)

        try:
            return await self._thread.call(make)
        except pj.Error as exc:
            if exc.status == PJ_ETOOMANY:
                raise ValueError(
                    f"cannot call {uri!r}: this process already holds as many SIP calls as its"
                    f" pjsua2 allows ({len(self._calls)}; PJSUA_MAX_CALLS in this build)"
                ) from exc
            raise ValueError(f"cannot call {uri!r}: {exc.reason}") from exc

    async def hangup(self, key: int) -> None:
        """Send BYE (or CANCEL before the answer) for the call, if it is still up."""

        def bye() -> None:
            call = self._calls.get(key)
            if call is not None and not call.gone and call.isActive():
                call.hangup(op())

        try:
            await self._thread.call(bye)
        except pj.Error as exc:
            log.info("bench sip hangup failed", extra={"error": exc.reason})

    def _forget(self, call: _CallerCall) -> None:
        # Dropped on the SIP thread after pjsua2's callback has returned.
        key = call.key
        self._thread.submit(lambda: self._calls.pop(key, None))


class _Shared:
    phone: SipPhone | None = None
    users = 0
    lock: asyncio.Lock | None = None
    loop: asyncio.AbstractEventLoop | None = None


@asynccontextmanager
async def shared_phone(host: str) -> AsyncIterator[SipPhone]:
    """The process's phone, started on `host` for the first user and stopped after the last.
    Legs opened while it runs share it (and its first user's `host`)."""
    loop = asyncio.get_running_loop()
    if _Shared.lock is None or _Shared.loop is not loop:
        if _Shared.users:
            raise RuntimeError("the bench's SIP phone is in use by another event loop")
        _Shared.lock, _Shared.loop = asyncio.Lock(), loop
    lock = _Shared.lock
    async with lock:
        if _Shared.phone is None:
            phone = SipPhone(host)
            await phone.start()
            _Shared.phone = phone
        _Shared.users += 1
        phone = _Shared.phone
    try:
        yield phone
    finally:
        async with lock:
            _Shared.users -= 1
            if _Shared.users == 0:
                _Shared.phone = None
                await phone.stop()
