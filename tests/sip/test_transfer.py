"""Blind transfer with a real transferee: baresip calls the node, the node REFERs it to a sipp
UAS, baresip follows the REFER (an INVITE to the target, with the progress reported back in
NOTIFYs), and the node's leg ends once the target answered."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from media.call import CallControlError
from sip.calls import SipCall
from tests.support.baresip import Baresip, baresip
from tests.support.ports import free_port
from tests.support.sipp import SippResult, listening_sipp
from voicenode.sip_listener import sip_listener

from .test_ua import SignalHost, sip_settings, stored

pytestmark = pytest.mark.timeout(60)


async def transferred(
    call: SipCall, target: str, peer: Baresip, target_ua: asyncio.Task[SippResult]
) -> None:
    """`call.transfer(target)` within 15 s, or an AssertionError telling what each side saw."""
    try:
        await asyncio.wait_for(call.transfer(target), 15)
    except TimeoutError:
        sipp = target_ua.result().explain() if target_ua.done() else "sipp still running"
        events = [e.get("type") for e in peer.events]
        raise AssertionError(
            f"no final NOTIFY in 15 s\nbaresip events {events}\n{peer.log()}\n{sipp}"
        ) from None


async def test_baresip_follows_the_refer_to_a_sipp_target(tmp_path: Path) -> None:
    target_port = free_port()
    target = f"sip:desk@127.0.0.1:{target_port}"
    async with (
        stored(SignalHost(max_calls=2)) as host,
        sip_listener(sip_settings(), host) as ua,  # type: ignore[arg-type]
        baresip(tmp_path / "baresip", calls=2) as peer,
    ):
        assert ua is not None
        desk = await listening_sipp("uas", target_port, tmp_path / "desk")
        await peer.command("dial", f"sip:1000@127.0.0.1:{ua.port}")
        await asyncio.wait_for(host.started.get(), 10)
        await peer.wait_event("CALL_ESTABLISHED")
        call = host.calls_seen[-1]
        assert isinstance(call, SipCall)
        await transferred(call, target, peer, desk)  # returns on the target's 200
        await asyncio.wait_for(host.finished.get(), 5)  # and the node's leg is over
        assert call.ended
        # baresip is now talking to the desk: two established calls, the first one closed.
        await peer.wait_event("CALL_ESTABLISHED", count=2)
        await peer.wait_event("CALL_CLOSED")
        await peer.command("hangup")  # ends the transferred call: the desk gets the BYE
        result = await desk
        assert result.returncode == 0, result.explain()
        with pytest.raises(CallControlError):
            await call.transfer(target)  # the leg has ended
    (invite,) = result.received("INVITE ")
    assert invite.start_line.startswith(f"INVITE {target}")
    assert "callee@127.0.0.1" in (invite.header("From") or "")  # the transferee called
    await asyncio.wait_for(host.wait_idle(), 5)  # every call released


async def test_a_busy_target_fails_the_transfer_and_the_call_goes_on(tmp_path: Path) -> None:
    """baresip reports the target's 486 in its NOTIFY: `transfer` raises, the caller is still
    connected to the node (audio keeps flowing) and can hang up normally."""
    target_port = free_port()
    async with (
        stored(SignalHost(max_calls=2)) as host,
        sip_listener(sip_settings(), host) as ua,  # type: ignore[arg-type]
        baresip(tmp_path / "baresip", calls=2) as peer,
    ):
        assert ua is not None
        busy = await listening_sipp("uas_busy.xml", target_port, tmp_path / "busy")
        await peer.command("dial", f"sip:1000@127.0.0.1:{ua.port}")
        await asyncio.wait_for(host.started.get(), 10)
        await peer.wait_event("CALL_ESTABLISHED")
        call = host.calls_seen[-1]
        assert isinstance(call, SipCall)
        with pytest.raises(CallControlError, match="486"):
            await asyncio.wait_for(call.transfer(f"sip:desk@127.0.0.1:{target_port}"), 15)
        result = await busy
        assert result.returncode == 0, result.explain()
        assert not call.ended and host.finished.empty()
        # baresip put the call on hold to transfer it: taken off hold, audio flows again.
        host.loud_in = 0
        host.heard_loud.clear()
        await peer.command("resume")
        await asyncio.wait_for(host.heard_loud.wait(), 10)  # 1 s of the caller's audio
        await peer.command("hangup")
        await asyncio.wait_for(host.finished.get(), 5)
    await asyncio.wait_for(host.wait_idle(), 5)  # every call released
