"""A phone call to the real node over SIP, on the embedded models, in real time.

sipp calls number 1000 and streams a G.711 utterance rendered in the caller voice; the node
answers with the receptionist, transcribes the line, and its RTP (tapped on loopback as it
leaves the node) transcribes back to the greeting and the agent's reply."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import msgspec
import numpy as np
import numpy.typing as npt
import pytest

from config import load_settings
from config.schema import Settings
from media.call import CallInfo
from pipeline.engines import Engines
from pipeline.events import CallEnded, CallEvent, Transcript
from sip.ua import UserAgent
from tests.support.ports import free_port_run
from tests.support.sipp import RtpTap, node_rtp_ports, run_sipp, write_ulaw_wav
from tests.support.speech import heard_of, transcribe, words
from voicenode.node import open_node

from .sipstack import KamailioFactory, RtpEngine
from .sipstack import kamailio_fixture as kamailio_fixture  # pytest fixture
from .sipstack import rtpengine_fixture as rtpengine_fixture  # pytest fixture

GREETING = ("thanks", "calling", "bright", "smile", "dental")
"""The receptionist's greeting words; two of them (or their known confusions) must be heard."""

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]
Say = Callable[[str], npt.NDArray[np.int16]]


def sip_node_settings(tmp: Path, trusted: list[str] | None = None) -> Settings:
    s = load_settings(env={})
    sip = msgspec.structs.replace(
        s.sip, host="127.0.0.1", port=0, **node_rtp_ports(), trusted_proxies=trusted or []
    )
    return msgspec.structs.replace(
        s,
        node=msgspec.structs.replace(s.node, data_dir=str(tmp / "data")),
        sip=sip,
        audiosocket=msgspec.structs.replace(s.audiosocket, enabled=False),
    )


async def test_a_sip_caller_books_with_the_receptionist(
    engines: Engines, say: Say, tmp_path: Path
) -> None:
    line = say("Hi, I'd like to book a cleaning.")
    wav = write_ulaw_wav(line, tmp_path / "caller.wav")
    events: list[tuple[CallInfo, CallEvent]] = []
    media = free_port_run(4)  # sipp binds the media port and the 3 after it (RTCP, video)
    async with open_node(sip_node_settings(tmp_path), engines) as node:
        node.calls.subscribe(lambda info, event: events.append((info, event)))
        ua = next(x for x in node.listeners if isinstance(x, UserAgent))
        with RtpTap(media) as tap:
            # The greeting takes ~4 s; the caller speaks after it and hangs up once the
            # agent has had time to answer.
            result = await run_sipp(
                "uac_stream.xml",
                ua.port,
                tmp_path,
                media_port=media,
                fill={"WAV": str(wav), "LEAD_MS": "5500", "HOLD_MS": "9000", "DTMF": ""},
            )
    assert result.returncode == 0, result.explain()
    infos = {info.call_id: info for info, _ in events}
    assert len(infos) == 1
    info = next(iter(infos.values()))
    assert info.transport == "sip" and info.tenant_id == "demo"
    said = [e for _, e in events if isinstance(e, Transcript) and e.final]
    users = [t.text for t in said if t.role == "user"]
    agents = [t.text for t in said if t.role == "agent"]
    assert users and {"book", "cleaning"} <= words(" ".join(users)), said
    assert any("name" in words(a) for a in agents), said
    assert any(isinstance(e, CallEnded) for _, e in events)
    heard = await transcribe(engines, tap.pcmu_audio())
    # the greeting, as the caller heard it (tiny.en through G.711: known confusions allowed)
    assert len(heard_of(GREETING, words(heard))) >= 2, heard
    assert {"book", "name"} <= words(heard), heard  # and the reply to the caller's line


async def test_the_same_call_through_kamailio_and_rtpengine(
    engines: Engines,
    say: Say,
    tmp_path: Path,
    kamailio: KamailioFactory,
    rtpengine: RtpEngine,
) -> None:
    """The deploy/ edge in front of the real node: Kamailio routes by the number and sets the
    tenant header (trusted from its address), RTPEngine relays the media both ways."""
    wav = write_ulaw_wav(say("Hi, I'd like to book a cleaning."), tmp_path / "caller.wav")
    events: list[tuple[CallInfo, CallEvent]] = []
    media = free_port_run(4)  # sipp binds the media port and the 3 after it (RTCP, video)
    settings = sip_node_settings(tmp_path, trusted=["127.0.0.1/32"])
    async with open_node(settings, engines) as node:
        node.calls.subscribe(lambda info, event: events.append((info, event)))
        ua = next(x for x in node.listeners if isinstance(x, UserAgent))
        edge = kamailio([f"sip:127.0.0.1:{ua.port}"])
        with RtpTap(media) as tap:
            result = await run_sipp(
                "uac_stream.xml",
                edge.port,
                tmp_path,
                media_port=media,
                fill={"WAV": str(wav), "LEAD_MS": "5500", "HOLD_MS": "9000", "DTMF": ""},
            )
    assert result.returncode == 0, result.explain()
    (info,) = {i.call_id: i for i, _ in events}.values()
    assert info.tenant_id == "demo"
    users = [
        e.text for _, e in events if isinstance(e, Transcript) and e.final and e.role == "user"
    ]
    assert {"book", "cleaning"} <= words(" ".join(users)), users
    # The caller's media went to RTPEngine, and the agent's audio came back from it.
    sdp_ports = [int(p) for p in re.findall(r"m=audio (\d+)", result.messages)]
    assert any(rtpengine.relays(p) for p in sdp_ports), result.messages
    heard = await transcribe(engines, tap.pcmu_audio())
    assert len(heard_of(GREETING, words(heard))) >= 2 and heard_of(["name"], words(heard)), heard
