"""The node as an operator runs it: `voicenode serve --config FILE` as a process, on the
embedded models, in real time.

- Agent files: a file agent edited while the node runs, SIGHUP: a call placed after it runs
  the new version while the call in progress keeps the old one; a restart with another edit
  starts on a newer version; an invalid edit keeps the last good version and logs the field.
- One log stream: in JSON mode, with SIP on and a SIP call made, every line the node writes
  to stdout and stderr parses as JSON.
"""

from __future__ import annotations

import asyncio
import json
import signal
import uuid
from contextlib import suppress
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from control_api.store.seed import file_specs
from tests.support.audiosocket_client import AudioSocketClient
from tests.support.ports import free_port
from tests.support.sipp import node_rtp_ports, run_sipp, write_ulaw_wav

from .node_process import NodeProcess, node_process

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
RECEPTIONIST = file_specs()["receptionist"]
GREETING = "Thanks for calling Bright Smile Dental."


def probe_spec(greeting: str) -> str:
    """The receptionist flow as agent `probe`, greeting with `greeting`."""
    text = RECEPTIONIST.replace('name = "receptionist"', 'name = "probe"', 1)
    return text.replace(GREETING, greeting, 1)


def write_config(tmp: Path, body: str) -> Path:
    path = tmp / "node.toml"
    path.write_text(
        f"""
[node]
data_dir = "{tmp / "data"}"
log_format = "json"
drain_timeout_s = 30

[http]
host = "127.0.0.1"
port = 0
{body}
"""
    )
    return path


async def _poll(
    http: httpx.AsyncClient, path: str, ok: Any, limit_s: float = 60.0
) -> dict[str, Any]:
    """GET `path` until `ok(json)` holds (re-asked every 0.2 s, bounded)."""
    async with asyncio.timeout(limit_s):
        while True:
            response = await http.get(path)
            if response.status_code == 200 and ok(body := response.json()):
                return body  # type: ignore[no-any-return]
            await asyncio.sleep(0.2)  # polling interval, not synchronisation


async def _start_call(node: NodeProcess, port: int, known: set[str]) -> tuple[Any, str]:
    """An AudioSocket call to `default_agent`; (client, the node's call id) once it is live."""
    client = await AudioSocketClient.connect(port)
    await client.send_uuid(uuid.uuid4())
    feed = asyncio.create_task(client.silence(90))  # a caller on the line, silent
    assert node.http is not None
    page = await _poll(
        node.http, "/v1/calls", lambda b: any(c["id"] not in known for c in b["calls"])
    )
    (call,) = [c for c in page["calls"] if c["id"] not in known]
    known.add(call["id"])
    return (client, feed), call["id"]


async def _agent_said(http: httpx.AsyncClient, call_id: str) -> dict[str, Any]:
    return await _poll(
        http,
        f"/v1/calls/{call_id}",
        lambda b: any(line["role"] == "agent" for line in b["transcript"]),
    )


async def _hang_up(call: tuple[Any, asyncio.Task[None]]) -> None:
    client, feed = call
    feed.cancel()
    await asyncio.gather(feed, return_exceptions=True)
    with suppress(OSError):  # the agent may have ended the call already (no input)
        await client.send_hangup()
    client.writer.close()


def _agent_lines(detail: dict[str, Any]) -> str:
    return " ".join(line["text"] for line in detail["transcript"] if line["role"] == "agent")


async def test_edited_agent_files_take_effect_on_sighup_and_restart(tmp_path: Path) -> None:
    agents = tmp_path / "agents"
    agents.mkdir()
    probe = agents / "probe.toml"
    probe.write_text(probe_spec("Version one speaking."))
    config = write_config(
        tmp_path,
        f"""
[agents]
dir = "{agents}"

[sip]
enabled = false

[audiosocket]
host = "127.0.0.1"
port = 0
default_agent = "demo/probe"
""",
    )
    known: set[str] = set()
    async with node_process(config) as node:
        http = await node.ready()
        listening = await node.wait_record(lambda r: r.get("msg") == "audiosocket listening")
        port = int(listening["port"])
        first, first_id = await _start_call(node, port, known)
        assert "Version one" in _agent_lines(await _agent_said(http, first_id))
        # the file changes while that call is live; SIGHUP
        probe.write_text(probe_spec("Version two speaking."))
        node.signal(signal.SIGHUP)
        changed = await node.wait_record(
            lambda r: r.get("msg") == "agent file changed: new version" and r["agent"] == "probe"
        )
        assert (changed["old_version"], changed["new_version"]) == (1, 2)
        assert changed["fields"] == ["greeting"]
        second, second_id = await _start_call(node, port, known)
        assert "Version two" in _agent_lines(await _agent_said(http, second_id))
        await _hang_up(second)
        await _hang_up(first)
        ended = [
            await _poll(http, f"/v1/calls/{i}", lambda b: b["status"] == "ended")
            for i in (first_id, second_id)
        ]
        assert [d["agent_version"] for d in ended] == [1, 2]
        assert "Version two" not in _agent_lines(ended[0])  # the live call kept version 1
        assert await node.stop() == 0
    await _restart_with_edits(config, probe)


def _edit(path: Path, text: str) -> None:
    path.write_text(text)


async def _restart_with_edits(config: Path, probe: Path) -> None:
    """A restart with another edit: the node starts on a new version; then an invalid edit."""
    _edit(probe, probe_spec("Version three speaking."))
    async with node_process(config) as node:
        http = await node.ready()
        changed = await node.wait_record(
            lambda r: r.get("msg") == "agent file changed: new version" and r["agent"] == "probe"
        )
        assert (changed["old_version"], changed["new_version"]) == (2, 3)
        # an invalid edit on SIGHUP: refused, the field named, version 3 stays
        _edit(probe, probe_spec("Version four.").replace("greeting = ", "greeting = 4 #", 1))
        seen = len(node.records)
        node.signal(signal.SIGHUP)
        refused = await node.wait_record(
            lambda r: r.get("msg", "").startswith("agent file refused"), after=seen
        )
        assert refused["agent"] == "probe" and refused["version"] == 3
        assert "greeting" in refused["error"] and str(probe) in refused["error"]
        current = (await http.get("/v1/agents/probe")).json()
        assert (current["version"], current["spec"]["greeting"]) == (3, "Version three speaking.")
        assert await node.stop() == 0


async def test_in_json_mode_every_line_the_node_writes_is_json(tmp_path: Path) -> None:
    ports = node_rtp_ports()
    config = write_config(
        tmp_path,
        f"""
[sip]
host = "127.0.0.1"
port = 0
rtp_port = {ports["rtp_port"]}
rtp_port_range = {ports["rtp_port_range"]}

[audiosocket]
enabled = false
""",
    )
    wav = write_ulaw_wav(np.zeros(16_000, np.int16), tmp_path / "silence.wav")
    async with node_process(config) as node:
        await node.ready()
        sip = await node.wait_record(lambda r: r.get("msg") == "sip listening")
        result = await run_sipp(
            "uac_stream.xml",
            int(sip["port"]),
            tmp_path / "sipp",
            media_port=free_port(),
            fill={"WAV": str(wav), "LEAD_MS": "1000", "HOLD_MS": "2000", "DTMF": ""},
        )
        assert result.returncode == 0, result.explain()
        assert await node.stop() == 0
    assert any(stream == "stdout" for stream, _ in node.lines)  # the /phone line
    assert any(r["logger"].startswith("sip") for r in node.records)  # the SIP side logged
    assert any(r["logger"] == "console" for r in node.records)  # pjlib's first lines, as records
    not_json = [(stream, line) for stream, line in node.lines if not _is_record(line)]
    assert not not_json, "\n".join(f"{stream}: {line}" for stream, line in not_json)


def _is_record(line: str) -> bool:
    try:
        doc = json.loads(line)
    except ValueError:
        return False
    return isinstance(doc, dict) and {"ts", "level", "logger", "msg"} <= doc.keys()
