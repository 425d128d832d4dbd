"""One SIP call: the pjsua2 object on the SIP thread (`PjCall`) and its asyncio face (`SipCall`).

`PjCall` reacts to pjsua2 callbacks on the SIP thread: it attaches a `FramePort` to the
bridge when the audio stream is up, turns DTMF and disconnects into signals, and tracks
transfer progress. `SipCall` is what the node sees: the `Call` seam (hangup, REFER transfer,
RFC 4733 DTMF), the `SipAudio` transport, and `close()`; every pjsua2 call it makes is
marshalled onto the SIP thread.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from typing import Any

import pjsua2 as pj

from media.call import Call, CallControlError, CallInfo, CallSignal, Dtmf, RemoteHangup
from sip.lifetime import LIFETIMES
from sip.media_port import FramePort, SipAudio, port_format
from sip.sdp import prefer_local_codec
from sip.thread import SipThread

log = logging.getLogger(__name__)

DTMF_DIGITS = frozenset("0123456789*#ABCDabcd")


def sip_callback(method: Callable[..., None]) -> Callable[..., None]:
    """A pjsua2 callback that never lets an exception into pjsua2 (a SWIG director error
    there can abort the process): it is logged and the callback returns."""

    @functools.wraps(method)
    def guarded(self: Any, *args: Any) -> None:
        try:
            method(self, *args)
        except Exception:
            log.exception("sip: %s failed", method.__name__)

    return guarded


class PjCall(pj.Call):  # type: ignore[misc]
    """The pjsua2 call; lives and dies on the SIP thread (see `sip.lifetime`).

    Made in `onIncomingCall` or by `UserAgent.dial`; held only by `PjCalls`. Released in its
    own DISCONNECTED callback (`PjCalls.forget`), as pjsua2 documents for calls: pjsua hands
    the call's id to the next INVITE as soon as that callback returns, and a `Call` freed later
    would clear that new call's link to its object and hang it up (`Call::~Call` acts on its
    id). Its `FramePort` is not retired there but by a job after the callback."""

    def __init__(self, account: Any, sip_thread: int, call_id: int = pj.PJSUA_INVALID_ID) -> None:
        if call_id == pj.PJSUA_INVALID_ID:
            super().__init__(account)
        else:
            super().__init__(account, call_id)
        self.owner: SipCall | None = None
        self.key = 0
        self.port: FramePort | None = None
        self.disconnected = False
        self.on_disconnected: Callable[[PjCall], None] | None = None
        self._sip_thread = sip_thread
        self._media_index = -1
        """The active audio media's index; -1 while none is active (not up, or on hold)."""
        self._rx_packets = -1
        self._rx_seen_at = 0.0
        LIFETIMES.track(self, sip_thread)

    @sip_callback
    def onCallState(self, prm: Any) -> None:  # noqa: N802
        info = self.getInfo()
        owner = self.owner
        if info.state == pj.PJSIP_INV_STATE_EARLY and owner is not None:
            owner.from_thread(owner.ringing)
        elif info.state == pj.PJSIP_INV_STATE_CONFIRMED and owner is not None:
            owner.from_thread(owner.confirmed)
        elif info.state == pj.PJSIP_INV_STATE_DISCONNECTED and not self.disconnected:
            self.disconnected = True
            # pjsua has already taken the stream off the bridge (its connections to the port
            # went with it). The registry forgets the call now, before the loop hears of the
            # end (so anyone who saw the end sees it gone); the port is retired by a job
            # after this callback. One handoff ends the audio and marks the call ended
            # together (`disconnected` does both), so whoever sees the audio end sees `ended`.
            forget, self.on_disconnected = self.on_disconnected, None
            if forget is not None:
                forget(self)
            if owner is not None:
                owner.from_thread(owner.disconnected, info.lastStatusCode, info.lastReason)
            self.owner = None

    @sip_callback
    def onCallSdpCreated(self, prm: Any) -> None:  # noqa: N802
        """Answering an offer: keep only the node's preferred codec among those offered, so
        the answer follows `sip.codecs`, not the caller's order (pjmedia's default)."""
        remote = prm.remSdp.wholeSdp
        if not remote:
            return  # the node's own offer: already in `sip.codecs` order
        prm.sdp.wholeSdp = prefer_local_codec(prm.sdp.wholeSdp, remote)

    @sip_callback
    def onCallMediaState(self, prm: Any) -> None:  # noqa: N802
        """Connect the call's frame port to its active audio stream, on every media update.
        A re-INVITE (hold, unhold, a codec change) makes pjsua recreate the stream, and the
        new stream may get the old one's bridge slot number (the bridge reuses a freed slot)
        with none of its connections: a slot number cannot tell the streams apart, so the
        port is always connected (connecting a connected pair is a no-op in the bridge). No
        slot is kept: once a stream is gone its slot may be another call's."""
        owner = self.owner
        if owner is None or self.disconnected:
            return
        info = self.getInfo()
        self._media_index = -1
        for index, media in enumerate(info.media):
            if media.type == pj.PJMEDIA_TYPE_AUDIO and media.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                self._media_index = index
                stream = self.getAudioMedia(index)
                port = self.port
                if port is None:
                    port = self.port = FramePort(owner.audio, self._sip_thread)
                    port.createPort(f"call{info.id}", port_format())
                stream.startTransmit(port)
                port.startTransmit(stream)
                owner.from_thread(owner.media_up)
                return

    @sip_callback
    def onDtmfDigit(self, prm: Any) -> None:  # noqa: N802
        owner = self.owner
        digit = str(prm.digit)
        if owner is not None and digit in DTMF_DIGITS:
            owner.from_thread(owner.signal, Dtmf(digit.upper()))

    @sip_callback
    def onCallTransferStatus(self, prm: Any) -> None:  # noqa: N802
        owner = self.owner
        if owner is not None:
            owner.from_thread(owner.transfer_status, int(prm.statusCode), bool(prm.finalNotify))
        prm.cont = not prm.finalNotify

    def onCallTransferRequest(self, prm: Any) -> None:  # noqa: N802
        """A REFER from the far end: declined (603). Left to pjsua2, it would accept and call
        the Refer-To URI from the node: any caller could make the node dial anywhere."""
        prm.statusCode = pj.PJSIP_SC_DECLINE
        info = self.owner.info if self.owner is not None else None
        extra = {"call_id": info.call_id, "tenant_id": info.tenant_id} if info else {}
        log.warning("sip: a caller's REFER was declined", extra=extra)

    def rtp_silent_s(self, now: float) -> float:
        """Seconds since the caller's last RTP packet, counted only while the call's audio is
        active (not before it is up, not on hold); SIP thread. `now`: a monotonic time."""
        if self.disconnected or self._media_index < 0:
            self._rx_packets, self._rx_seen_at = -1, now
            return 0.0
        # Keep the StreamStat referenced while reading into it: SWIG's `.rtcp` and `.rxStat`
        # point inside it without holding it (a chained read on the temporary reads freed
        # memory; AddressSanitizer found it).
        stat = self.getStreamStat(self._media_index)
        rtcp = stat.rtcp
        packets = int(rtcp.rxStat.pkt)
        del rtcp, stat
        if packets != self._rx_packets:
            self._rx_packets, self._rx_seen_at = packets, now
        return now - self._rx_seen_at

    def take_port(self) -> FramePort | None:
        """Hand the frame port over for retiring (it stays on the bridge until then)."""
        port, self.port = self.port, None
        return port

    def release_media(self) -> None:
        """Retire the frame port (SIP thread, outside callbacks): it leaves the bridge with
        its connections; the owner's audio ends. Never `stopTransmit` on the stream: once
        the call is down its slot may already be another call's."""
        port = self.take_port()
        if port is not None:
            port.retire()
        if self.owner is not None:
            self.owner.from_thread(self.owner.audio.end)


class PjCalls:
    """The SIP thread's registry of live pjsua2 calls, by key.

    pjsua2 objects must stay referenced while pjsua2 uses them and be destroyed on the SIP
    thread (a destructor on any other thread aborts the process), so only this registry
    holds them; the asyncio side keeps a key and looks the call up on the SIP thread."""

    def __init__(self) -> None:
        self._calls: dict[int, PjCall] = {}
        self._next = 0

    def __len__(self) -> int:
        return len(self._calls)

    def add(self, pjcall: PjCall) -> int:
        self._next += 1
        self._calls[self._next] = pjcall
        pjcall.key = self._next
        return self._next

    def get(self, key: int) -> PjCall | None:
        return self._calls.get(key)

    def forget(self, key: int) -> FramePort | None:
        """In the call's own DISCONNECTED callback: the registry lets the call go (its last
        reference goes when the callback returns) and hands back its frame port, which the
        caller must `retire()` from a job after the callback."""
        pjcall = self._calls.pop(key, None)
        return pjcall.take_port() if pjcall is not None else None

    def drop(self, key: int) -> None:
        """Release a call that did not disconnect (stopping, or its INVITE could not be
        sent; SIP thread, in a job): its port is retired first, then the call goes (its
        `~Call` hangs it up if it is still active)."""
        pjcall = self._calls.pop(key, None)
        if pjcall is not None:
            pjcall.release_media()
            pjcall.owner = None
            pjcall.on_disconnected = None

    def keys(self) -> list[int]:
        return list(self._calls)


def op(status: int = 0, reason: str = "", headers: dict[str, str] | None = None) -> Any:
    prm = pj.CallOpParam(True)
    if status:
        prm.statusCode = status
    if reason:
        prm.reason = reason
    for name, value in (headers or {}).items():
        header = pj.SipHeader()
        header.hName = name
        header.hValue = value
        prm.txOption.headers.append(header)
    return prm


class SipCall(Call):
    """A SIP call as the node sees it; also a `control_api.calls.LiveCall`."""

    def __init__(
        self,
        info: CallInfo,
        pjcall: PjCall,
        registry: PjCalls,
        thread: SipThread,
        loop: asyncio.AbstractEventLoop,
        audio: SipAudio,
    ) -> None:
        self.info = info
        self.audio = audio
        self._key = pjcall.key
        self._registry = registry
        self._thread = thread
        self._loop = loop
        self._signals: asyncio.Queue[CallSignal] = asyncio.Queue(maxsize=64)
        self._answered: asyncio.Future[None] = loop.create_future()
        self._progress: asyncio.Future[None] = loop.create_future()
        """Done once the far end rings or answers (outbound); fails like `_answered`."""
        self._ended = asyncio.Event()
        self._transfer: asyncio.Future[int] | None = None
        self.end_status: int | None = None
        self.end_reason = ""
        self._extra = {"call_id": info.call_id, "tenant_id": info.tenant_id}
        pjcall.owner = self

    # -- from the SIP thread ------------------------------------------------------------
    def from_thread(self, fn: Callable[..., object], *args: object) -> None:
        try:
            self._loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:
            pass  # the loop has closed

    def ringing(self) -> None:
        if not self._progress.done():
            self._progress.set_result(None)

    def confirmed(self) -> None:
        self.ringing()
        if not self._answered.done():
            self._answered.set_result(None)

    def media_up(self) -> None:
        log.debug("sip media up", extra=self._extra)

    def disconnected(self, status: int, reason: str) -> None:
        self.end_status, self.end_reason = status, reason
        self.audio.end()
        for future in (self._progress, self._answered):
            if not future.done():
                future.set_exception(
                    CallControlError(f"the call was not answered: {status} {reason}")
                )
                future.exception()  # retrieved: nobody may be waiting
        if self._transfer is not None and not self._transfer.done():
            self._transfer.set_result(status or 487)
        if not self._ended.is_set():
            self._ended.set()
            self.signal(RemoteHangup(f"{status} {reason}".strip()))

    def signal(self, signal: CallSignal) -> None:
        try:
            self._signals.put_nowait(signal)
        except asyncio.QueueFull:
            log.warning("dropped a call signal: queue full", extra=self._extra)

    def transfer_status(self, status: int, final: bool) -> None:
        if final and self._transfer is not None and not self._transfer.done():
            self._transfer.set_result(status)

    # -- LiveCall ---------------------------------------------------------------------
    @property
    def control(self) -> Call:
        return self

    @property
    def transport(self) -> SipAudio:
        return self.audio

    def publish(self, event: object) -> None:
        """SIP has no channel for call events."""

    @property
    def ended(self) -> bool:
        return self._ended.is_set()

    async def wait_answered(self) -> None:
        """Return once the far end answered (outbound); CallControlError when it did not."""
        await asyncio.shield(self._answered)

    async def wait_progress(self) -> None:
        """Return once the far end rings or answers (outbound); CallControlError when the
        call ended first (refused, unreachable, or the trunk rejected the credentials)."""
        await asyncio.shield(self._progress)

    async def wait_ended(self) -> None:
        await self._ended.wait()

    async def close(self, outcome: str = "normal") -> None:
        """Hang up if still up and wait for the disconnect (bounded); idempotent."""
        await self.hangup(outcome)
        try:
            async with asyncio.timeout(5):
                await self._ended.wait()
        except TimeoutError:
            log.warning("sip call did not disconnect after hangup", extra=self._extra)
        self.audio.end()

    # -- Call -------------------------------------------------------------------------
    async def hangup(self, reason: str = "normal") -> None:
        if self._ended.is_set():
            return

        def bye() -> None:
            pjcall = self._registry.get(self._key)
            if pjcall is not None and not pjcall.disconnected and pjcall.isActive():
                pjcall.hangup(op())

        try:
            await self._thread.call(bye)
        except pj.Error as exc:
            log.info("sip hangup failed", extra={**self._extra, "error": str(exc.reason)})

    async def transfer(self, target: str) -> None:
        """Blind transfer with REFER; returns once the far end reported the transferee's
        final answer (a 2xx), then ends this leg. CallControlError when it refused."""
        if self._ended.is_set():
            raise CallControlError("the call has ended", kind="ended")
        self._transfer = self._loop.create_future()

        def refer() -> None:
            pjcall = self._registry.get(self._key)
            if pjcall is None:
                raise CallControlError("the call has ended", kind="ended")
            pjcall.xfer(target, op())

        try:
            await self._thread.call(refer)
        except pj.Error as exc:
            raise CallControlError(f"REFER failed: {exc.reason}") from exc
        async with asyncio.timeout(30):
            status = await self._transfer
        if not 200 <= status < 300:
            raise CallControlError(f"the transfer target answered {status}")
        await self.hangup("transferred")

    async def send_dtmf(self, digits: str) -> None:
        if not digits or any(d not in DTMF_DIGITS for d in digits):
            raise CallControlError(f"not DTMF digits: {digits!r}")
        if self._ended.is_set():
            raise CallControlError("the call has ended", kind="ended")

        def send() -> None:
            pjcall = self._registry.get(self._key)
            if pjcall is None:
                raise CallControlError("the call has ended", kind="ended")
            prm = pj.CallSendDtmfParam()
            prm.method = pj.PJSUA_DTMF_METHOD_RFC2833
            prm.digits = digits
            try:
                pjcall.sendDtmf(prm)
            except pj.Error:  # no telephone-event negotiated: fall back to SIP INFO
                prm.method = pj.PJSUA_DTMF_METHOD_SIP_INFO
                pjcall.sendDtmf(prm)

        try:
            await self._thread.call(send)
        except pj.Error as exc:
            raise CallControlError(f"DTMF failed: {exc.reason}") from exc

    async def next_signal(self) -> CallSignal:
        return await self._signals.get()
