"""One SIP call as the node sees it (`SipCall`): the `Call` seam (hangup, REFER transfer, RFC 4733
DTMF), the `SipAudio` transport, and `close()`. Every pjsua2 call it makes is marshalled onto
the SIP thread, to its `PjCall` (`sip.pjcall`), which tells it what pjsua2 reports.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import pjsua2 as pj

from media.call import Call, CallControlError, CallInfo, CallSignal, RemoteHangup
from sip.media_port import SipAudio
from sip.pjcall import DTMF_DIGITS, PjCall, PjCalls, op
from sip.thread import SipThread

log = logging.getLogger(__name__)


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
