"""Real `voicenode serve` processes as a fleet behind Kamailio: one shared PostgreSQL store.

:func:`open_fleet` starts N nodes (``fleet-a``, ``fleet-b``, ...) as subprocesses, each with
its own free SIP, RTP and HTTP ports on 127.0.0.1, the same store URL and secrets key (what
nodes sharing a store must have), the agent's voice deterministic, and Kamailio's address
(127.0.0.1) trusted for the tenant header. It yields once every node answers ``/readyz`` with
200 (models loaded) and stops them all at the end (SIGTERM, then SIGKILL).

The call records (``calls`` rows: which node took a call, its tenant, how it ended) are read
straight from the shared database; a call's transcript through a node's ``/v1/calls/{id}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from control_api.store.crypto import new_key
from tests.support.ports import free_port, free_port_run
from tests.support.sipp import RtpTap, SippResult, run_sipp

from .sipstack import HOST, REPO, Daemon, sip_options

ADMIN_KEY = "fleet-admin-key-0123456789abcdef"
READY_TIMEOUT_S = 120.0
"""Loading Whisper, Piper and Silero in two processes at once on a loaded 2-core machine."""
NODE_RTP_PORTS = 20


@dataclass
class FleetNode:
    """One `voicenode serve` process (restartable: the same config, name and ports)."""

    name: str
    workdir: Path
    store_url: str
    secrets_key: str
    sip_port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=lambda: free_port(socket.SOCK_STREAM))
    rtp_port: int = field(default_factory=lambda: free_port_run(NODE_RTP_PORTS))
    daemon: Daemon | None = None
    starts: int = 0

    @property
    def uri(self) -> str:
        """The node as Kamailio's dispatcher list names it."""
        return f"sip:{HOST}:{self.sip_port}"

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.http_port}"

    @property
    def process(self) -> subprocess.Popen[bytes]:
        assert self.daemon is not None, f"{self.name} was never started"
        return self.daemon.process

    def config(self) -> str:
        return f"""
[node]
name = "{self.name}"
data_dir = "{self.workdir / "data"}"
max_calls = 4
drain_timeout_s = 90.0
log_format = "json"

[http]
host = "{HOST}"
port = {self.http_port}
admin_key = "{ADMIN_KEY}"

[tts]
deterministic = true

[sip]
host = "{HOST}"
port = {self.sip_port}
transports = ["udp"]
rtp_port = {self.rtp_port}
rtp_port_range = {NODE_RTP_PORTS}
trusted_proxies = ["{HOST}/32"]

[audiosocket]
enabled = false

[store]
url = "{self.store_url}"
secrets_key = "{self.secrets_key}"
"""

    def start(self) -> None:
        """Start the process (again, after it exited); :meth:`wait_ready` waits for it."""
        assert self.daemon is None or self.daemon.process.poll() is not None
        self.workdir.mkdir(parents=True, exist_ok=True)
        path = self.workdir / "voicenode.toml"
        path.write_text(self.config())
        self.starts += 1
        env = {k: v for k, v in os.environ.items() if not k.startswith("VOICENODE_")}
        argv = [sys.executable, "-m", "voicenode.cli", "serve", "--config", str(path)]
        log = self.workdir / f"node-{self.starts}.log"
        self.daemon = Daemon(self.name, argv, log, env=env, cwd=REPO)

    async def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        """/readyz 200 (the models are in) and OPTIONS 200 (the SIP side is up)."""
        deadline = time.monotonic() + timeout_s
        async with httpx.AsyncClient(base_url=self.url, timeout=5) as http:
            while True:
                assert self.daemon is not None
                self.daemon.check_alive()
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get("/readyz")).status_code == 200:
                        if await asyncio.to_thread(sip_options, self.sip_port, 1.0) == 200:
                            return
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{self.name} not ready in {timeout_s} s:\n{self.log()}")
                await asyncio.sleep(0.2)

    def signal(self, sig: signal.Signals) -> None:
        self.process.send_signal(sig)

    async def wait_exit(self, timeout_s: float) -> int:
        code: int = await asyncio.to_thread(self.process.wait, timeout_s)
        return code

    async def stop(self) -> None:
        if self.daemon is not None:
            await asyncio.to_thread(self.daemon.stop)

    def log(self, tail_lines: int = 80) -> str:
        return self.daemon.log(tail_lines) if self.daemon is not None else ""

    def logged(self, message: str) -> list[dict[str, Any]]:
        """This run's JSON log records whose message (``msg``) is ``message``."""
        assert self.daemon is not None
        found = []
        for line in self.daemon.log_path.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if isinstance(record, dict) and record.get("msg") == message:
                    found.append(record)
        return found


@contextlib.asynccontextmanager
async def open_fleet(
    workdir: Path, store_url: str, count: int = 2
) -> AsyncIterator[list[FleetNode]]:
    key = new_key()
    nodes = [
        FleetNode(f"fleet-{chr(ord('a') + i)}", workdir / f"node{i}", store_url, key)
        for i in range(count)
    ]
    try:
        for node in nodes:
            node.start()
        await asyncio.gather(*(node.wait_ready() for node in nodes))
        yield nodes
    finally:
        await asyncio.gather(*(node.stop() for node in nodes))
        for node in nodes:
            print(f"--- {node.name} log ---\n{node.log(40)}")


# ---------------------------------------------------------------- the shared store


@dataclass(frozen=True)
class CallRecord:
    id: str
    node: str
    tenant_id: str
    from_uri: str
    ended: bool
    end_reason: str | None
    disposition: str | None


async def call_records(store_url: str) -> list[CallRecord]:
    """Every row of the shared ``calls`` table, oldest first."""
    engine = create_async_engine(store_url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                text(
                    "SELECT id, node, tenant_id, from_uri, ended_at IS NOT NULL, end_reason,"
                    " disposition FROM calls ORDER BY started_at, id"
                )
            )
            return [CallRecord(*row) for row in rows]
    finally:
        await engine.dispose()


async def wait_records(
    store_url: str,
    check: Callable[[list[CallRecord]], bool],
    what: str,
    timeout_s: float = 60.0,
) -> list[CallRecord]:
    """Poll the ``calls`` table until ``check`` holds; fail naming ``what`` after the bound."""
    deadline = time.monotonic() + timeout_s
    while True:
        records = await call_records(store_url)
        if check(records):
            return records
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}: {records}")
        await asyncio.sleep(0.25)


def by_tag(records: Sequence[CallRecord], tag: str) -> CallRecord:
    """The one call whose From header carries the caller's ``tag``."""
    (record,) = [r for r in records if f"tag={tag}" in r.from_uri]
    return record


async def transcript(node: FleetNode, call_id: str) -> list[dict[str, Any]]:
    """The call's final transcript lines, through the node's control API."""
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    async with httpx.AsyncClient(base_url=node.url, timeout=20, headers=headers) as http:
        reply = await http.get(f"/v1/calls/{call_id}")
    reply.raise_for_status()
    lines: list[dict[str, Any]] = reply.json()["transcript"]
    return lines


async def add_tenant(node: FleetNode, name: str, numbers: Sequence[str], agent_toml: str) -> str:
    """A tenant with one agent answering ``numbers``, created through ``node``'s API; its id."""
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    async with httpx.AsyncClient(base_url=node.url, timeout=20, headers=headers) as http:
        made = await http.post("/v1/tenants", json={"name": name})
        assert made.status_code == 201, made.text
        tenant: str = made.json()["id"]
        agent = await http.post("/v1/agents", params={"tenant": tenant}, json={"toml": agent_toml})
        assert agent.status_code == 201, agent.text
        for number in numbers:
            routed = await http.post(
                "/v1/numbers",
                params={"tenant": tenant},
                json={"number": number, "agent": agent.json()["name"]},
            )
            assert routed.status_code == 201, routed.text
    return tenant


# ---------------------------------------------------------------- callers


@dataclass(frozen=True)
class Caller:
    """A sipp call through the proxy and what it heard (its RTP, tapped on loopback)."""

    result: SippResult
    audio: npt.NDArray[np.int16]

    @property
    def tag(self) -> str:
        """The From tag of the caller's INVITE (the call record's ``from_uri`` carries it)."""
        sent = self.result.sent("INVITE")
        assert sent, self.result.explain()
        header = sent[0].header("From") or ""
        found = re.search(r";tag=([^;\s>]+)", header)
        assert found, header
        return found.group(1)

    def media_ports(self) -> list[int]:
        """The m=audio ports of every SDP body the caller sent or received."""
        return [int(p) for p in re.findall(r"m=audio (\d+)", self.result.messages)]


async def place_call(
    proxy_port: int,
    workdir: Path,
    wav: Path,
    *,
    service: str = "1000",
    lead_ms: int = 5500,
    hold_ms: int = 9000,
) -> Caller:
    """INVITE ``service`` through the proxy, wait ``lead_ms`` (the greeting), stream ``wav``
    (8 kHz mu-law), hold ``hold_ms`` (the agent's answer), hang up."""
    media = free_port_run(4)  # sipp binds the media port and the 3 after it (RTCP, video)
    fill = {"WAV": str(wav), "LEAD_MS": str(lead_ms), "HOLD_MS": str(hold_ms), "DTMF": ""}
    timeout_s = (lead_ms + hold_ms) / 1000 + 30
    with RtpTap(media) as tap:
        result = await run_sipp(
            "uac_stream.xml",
            proxy_port,
            workdir,
            service=service,
            media_port=media,
            fill=fill,
            timeout_s=timeout_s,
        )
    return Caller(result, tap.pcmu_audio())
