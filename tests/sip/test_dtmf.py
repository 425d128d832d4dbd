"""DTMF both ways with baresip as the far end: the node's RFC 4733 telephone-events are decoded
by baresip (its `CALL_DTMF_START` events) and seen on the wire (tapped at baresip's RTP port);
digits baresip sends reach the call as `Dtmf` signals."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from media.call import CallControlError, Direction
from sip.calls import SipCall
from tests.support.baresip import baresip, rfc4733_digits, rfc4733_events
from tests.support.sipp import RtpTap
from voicenode.sip_listener import sip_listener

from .test_ua import SignalHost, sip_settings, stored

pytestmark = pytest.mark.timeout(60)


class Digits(list[str]):
    """The host's received digits, waitable."""

    def __init__(self) -> None:
        super().__init__()
        self._changed = asyncio.Event()

    def append(self, digit: str) -> None:
        super().append(digit)
        self._changed.set()

    async def wait_for(self, count: int) -> None:
        while len(self) < count:
            self._changed.clear()
            await self._changed.wait()


async def test_dtmf_reaches_baresip_as_rfc4733_events_and_comes_back(tmp_path: Path) -> None:
    host = SignalHost(max_calls=2)
    host.digits = digits = Digits()
    async with (
        stored(host),
        sip_listener(sip_settings(), host) as ua,  # type: ignore[arg-type]
        baresip(tmp_path / "baresip") as peer,
    ):
        assert ua is not None
        with RtpTap(peer.rtp_port) as tap:
            await host.dialers["sip"].dial(
                call_id="dtmf1", tenant_id="demo", agent="receptionist", to=peer.uri
            )
            info = await asyncio.wait_for(host.started.get(), 10)
            assert info.direction == Direction.OUTBOUND
            await peer.wait_event("CALL_ESTABLISHED")
            call = host.calls_seen[-1]
            assert isinstance(call, SipCall)
            await call.send_dtmf("1234567890*#")
            await peer.wait_event("CALL_DTMF_START", count=12, timeout_s=15)
            heard = "".join(str(e["param"]) for e in peer.of_type("CALL_DTMF_START"))
            assert heard == "1234567890*#"
            # And the other way: baresip sends digits, the call gets them as signals.
            for digit in "95#":
                await peer.command("sndcode", digit)
            await asyncio.wait_for(digits.wait_for(3), 10)
            assert host.digits == ["9", "5", "#"]
        dynamic = {p[1] & 0x7F for p in tap.packets if len(p) > 12 and p[1] & 0x7F >= 96}
        (event_pt,) = dynamic  # the telephone-event payload type negotiated; nothing else
        events = rfc4733_events(tap.packets, event_pt)
        assert rfc4733_digits(events) == "1234567890*#"
        assert all(duration > 0 for _, _, duration in events)
        with pytest.raises(CallControlError):
            await call.send_dtmf("12x")
        await call.hangup()
        await asyncio.wait_for(host.finished.get(), 5)
        await peer.wait_event("CALL_CLOSED")
    await asyncio.wait_for(host.wait_idle(), 5)  # every call released
