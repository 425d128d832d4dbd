"""Call recording on the real node (store, HTTP API, `LiveCalls`, `CallSession`; fake speech
engines on the real clock; an LLM agent against the `LlmDouble`): an agent with `recording`
set has its calls stored as two-channel WAV, served by `GET /v1/calls/{id}/recording`; an agent
without it records nothing; `on_consent` says the disclosure first; the node deletes recordings
past `recording.retention_days`."""

from __future__ import annotations

import io
import os
import time
import wave
from pathlib import Path

import httpx
import msgspec
import numpy as np

from agents.spec import AgentSpec
from config.recording import RecordingSettings
from control_api.recordings.store import LocalRecordingStore, RecordingKey
from control_api.store import agents as agent_rows
from media.recording import wav_header
from tests.support.analytics import wait_for
from tests.support.harness import auth, serve_app
from tests.support.llm_double import LlmDouble, Reply, ScriptedToolCall
from tests.support.served_node import call_and_speak, light_node, light_node_settings
from voicenode.node import with_disclosure

LINE = "I would like to book a cleaning next week"


def agent_toml(double: LlmDouble, name: str, recording: str) -> str:
    return (
        f'name = "{name}"\nkind = "llm"\nprompt = "You book visits."\n'
        f'greeting = "Hello there."\nrecording = "{recording}"\n'
        'tools = [{name = "end_call"}]\n'
        f'[llm]\nbase_url = "{double.base_url}"\nmodel = "m"\nspeculate = false\n'
    )


def first_sound_s(channel: np.ndarray) -> float:
    loud = np.flatnonzero(np.abs(channel.astype(np.int32)) > 500)
    assert len(loud), "the channel is silent"
    return float(loud[0]) / 16_000


async def test_a_recording_agents_call_is_stored_with_both_voices(tmp_path: Path) -> None:
    settings = light_node_settings(tmp_path)
    async with (
        LlmDouble() as double,
        light_node(settings, [LINE]) as node,
        serve_app(node, settings) as url,
        httpx.AsyncClient(base_url=url, timeout=20) as http,
    ):
        async with node.store.session() as session:
            await agent_rows.create_agent(
                session, "demo", "taped", agent_toml(double, "taped", "on")
            )
            await agent_rows.create_agent(
                session, "demo", "plain", agent_toml(double, "plain", "off")
            )
        double.script(Reply(tokens=["Booked, goodbye."], tool_calls=[ScriptedToolCall("end_call")]))
        await call_and_speak(node, "demo", "taped")
        (stored,) = await node.recordings.store.list("demo")
        assert stored.key.format == "wav"

        double.script(Reply(tokens=["Booked, goodbye."], tool_calls=[ScriptedToolCall("end_call")]))
        await call_and_speak(node, "demo", "plain")
        assert [r.key for r in await node.recordings.store.list("demo")] == [stored.key]

        resp = await http.get(f"/v1/calls/{stored.key.call_id}/recording", headers=auth())
        assert resp.status_code == 200 and resp.headers["content-type"] == "audio/wav"
    with wave.open(io.BytesIO(resp.content)) as w:
        assert (w.getnchannels(), w.getframerate()) == (2, 16_000)
        audio = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").reshape(-1, 2)
    caller, agent = audio[:, 0], audio[:, 1]
    assert first_sound_s(agent) < first_sound_s(caller)  # the greeting, then the caller
    assert not list((tmp_path / "recordings-spool").glob("*/*"))  # taken into the store


async def test_a_calls_own_choice_goes_over_its_agents(tmp_path: Path) -> None:
    # `POST /v1/calls` {"recording"}: this call recorded though its agent records none, that
    # one not though its agent records all; the choice is forgotten with the call
    settings = light_node_settings(tmp_path)
    bye = Reply(tokens=["Booked, goodbye."], tool_calls=[ScriptedToolCall("end_call")])
    async with LlmDouble() as double, light_node(settings, [LINE]) as node:
        async with node.store.session() as session:
            for name, recording in (("taped", "on"), ("plain", "off")):
                toml = agent_toml(double, name, recording)
                await agent_rows.create_agent(session, "demo", name, toml)
        double.script(bye)
        await call_and_speak(node, "demo", "plain", recording="on")
        (stored,) = await node.recordings.store.list("demo")
        double.script(bye)
        await call_and_speak(node, "demo", "taped", recording="off")
        assert [r.key for r in await node.recordings.store.list("demo")] == [stored.key]
        assert node._call_recording == {}


def test_on_consent_says_the_disclosure_before_the_greeting() -> None:
    spec = msgspec.convert(
        {
            "name": "x",
            "kind": "llm",
            "greeting": "Hello there.",
            "recording": "on_consent",
            "recording_disclosure": "This call is recorded for training.",
            "llm": {"base_url": "http://127.0.0.1:1/v1", "model": "m"},
        },
        AgentSpec,
    )
    assert with_disclosure(spec).greeting == "This call is recorded for training. Hello there."
    on = msgspec.structs.replace(spec, recording="on")
    assert with_disclosure(on).greeting == "Hello there."


async def test_the_node_deletes_recordings_past_the_retention(tmp_path: Path) -> None:
    settings = light_node_settings(tmp_path)
    settings = msgspec.structs.replace(settings, recording=RecordingSettings(retention_days=30))
    store = LocalRecordingStore.under(tmp_path)
    keys = {age: RecordingKey("demo", f"call-{age}d") for age in (40, 1)}
    for age, key in keys.items():  # left by an earlier run of the node
        spool = tmp_path / f"{age}.wav"
        spool.write_bytes(wav_header(0))
        await store.put(key, spool)
        stamp = time.time() - age * 86_400
        os.utime(store.path(key), (stamp, stamp))
    async with light_node(settings) as node:

        async def old_gone() -> bool:
            return await node.recordings.store.size(keys[40]) is None

        await wait_for(old_gone, timeout_s=30, what="the 40-day-old recording deleted")
        assert [r.key for r in await node.recordings.store.list()] == [keys[1]]
