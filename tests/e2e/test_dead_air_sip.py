"""No dead air over SIP: a REFER the caller's phone cannot complete is heard about.

baresip calls the real node (the receptionist, real models); its audio source is the caller's
line ("Can I talk to someone at the front desk?") after the greeting. The receptionist says
its transfer line and REFERs baresip to the front desk, a sipp UAS that answers 486 Busy; baresip
reports the 486 in its NOTIFY, the transfer fails, and the session speaks the agent's
`action_failed_line` within 2 s of the failure on its own clock (`silence_ms`); the call goes
on until the caller hangs up, and the call record names the failure (transfer, refused).
"""

from __future__ import annotations

import logging
import wave
from importlib.resources import files
from pathlib import Path

import msgspec
import numpy as np
import pytest

from pipeline.engines import Engines
from pipeline.events import CallEnded, ToolCalled
from pipeline.tts import TtsEngine
from sip.ua import UserAgent
from tests.support.baresip import baresip
from tests.support.ports import free_port
from tests.support.sipp import listening_sipp
from voicenode.node import open_node

from .test_audiosocket_call import Events, phone_line
from .test_dead_air import HEARD_AGAIN
from .test_sip_call import sip_node_settings

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]
FALLBACK = "Sorry, I couldn't put you through just now. Is there anything else I can help you with?"


def caller_source(path: Path, line: np.ndarray, lead_s: float, tail_s: float) -> None:  # type: ignore[type-arg]
    """baresip's audio source (8 kHz mono PCM): silence, the caller's line, silence."""
    pad = np.zeros(int(8000 * lead_s), np.int16)
    samples = np.concatenate([pad, line.astype(np.int16), np.zeros(int(8000 * tail_s), np.int16)])
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(samples.astype("<i2").tobytes())


async def test_a_refused_refer_is_heard_and_the_call_goes_on(
    engines: Engines, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="pipeline")
    tts = engines.tts
    assert isinstance(tts, TtsEngine)
    desk_port = free_port()
    # The receptionist, with the front desk at the sipp UAS (an operator's agent file wins).
    agents = tmp_path / "agents"
    agents.mkdir()
    spec = (files("config") / "agents" / "receptionist.toml").read_text(encoding="utf-8")
    desk = f"sip:desk@127.0.0.1:{desk_port}"
    (agents / "receptionist.toml").write_text(
        spec.replace('"sip:frontdesk@clinic.example"', f'"{desk}"'), encoding="utf-8"
    )
    settings = sip_node_settings(tmp_path)
    settings = msgspec.structs.replace(
        settings,
        agents=msgspec.structs.replace(settings.agents, dir=str(agents)),
        dialplan=msgspec.structs.replace(settings.dialplan, allowed_domains=("127.0.0.1",)),
    )
    events = Events()
    async with (
        open_node(settings, engines) as node,
        baresip(tmp_path / "baresip", calls=2) as peer,
    ):
        unsubscribe = node.calls.subscribe(events)
        ua = next(x for x in node.listeners if isinstance(x, UserAgent))
        line = phone_line(tts, "Can I talk to someone at the front desk?")
        caller_source(tmp_path / "baresip" / "source.wav", line, lead_s=6.0, tail_s=60.0)
        busy = await listening_sipp("uas_busy.xml", desk_port, tmp_path / "busy")
        await peer.command("dial", f"sip:1000@127.0.0.1:{ua.port}")
        await events.wait(lambda: FALLBACK in events.agent_lines(), limit_s=60)
        lines = events.agent_lines()
        assert "front desk" in lines[-2].lower(), lines  # the transfer line, then the fallback
        result = await busy
        assert result.returncode == 0, result.explain()  # the desk was called, and was busy
        failed = [(e.name, e.result) for _, e in events.seen if isinstance(e, ToolCalled)]
        assert failed == [("transfer", "failed: refused")]
        silences = [float(r.silence_ms) for r in caplog.records if r.getMessage() == HEARD_AGAIN]
        assert len(silences) == 1 and silences[0] <= 2000, silences
        assert not events.of(CallEnded)  # the call goes on
        await peer.command("hangup")
        await events.wait(lambda: events.of(CallEnded))
        ended = events.of(CallEnded)[0]
        assert isinstance(ended, CallEnded) and ended.reason == "hangup", ended
        unsubscribe()
