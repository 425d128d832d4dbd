"""Mid-call signalling as carriers and PBXs send it (issue 14): a session timer in the INVITE
is kept in the answer; a re-INVITE with a=sendonly (hold) is answered a=recvonly and one with
a=sendrecv (unhold) is answered a=sendrecv; an UPDATE without a body (the session refresh) is
answered 200; the caller's audio reaches the agent before the hold and after it. Then the same
for many calls at once, after which nothing is left (the node's calls, pjsua2's, the bridge's
ports)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.support.ports import free_port_run
from tests.support.sipp import run_sipp, write_ulaw_wav
from voicenode.sip_listener import sip_listener

from .test_ua import SignalHost, sip_settings, stored, tone_speech

pytestmark = pytest.mark.timeout(240)  # a hang's bound, not a timed assertion

FILL = {"HOLD_MS": "1000", "TAIL_MS": "3000"}


async def test_hold_unhold_and_session_refresh_keep_the_call_and_its_audio(
    tmp_path: Path,
) -> None:
    host = SignalHost(max_calls=2)
    wav = write_ulaw_wav(tone_speech(1.0), tmp_path / "in.wav")
    wav2 = write_ulaw_wav(tone_speech(3.0), tmp_path / "in2.wav")
    async with stored(host), sip_listener(sip_settings(), host) as ua:
        assert ua is not None
        base_ports = await ua.media_ports()
        call = asyncio.create_task(
            run_sipp(
                "uac_hold.xml",
                ua.port,
                tmp_path,
                fill={**FILL, "WAV": str(wav), "WAV2": str(wav2)},
            )  # fmt: skip
        )
        await asyncio.wait_for(host.started.get(), 20)
        result = await call
        assert result.returncode == 0, result.explain()
        await asyncio.wait_for(host.finished.get(), 10)
        # The caller's 1 s before the hold (at most 50 frames) and 3 s after it (about 115 loud
        # frames): the audio after the unhold arrived.
        assert host.loud_in >= 75, host.loud_in
        invites = [
            m for m in result.received("SIP/2.0 200") if "INVITE" in (m.header("CSeq") or "")
        ]
        assert len(invites) >= 3  # the call, the hold, the unhold (a retransmission adds one)
        assert await ua.call_count() == 0
        assert await ua.media_ports() == base_ports


async def test_many_held_and_refreshed_calls_at_once_leave_nothing(tmp_path: Path) -> None:
    at_once, calls = 16, 48
    host = SignalHost(max_calls=at_once + 4)
    wav = write_ulaw_wav(tone_speech(1.0), tmp_path / "in.wav")
    ports = {"rtp_port": free_port_run(8 * at_once), "rtp_port_range": 8 * at_once}
    async with stored(host), sip_listener(sip_settings(**ports), host) as ua:
        assert ua is not None
        base_ports = await ua.media_ports()
        result = await run_sipp(
            "uac_hold.xml", ua.port, tmp_path, calls=calls, timeout_s=150,
            fill={**FILL, "WAV": str(wav), "WAV2": str(wav)},
            media_port=free_port_run(4 * at_once),
            extra=["-l", str(at_once), "-r", "8"],
        )  # fmt: skip
        assert result.returncode == 0, result.explain()
        await asyncio.wait_for(host.wait_idle(), 30)
        assert len(host.calls_seen) == calls
        assert await ua.call_count() == 0
        assert await ua.media_ports() == base_ports
