"""How many SIP calls the node carries at once.

pjsua2 is built from source with server limits (`deploy/pjsua2`): PJSUA_MAX_CALLS is 512, not
the 4 of the PyPI wheels, so the node's own admission (`node.max_calls`) is the limit: calls up
to it are carried, the next gets 503 with Retry-After (Kamailio's failover code)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from sip.endpoint import call_capacity
from tests.support.sipp import run_sipp, write_ulaw_wav
from voicenode.sip_listener import sip_listener

from .test_ua import SignalHost, sip_settings, stored, tone_speech

pytestmark = pytest.mark.timeout(60)


def test_pjsua2_is_built_for_a_server() -> None:
    assert call_capacity() >= 512


async def test_calls_up_to_max_calls_are_carried_and_the_next_gets_503(tmp_path: Path) -> None:
    carried = 6  # more than a PyPI pjsua2 wheel holds (4)
    host = SignalHost(max_calls=carried)
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
            fill={"STATUS": "503", "HEADER_RE": "Retry-After: *[0-9]+"},
        )  # fmt: skip
        assert refused.returncode == 0, refused.explain()
        result = await calls
        assert result.returncode == 0, result.explain()
        for _ in range(carried):
            await asyncio.wait_for(host.finished.get(), 5)
        assert await ua.call_count() == 0
