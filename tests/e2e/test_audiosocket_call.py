"""Calls over Asterisk AudioSocket against the real node (embedded models, the receptionist),
from a protocol-exact AudioSocket client, with an AMI double standing in for Asterisk's manager.

The client streams 8 kHz slin (kind 0x10) in real time, as Asterisk's `AudioSocket()` does:
silence, the caller's line, silence. The node transcribes the line and answers; the agent's
audio received on the socket (8 kHz) transcribes back to what the agent said.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import numpy as np
import numpy.typing as npt
import pytest

from config import load_settings
from config.schema import Settings
from media.call import CallInfo
from media.g711 import ulaw_decode, ulaw_encode
from media.resample import resample
from pipeline.engines import Engines
from pipeline.events import CallEnded, CallEvent, DtmfReceived, Transcript
from pipeline.tts import TtsEngine
from tests.support.ami_double import AmiDouble
from tests.support.audiosocket_client import SLIN, AudioSocketClient
from tests.support.speech import heard_of, transcribe, words
from voicenode.audiosocket_listener import audiosocket_listener
from voicenode.node import Node, open_node
from voicenode.simulate import caller_voice

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]
Samples = npt.NDArray[np.int16]
SECRET = "e2e-ami-secret"
GREETING_WORDS = {"thanks", "calling", "bright", "smile", "dental"}
"""From the receptionist's greeting (the agent's voice is deterministic; 4 of 5 must be heard,
counting tiny.en's known confusions such as "Small" for "Smile")."""


@dataclass
class Events:
    seen: list[tuple[CallInfo, CallEvent]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def __call__(self, info: CallInfo, event: CallEvent) -> None:
        self.seen.append((info, event))
        self.changed.set()

    def of(self, kind: type) -> list[CallEvent]:
        return [e for _, e in self.seen if isinstance(e, kind)]

    def agent_lines(self) -> list[str]:
        return [
            e.text for e in self.of(Transcript) if isinstance(e, Transcript) and e.role == "agent"
        ]

    def user_lines(self) -> list[str]:
        return [
            e.text
            for e in self.of(Transcript)
            if isinstance(e, Transcript) and e.role == "user" and e.final
        ]

    async def wait(self, predicate: Callable[[], object], limit_s: float = 30) -> None:
        async with asyncio.timeout(limit_s):
            while not predicate():
                self.changed.clear()
                await self.changed.wait()


class Caller:
    """Streams 8 kHz audio to the node in real time: queued lines, silence in between."""

    def __init__(self, client: AudioSocketClient) -> None:
        self.client = client
        self._lines: asyncio.Queue[Samples] = asyncio.Queue()
        self._task = asyncio.get_running_loop().create_task(self._run())

    def say(self, samples_8k: Samples) -> None:
        self._lines.put_nowait(samples_8k)

    async def _run(self) -> None:
        silence = np.zeros(160 * 5, np.int16)  # 100 ms
        while True:
            line = silence if self._lines.empty() else self._lines.get_nowait()
            await self.client.stream(line)

    async def stop(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


def phone_line(tts: TtsEngine, text: str) -> Samples:
    """The caller's line at 8 kHz, through mu-law companding (a telephone line)."""
    narrow = resample(caller_voice(tts, text), 16_000, 8_000)
    return ulaw_decode(ulaw_encode(narrow))


def settings_for(tmp: Path, ami_port: int) -> tuple[Settings, Settings]:
    """The node's settings (its own listeners off) and the AudioSocket listener's."""
    s = load_settings(env={})
    node = msgspec.structs.replace(
        s,
        node=msgspec.structs.replace(s.node, data_dir=str(tmp), max_calls=2),
        http=msgspec.structs.replace(s.http, port=0),
        sip=msgspec.structs.replace(s.sip, enabled=False),
        audiosocket=msgspec.structs.replace(s.audiosocket, enabled=False),
        # the receptionist transfers to its front desk: the operator's dial plan allows it
        dialplan=msgspec.structs.replace(s.dialplan, allowed_domains=("clinic.example",)),
    )
    listener = msgspec.structs.replace(
        node,
        audiosocket=msgspec.structs.replace(s.audiosocket, host="127.0.0.1", port=0),
        ami=msgspec.structs.replace(
            s.ami, host="127.0.0.1", port=ami_port, username="voicenode", secret=SECRET
        ),
    )
    return node, listener


@dataclass
class Env:
    node: Node
    port: int
    ami: AmiDouble
    events: Events


@pytest.fixture
async def env(engines: Engines, tmp_path: Path) -> AsyncIterator[Env]:
    async with AmiDouble(secret=SECRET) as ami:
        node_settings, listener_settings = settings_for(tmp_path, ami.port)
        async with open_node(node_settings, engines) as node:
            events = Events()
            unsubscribe = node.calls.subscribe(events)
            async with audiosocket_listener(listener_settings, node) as server:
                assert server is not None
                await ami.wait_until(lambda: ami.logins == 1)
                yield Env(node, server.port, ami, events)
            unsubscribe()


async def heard(engines: Engines, audio_8k: Samples) -> set[str]:
    return words(await transcribe(engines, resample(audio_8k, 8_000, 16_000)))


async def test_a_call_over_audiosocket_is_heard_answered_and_transferred(
    env: Env, engines: Engines
) -> None:
    tts = engines.tts
    assert isinstance(tts, TtsEngine)
    question = phone_line(tts, "What are your opening hours?")
    call_uuid = uuid.uuid4()
    # The PBX's channel carries the UUID as VOICENODE_UUID (dialplan Set()), seen over AMI.
    env.ami.add_channel("PJSIP/caller-00000001", "1700000000.1")
    client = await AudioSocketClient.connect(env.port)
    await client.send_uuid(call_uuid)
    env.ami.emit("Newchannel", Channel="PJSIP/caller-00000001", Uniqueid="1700000000.1")
    env.ami.emit(
        "VarSet", Channel="PJSIP/caller-00000001", Uniqueid="1700000000.1",
        Variable="VOICENODE_UUID", Value=str(call_uuid),
    )  # fmt: skip
    caller = Caller(client)
    ev = env.events
    try:
        await ev.wait(lambda: ev.agent_lines())  # the greeting, spoken to the end
        greeting = client.audio(SLIN)
        assert set(client.received.audio_sizes) == {320}  # 20 ms of 8 kHz slin per message
        said = await heard(engines, greeting)
        assert len(heard_of(GREETING_WORDS, said)) >= 4, said
        assert "bright smile dental" in ev.agent_lines()[0].lower()

        caller.say(question)
        await ev.wait(lambda: len(ev.agent_lines()) >= 2)
        assert words(ev.user_lines()[0]) & {"hours", "open", "opening"}, ev.user_lines()
        reply = ev.agent_lines()[1]
        assert "monday" in reply.lower()
        reply_audio = client.audio(SLIN)[len(greeting) :]
        assert len(heard_words := await heard(engines, reply_audio[: 12 * 8000])) >= 4
        assert len(heard_words & words(reply)) >= 4, (heard_words, reply)

        # "0" asks for a person: the agent says so and transfers the call through AMI.
        await client.send_dtmf("0")
        await ev.wait(lambda: ev.of(CallEnded))
        assert [e.digits for e in ev.of(DtmfReceived) if isinstance(e, DtmfReceived)] == ["0"]
        assert "front desk" in ev.agent_lines()[-1].lower()
        ended = ev.of(CallEnded)[0]
        assert isinstance(ended, CallEnded) and ended.reason == "transferred"
        redirect = env.ami.named("redirect")[0]
        assert redirect["channel"] == ["PJSIP/caller-00000001"]
        assert redirect["context"] == ["voicenode-transfer"]
        setvar = env.ami.named("setvar")[0]
        assert setvar["value"] == ["sip:frontdesk@clinic.example"]
        async with asyncio.timeout(5):
            await client.closed.wait()
    finally:
        await caller.stop()
        await client.close()


async def test_the_agent_says_goodbye_and_sends_the_hangup_kind(env: Env, engines: Engines) -> None:
    tts = engines.tts
    assert isinstance(tts, TtsEngine)
    client = await AudioSocketClient.connect(env.port)
    await client.send_uuid(uuid.uuid4())
    caller = Caller(client)
    ev = env.events
    try:
        await ev.wait(lambda: ev.agent_lines())
        caller.say(phone_line(tts, "No thank you goodbye."))
        async with asyncio.timeout(30):
            await client.closed.wait()
        assert client.received.hangup and client.received.kinds[-1] == 0x00
        await ev.wait(lambda: ev.of(CallEnded))
        ended = ev.of(CallEnded)[0]
        assert isinstance(ended, CallEnded) and ended.reason == "completed", ev.agent_lines()
        assert words(ev.user_lines()[-1]) & {"goodbye", "bye"}
    finally:
        await caller.stop()
        await client.close()


async def test_the_caller_hangs_up(env: Env) -> None:
    client = await AudioSocketClient.connect(env.port)
    await client.send_uuid(uuid.uuid4())
    caller = Caller(client)
    ev = env.events
    try:
        await client.wait_for(lambda: len(client.received.audio_sizes) > 25)  # greeting started
        await caller.stop()
        await client.send_hangup()
        await ev.wait(lambda: ev.of(CallEnded))
        ended = ev.of(CallEnded)[0]
        assert isinstance(ended, CallEnded) and ended.reason == "hangup"
        async with asyncio.timeout(5):
            await client.closed.wait()
            await env.node.wait_idle()
    finally:
        await caller.stop()
        await client.close()
