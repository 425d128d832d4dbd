"""How many SIP calls the node carries at once.

The `pjsua2-python` wheel used here is built with PJSUA_MAX_CALLS = 4 (`UaConfig.maxCalls`
cannot raise it) and pjsua2 answers an INVITE past that itself with 486, which a proxy does not
fail over on. The user agent keeps the last slot for refusing: three calls are carried, the
fourth gets 503 with Retry-After (Kamailio's failover code) before the node's admission."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from sip.ua import CALL_SLOTS, SLOTS_FULL_RETRY_AFTER_S
from voicenode.sip_listener import sip_listener

from .sipp import run_sipp, write_ulaw_wav
from .test_ua import SignalHost, sip_settings, stored, tone_speech

pytestmark = pytest.mark.timeout(60)


async def test_calls_up_to_the_slots_are_carried_and_the_next_gets_503(tmp_path: Path) -> None:
    carried = CALL_SLOTS - 1
    host = SignalHost(max_calls=8)  # the node would take more: the SIP slots are the limit
    wav = write_ulaw_wav(tone_speech(0.5), tmp_path / "in.wav")
    async with stored(host), sip_listener(sip_settings(), host) as ua:  # type: ignore[arg-type]
        assert ua is not None
        calls = asyncio.create_task(
            run_sipp(
                "uac_stream.xml", ua.port, tmp_path / "carried", calls=carried, timeout_s=30,
                fill={"WAV": str(wav), "LEAD_MS": "100", "HOLD_MS": "4000", "DTMF": ""},
                extra=["-l", str(carried)],
            )
        )  # fmt: skip
        for _ in range(carried):  # every carried call has reached the node
            await asyncio.wait_for(host.started.get(), 20)
        refused = await run_sipp(
            "uac_refused.xml", ua.port, tmp_path / "refused",
            fill={"STATUS": "503", "HEADER_RE": f"Retry-After: *{SLOTS_FULL_RETRY_AFTER_S}"},
        )  # fmt: skip
        assert refused.returncode == 0, refused.explain()
        result = await calls
        assert result.returncode == 0, result.explain()
        for _ in range(carried):
            await asyncio.wait_for(host.finished.get(), 5)
        assert await ua.call_count() == 0
