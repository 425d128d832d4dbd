"""A caller that vanishes without a BYE: its RTP stops, and the node hangs the call up after
`sip.rtp_timeout_s` instead of holding the call (and its agent) until the session expires."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.support.sipp import run_sipp, write_ulaw_wav
from voicenode.sip_listener import sip_listener

from .test_ua import SignalHost, sip_settings, stored, tone_speech

pytestmark = pytest.mark.timeout(60)


async def test_a_caller_whose_rtp_stops_is_hung_up(tmp_path: Path) -> None:
    host = SignalHost(max_calls=2)
    wav = write_ulaw_wav(tone_speech(0.5), tmp_path / "in.wav")  # 0.5 s of RTP, then none
    async with stored(host), sip_listener(sip_settings(rtp_timeout_s=2.0), host) as ua:
        assert ua is not None
        ua.rtp_watch_interval_s = 0.2
        # The scenario waits up to 20 s for the node's BYE: only the RTP timeout sends one
        # (the host never ends a call by itself).
        result = await run_sipp(
            "uac_node_hangs_up.xml", ua.port, tmp_path, fill={"WAV": str(wav)}, timeout_s=30
        )
        assert result.returncode == 0, result.explain()
        call_id = await asyncio.wait_for(host.finished.get(), 10)
        assert host.inbound_frames[call_id] > 0  # the call was up with audio
        assert await ua.call_count() == 0
