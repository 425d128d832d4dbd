"""Issue 19's must-show, on `voicenode serve` as a process, with real speech over AudioSocket:

- an LLM agent's caller reads a card number and an email (Piper's caller voice through a G.711
  line): the history API's transcript, the events a webhook receiver gets and the mock LLM's
  requests carry `[CARD]` and `[EMAIL]`; the raw values are nowhere in them nor in the node's
  log output;
- a flow agent's caller keys the card in by DTMF in a `sensitive` slot: the recording's caller
  channel is digital silence over the entry (the line's noise floor and the caller's speech
  are recorded elsewhere), the entry's events, history and outcome show `[CARD]`, and the logs
  hold no digit of it.

Speech recognition of the card is checked as a correct system always passes it: the number is
said digit by digit (Whisper tiny.en writes it as digits, "4539 5 7 8 2 ..."), and the checks
are on the raw values' absence in any grouping; the placeholders' presence is what the
detectors make of the recogniser's words (seen in every run so far).
"""

from __future__ import annotations

import asyncio
import io
import re
import uuid
import wave
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt
import pytest

from media.g711 import ulaw_decode, ulaw_encode
from media.resample import resample
from media.speech import CallerVoice
from tests.support.analytics import Receiver, wait_for
from tests.support.audiosocket_client import AudioSocketClient
from tests.support.llm_double import LlmDouble, Reply, ScriptedToolCall

from .node_process import NodeProcess, node_process

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
Samples = npt.NDArray[np.int16]

CARD = "4539578264319150"
"""A Luhn-valid test Visa number; its digits vary, so the recogniser does not lose count."""
CARD_LINE = (
    "My card number is four five three nine, five seven eight two, six four three one,"
    " nine one five zero."
)
EMAIL_LINE = "My email address is john at example dot com."
"""Heard as "John at example.com" (a local part with a dot, "john dot smith", came back glued
as "John.Smithatexample.com" in one run: no email for any detector)."""
RAW_CARD = re.compile(r"\D{0,3}".join(CARD))
"""The card's digits in order, in any grouping ("4539 5782 ...", "4-5-3-9...", JSON)."""
RAW_EMAIL = re.compile(r"john", re.IGNORECASE)
NOISE_RMS = 60
"""The caller's line noise floor (8 kHz int16): never digital silence unless muted."""
TURN = """
[turn]
preemptive = false
audio_model = false
silence_ms = 1500
complete_silence_ms = 1500
incomplete_silence_ms = 2000
"""


def billing_agent(double: LlmDouble) -> str:
    return (
        'name = "billing"\nkind = "llm"\ngreeting = "Hello, this is the billing line."\n'
        'prompt = "You take payment details. Be brief."\ntools = [{ name = "end_call" }]\n'
        f'[llm]\nbase_url = "{double.base_url}"\nmodel = "test"\nspeculate = false\n' + TURN
    )


PAYMENTS_AGENT = (
    """
name = "payments"
kind = "flow"
greeting = "Hello, this is the payments line."
recording = "on"

[flow]
start = "offer"

[flow.slots.card]
type = "digits"
prompt = "Please key in your card number, then press the hash key."
min_digits = 13
max_digits = 19
sensitive = true

[flow.nodes.offer]
prompt = "Would you like to pay by card?"
routes = [{ intent = "yes", goto = "pay" }, { intent = "no", goto = "bye" }]

[flow.nodes.pay]
do = [
  { ask = "card" },
  { say = "Thank you, the card ending in {card} is saved." },
  { goto = "bye" },
]

[flow.nodes.bye]
do = [{ say = "Goodbye." }, { end = true }]
"""
    + TURN
)


def write_config(tmp: Path, agent: str, name: str) -> Path:
    agents = tmp / "agents"
    agents.mkdir()
    (agents / f"{name}.toml").write_text(agent)
    path = tmp / "node.toml"
    path.write_text(
        f"""
[node]
data_dir = "{tmp / "data"}"
log_format = "json"

[http]
host = "127.0.0.1"
port = 0

[tts]
deterministic = true

[agents]
dir = "{agents}"

[sip]
enabled = false

[audiosocket]
host = "127.0.0.1"
port = 0
default_agent = "demo/{name}"

[analytics]
url_allowlist = ["127.0.0.1"]
webhook_require_https = false
"""
    )
    return path


def phone_line(samples_16k: Samples) -> Samples:
    """16 kHz speech as a G.711 mu-law line carries it (8 kHz)."""
    return ulaw_decode(ulaw_encode(resample(samples_16k, 16_000, 8_000)))


class Caller:
    """Streams to the node in real time: the line's noise floor always, queued lines and DTMF
    entries (each digit an AudioSocket DTMF message, 100 ms apart) over it."""

    def __init__(self, client: AudioSocketClient) -> None:
        self.client = client
        self._rng = np.random.default_rng(19)
        self._queue: asyncio.Queue[Samples | str] = asyncio.Queue()
        self._task = asyncio.get_running_loop().create_task(self._run())

    def say(self, line: Samples) -> None:
        self._queue.put_nowait(line)

    def key(self, digits: str) -> None:
        self._queue.put_nowait(digits)

    def _noise(self, n: int) -> Samples:
        noise = self._rng.normal(0, NOISE_RMS, n)
        return ulaw_decode(ulaw_encode(np.clip(noise, -32768, 32767).astype(np.int16)))

    async def _run(self) -> None:
        while True:
            item = None if self._queue.empty() else self._queue.get_nowait()
            if item is None:
                await self.client.stream(self._noise(800))
            elif isinstance(item, str):
                for digit in item:
                    await self.client.send_dtmf(digit)
                    await self.client.stream(self._noise(800))
            else:
                mixed = item.astype(np.int32) + self._noise(len(item))
                await self.client.stream(np.clip(mixed, -32768, 32767).astype(np.int16))

    async def stop(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


@dataclass
class Served:
    node: NodeProcess
    http: httpx.AsyncClient
    port: int
    hooks: Receiver


@asynccontextmanager
async def served(tmp: Path, agent: str, name: str) -> AsyncIterator[Served]:
    """The node from `agent`'s file, with a webhook receiver subscribed for tenant demo."""
    async with Receiver() as hooks, node_process(write_config(tmp, agent, name)) as node:
        http = await node.ready()
        listening = await node.wait_record(lambda r: r.get("msg") == "audiosocket listening")
        created = await http.post("/v1/webhooks?tenant=demo", json={"url": hooks.url()})
        assert created.status_code == 201, created.text
        yield Served(node, http, int(listening["port"]), hooks)


async def poll(http: httpx.AsyncClient, path: str, ok: Any, limit_s: float = 90.0) -> Any:
    """GET `path` until `ok(json)` holds (re-asked every 0.2 s, bounded)."""
    async with asyncio.timeout(limit_s):
        while True:
            response = await http.get(path)
            if response.status_code == 200 and ok(body := response.json()):
                return body
            await asyncio.sleep(0.2)  # polling interval, not synchronisation


async def call(s: Served) -> tuple[AudioSocketClient, Caller, str]:
    """An AudioSocket call to the node's default agent: the client, its caller, the call id."""
    client = await AudioSocketClient.connect(s.port)
    await client.send_uuid(uuid.uuid4())
    caller = Caller(client)
    page = await poll(s.http, "/v1/calls", lambda b: b["calls"])
    return client, caller, page["calls"][0]["id"]


def lines(detail: dict[str, Any], role: str) -> list[str]:
    return [line["text"] for line in detail["transcript"] if line["role"] == role]


async def hang_up(client: AudioSocketClient, caller: Caller) -> None:
    await caller.stop()
    with suppress(OSError):  # the agent ended the call already
        await client.send_hangup()
    await client.close()


def leaks(text: str) -> list[str]:
    """The raw values found in `text`."""
    return [p.pattern[:20] for p in (RAW_CARD, RAW_EMAIL) if p.search(text)]


async def delivered(s: Served, call_id: str) -> list[str]:
    """The webhook bodies, once the call's `call.ended` event has been delivered."""

    async def ended() -> bool:
        return any(call_id in b and "call.ended" in b for b in bodies(s))

    await wait_for(ended, 60, "the call.ended webhook")
    return bodies(s)


def bodies(s: Served) -> list[str]:
    return [r.body.decode() for r in s.hooks.requests]


async def test_a_card_and_an_email_said_reach_every_output_as_placeholders(
    tmp_path: Path,
) -> None:
    voice = CallerVoice.load()
    card_line, email_line = phone_line(voice(CARD_LINE)), phone_line(voice(EMAIL_LINE))
    async with LlmDouble(per_turn=True) as double:
        double.script(
            Reply(tokens=["Thank you. ", "And your email address?"]),
            Reply(
                tokens=["Thanks, ", "that is all I need. ", "Goodbye!"],
                tool_calls=[ScriptedToolCall("end_call", {}, id="call_e")],
            ),
        )
        async with served(tmp_path, billing_agent(double), "billing") as s:
            client, caller, call_id = await call(s)
            try:
                path = f"/v1/calls/{call_id}"
                await poll(s.http, path, lambda d: lines(d, "agent"))  # the greeting
                caller.say(card_line)
                await poll(s.http, path, lambda d: len(lines(d, "agent")) >= 2)
                caller.say(email_line)
                detail = await poll(s.http, path, lambda d: d["status"] == "ended")
            finally:
                await hang_up(client, caller)
            bodies = await delivered(s, call_id)
            assert await s.node.stop() == 0
        requests = double.turn_requests  # one per turn: a pause mid-number may ask early too

    said = lines(detail, "user")
    print("transcript:", said)
    assert len(said) == 2, detail["transcript"]
    assert "[CARD]" in said[0] and "[EMAIL]" in said[1], said
    flagged = [line["redacted"] for line in detail["transcript"] if line["role"] == "user"]
    assert "card" in flagged[0] and "email" in flagged[1], flagged
    # the model saw the placeholders, never the values
    asked = [m["content"] for r in requests[:2] for m in r["messages"] if m["role"] == "user"]
    assert any("[CARD]" in m for m in asked) and any("[EMAIL]" in m for m in asked), asked
    assert not leaks(str(requests)), requests
    # events (webhooks): the final transcripts with placeholders, the kinds flagged
    assert any("[CARD]" in b for b in bodies) and any("[EMAIL]" in b for b in bodies)
    assert not [b for b in bodies if leaks(b)]
    assert not leaks(str(detail))
    logs = "\n".join(line for _, line in s.node.lines)
    assert not leaks(logs), [line for _, line in s.node.lines if leaks(line)]


def frame_rms(channel: Samples, start_s: float, end_s: float) -> npt.NDArray[np.float64]:
    """RMS of each 20 ms frame of 16 kHz `channel` from `start_s` to `end_s`."""
    part = channel[int(start_s * 16_000) : int(end_s * 16_000)].astype(np.float64)
    part = part[: len(part) // 320 * 320].reshape(-1, 320)
    rms: npt.NDArray[np.float64] = np.sqrt(np.mean(part**2, axis=1))
    return rms


async def test_a_card_keyed_in_a_sensitive_step_is_muted_and_masked(tmp_path: Path) -> None:
    yes_line = phone_line(CallerVoice.load()("Yes, I would like to pay by card."))
    async with served(tmp_path, PAYMENTS_AGENT, "payments") as s:
        client, caller, call_id = await call(s)
        path = f"/v1/calls/{call_id}"
        try:
            await poll(s.http, path, lambda d: lines(d, "agent"))  # greeting and question
            caller.say(yes_line)
            # the card's question is recorded; the recording is muted once it has played,
            # before its line reaches the transcript
            await poll(s.http, path, lambda d: any("hash key" in t for t in lines(d, "agent")))
            caller.key(CARD + "#")
            detail = await poll(s.http, path, lambda d: d["status"] == "ended" and d["slots"])
        finally:
            await hang_up(client, caller)
        stored = await s.node.wait_record(lambda r: r.get("msg") == "recording stored")
        wav = await s.http.get(f"{path}/recording?tenant=demo")
        assert wav.status_code == 200, wav.text
        bodies = await delivered(s, call_id)
        assert await s.node.stop() == 0

    print("transcript:", detail["transcript"], "pauses:", stored["pauses"])
    agent = " ".join(lines(detail, "agent"))
    assert "ending in 9 1 5 0" in agent, agent  # the slot was filled from the keys
    assert detail["slots"]["card"] == "[CARD]", detail["slots"]
    (pause,) = stored["pauses"]
    start, end = pause
    assert end - start >= len(CARD) * 0.1  # at least the entry's length
    with wave.open(io.BytesIO(wav.content)) as w:
        audio = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").reshape(-1, 2)
    caller_side = audio[:, 0]
    muted = frame_rms(caller_side, start + 0.04, end - 0.04)
    assert muted.max() < 1.0, muted.max()  # digital silence: the noise floor is gone too
    before = frame_rms(caller_side, 0.0, start)
    assert before.max() > 1000  # "Yes, I would like to pay by card."
    assert np.median(frame_rms(caller_side, end, len(caller_side) / 16_000)) > NOISE_RMS / 3
    assert frame_rms(audio[:, 1], end, len(audio) / 16_000).max() > 1000  # the thank-you
    assert not [b for b in bodies if leaks(b)] and not leaks(str(detail))
    logs = "\n".join(line for _, line in s.node.lines)
    assert not leaks(logs), [line for _, line in s.node.lines if leaks(line)]
