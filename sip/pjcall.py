"""The pjsua2 side of a SIP call, on the SIP thread: `PjCall` (pjsua2's callbacks: the call's
state, its audio stream attached to the bridge through a `FramePort`, DTMF, transfers), the
registry that holds every `PjCall` until it disconnects (`PjCalls`), and `op` (the parameters of a
call operation). The asyncio face of a call, `SipCall`, is in `sip.calls`; a `PjCall` reaches it
only through the `CallOwner` protocol, on the event loop.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, Protocol

import pjsua2 as pj

from media.call import CallInfo, CallSignal, Dtmf
from sip.lifetime import LIFETIMES
from sip.media_port import FramePort, SipAudio, port_format
from sip.sdp import prefer_local_codec

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


class CallOwner(Protocol):
    """What a `PjCall` tells its call (`SipCall`), always through `from_thread` (on the loop)."""

    info: CallInfo
    audio: SipAudio

    def from_thread(self, fn: Callable[..., object], *args: object) -> None: ...
    def ringing(self) -> None: ...
    def confirmed(self) -> None: ...
    def media_up(self) -> None: ...
    def disconnected(self, status: int, reason: str) -> None: ...
    def signal(self, signal: CallSignal) -> None: ...
    def transfer_status(self, status: int, final: bool) -> None: ...


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
        self.owner: CallOwner | None = None
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
        local = prm.sdp.wholeSdp
        if not (local.isascii() and remote.isascii()):
            # a mangled offer (bytes that are not text): leave pjsua's answer as it made it;
            # setting a rewritten SDP of such bytes fails in SWIG, and pjmedia then aborted
            # the process in create_answer (bench/reports/sip_fuzz, "refused")
            return
        prm.sdp.wholeSdp = prefer_local_codec(local, remote)

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


def op(
    status: int = 0,
    reason: str = "",
    headers: dict[str, str] | None = None,
    local_uri: str = "",
) -> Any:
    """A call operation's parameters; `local_uri` replaces the account's From (an INVITE)."""
    prm = pj.CallOpParam(True)
    if local_uri:
        prm.txOption.localUri = local_uri
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


def from_uri(account_uri: str, caller_id: str) -> str:
    """The From for `caller_id` (display name and user) at the host of `account_uri` (the
    account's `idUri`, e.g. `sip:voicenode@trunk.example:5060`): `"cid" <sip:cid@host:port>`.
    `caller_id` must hold no character that needs quoting or escaping (the dialer checks)."""
    uri = account_uri.strip()
    if "<" in uri:
        uri = uri.split("<", 1)[1].split(">", 1)[0]
    scheme, _, rest = uri.partition(":")
    host = rest.rsplit("@", 1)[-1].split(";", 1)[0]
    return f'"{caller_id}" <{scheme}:{caller_id}@{host}>'
