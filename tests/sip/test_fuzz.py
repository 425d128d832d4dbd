"""The SIP edge under a seeded fuzz (`bench.sip_fuzz`): thousands of mutated datagrams and TCP
streams (built-in requests and RFC 4475's torture messages as seeds) at a node with a live call.
The node stays up, the live call's audio keeps flowing and the call ends normally, and OPTIONS
is still answered. (On the old code this aborted the process within 1,000 datagrams: a final
answer sent from inside pjsua2's onIncomingCall tripped pjsip's rdata assertion.)"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bench.sip_fuzz import fuzz
from tests.support.sipp import run_sipp, write_ulaw_wav
from voicenode.sip_listener import sip_listener

from .test_ua import SignalHost, sip_settings, stored, tone_speech
from .torture import CORPUS

pytestmark = pytest.mark.timeout(180)


@pytest.mark.parametrize("seed", [11, 12])
async def test_a_fuzzed_sip_edge_keeps_the_node_and_its_live_call(
    tmp_path: Path, seed: int
) -> None:
    host = SignalHost(max_calls=8)
    wav = write_ulaw_wav(tone_speech(10), tmp_path / "in.wav")
    torture = [t.render("127.0.0.1:9", "127.0.0.1:5060", f"f{i}") for i, t in enumerate(CORPUS)]
    async with stored(host), sip_listener(sip_settings(), host) as ua:
        assert ua is not None
        live = asyncio.create_task(
            run_sipp(
                "uac_stream.xml", ua.port, tmp_path / "live", timeout_s=60,
                fill={"WAV": str(wav), "LEAD_MS": "100", "HOLD_MS": "10000", "DTMF": ""},
            )
        )  # fmt: skip
        info = await asyncio.wait_for(host.started.get(), 20)
        sent = await fuzz(("127.0.0.1", ua.port), 3000, seed, tcp=40, extra_seeds=torture)
        assert sent["datagrams"] == 3000
        during = host.inbound_frames[info.call_id]
        result = await live
        assert result.returncode == 0, result.explain()  # the live call ended normally
        # Its audio kept flowing after the fuzz (about 50 frames a second of its rest).
        assert host.inbound_frames[info.call_id] > during + 50
        options = await run_sipp(
            "uac_options.xml", ua.port, tmp_path / "options", fill={"STATUS": "200"}
        )
        assert options.returncode == 0, options.explain()
