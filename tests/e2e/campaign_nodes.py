"""Voice nodes that dial campaigns through the far end (`far_end.py`), and reading what they
did: the campaign through the API, its attempts straight from the shared store, the nodes' log
records across restarts. Used by `test_campaign_dialling.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from control_api.store.crypto import new_key

from .far_end import FarEnd
from .fleet import ADMIN_KEY, FleetNode
from .sipstack import HOST

AGENT: Final = """
name = "reminder"
kind = "flow"
greeting = "Hi, this is Bright Smile Dental."

[amd]
enabled = true
on_machine = "leave_message"
voicemail_message = "Hi $name, this is Bright Smile Dental. See you tomorrow at 2 PM."

[flow]
start = "main"

[flow.nodes.main]
do = [{ say = "See you tomorrow. Goodbye." }, { end = true }]
"""


class DiallingNode(FleetNode):
    """A fleet node whose numbers go out through the far end's trunk, +1555 allowed."""

    trunk_uri: str = ""

    def config(self) -> str:
        return f"""
[node]
name = "{self.name}"
data_dir = "{self.workdir / "data"}"
max_calls = 4
tenant_share = 1.0
drain_timeout_s = 60.0
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
rtp_port_range = 20

[sip.trunk]
uri = "{self.trunk_uri}"

[dialplan]
allowed_prefixes = ["+1555"]
calls_per_minute = 600

[audiosocket]
enabled = false

[store]
url = "{self.store_url}"
secrets_key = "{self.secrets_key}"
"""


@contextlib.asynccontextmanager
async def dialling_nodes(
    workdir: Path, store_url: str, far: FarEnd, names: str = "ab"
) -> AsyncIterator[list[FleetNode]]:
    """`fleet-<name>` for each of `names`, on one store, their trunk the far end; once every
    one is ready. Stopped on the way out (their last log lines printed)."""
    key = new_key()
    made = [DiallingNode(f"fleet-{n}", workdir / f"node-{n}", store_url, key) for n in names]
    try:
        for node in made:
            node.trunk_uri = far.trunk_uri
            node.start()
        await asyncio.gather(*(node.wait_ready() for node in made))
        yield list[FleetNode](made)
    finally:
        await asyncio.gather(*(node.stop() for node in made))
        for node in made:
            print(f"--- {node.name} log ---\n{node.log(60)}")


def client(node: FleetNode) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    return httpx.AsyncClient(base_url=node.url, headers=headers, timeout=20)


async def start_campaign(node: FleetNode, tenant: str, body: dict[str, Any]) -> str:
    """A campaign of `body` created and started through `node`'s API; its id."""
    async with client(node) as http:
        made = await http.post("/v1/campaigns", params={"tenant": tenant}, json=body)
        assert made.status_code == 201, made.text
        campaign: str = made.json()["id"]
    await move_campaign(node, tenant, campaign, "start")
    return campaign


async def move_campaign(node: FleetNode, tenant: str, campaign: str, action: str) -> None:
    """`POST /v1/campaigns/{campaign}/{action}` through `node`'s API (which rings its dialler)."""
    async with client(node) as http:
        moved = await http.post(f"/v1/campaigns/{campaign}/{action}", params={"tenant": tenant})
        assert moved.status_code in (200, 201), moved.text


@dataclass(frozen=True)
class Attempt:
    """One row of `campaign_attempts`: which node made it, when, and how it ended."""

    node: str
    contact_id: int
    started_at: datetime
    ended_at: datetime | None
    disposition: str | None


async def attempts(store_url: str) -> list[Attempt]:
    """Every attempt in the store, oldest first."""
    engine = create_async_engine(store_url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                text(
                    "SELECT node, contact_id, started_at, ended_at, disposition"
                    " FROM campaign_attempts ORDER BY started_at, id"
                )
            )
            return [Attempt(*row) for row in rows]
    finally:
        await engine.dispose()


async def wait_for(
    check: Callable[[], Awaitable[Any]], what: str, limit_s: float, nodes: list[FleetNode]
) -> Any:
    """`check()` until it returns something truthy; every node must stay up meanwhile."""
    deadline = time.monotonic() + limit_s
    while True:
        for node in nodes:
            assert node.daemon is not None
            node.daemon.check_alive()
        if found := await check():
            return found
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {n.name} ---\n{n.log(40)}" for n in nodes)
            raise AssertionError(f"timed out after {limit_s:.0f} s waiting for {what}\n{logs}")
        await asyncio.sleep(0.25)  # polling the store and the API, each answer bounded


async def completed(
    node: FleetNode, tenant: str, campaign: str, limit_s: float, nodes: list[FleetNode]
) -> dict[str, Any]:
    """The campaign, once its state is completed."""

    async def done() -> dict[str, Any] | None:
        state = await campaign_state(node, tenant, campaign)
        return state if state["state"] == "completed" else None

    found: dict[str, Any] = await wait_for(done, "the campaign to complete", limit_s, nodes)
    return found


def logged(nodes: list[FleetNode], message: str) -> list[dict[str, Any]]:
    """Every JSON log record whose message is `message`, from every run of every node."""
    found = []
    for node in nodes:
        for path in sorted(node.workdir.glob("node-*.log")):
            for line in path.read_text(errors="replace").splitlines():
                with contextlib.suppress(ValueError):
                    record = json.loads(line)
                    if isinstance(record, dict) and record.get("msg") == message:
                        found.append(record)
    return found


async def campaign_state(node: FleetNode, tenant: str, campaign: str) -> dict[str, Any]:
    async with client(node) as http:
        got = await http.get(f"/v1/campaigns/{campaign}", params={"tenant": tenant})
    assert got.status_code == 200, got.text
    body: dict[str, Any] = got.json()
    return body


async def all_contacts(node: FleetNode, tenant: str, campaign: str) -> list[dict[str, Any]]:
    async with client(node) as http:
        got = await http.get(
            f"/v1/campaigns/{campaign}/contacts", params={"tenant": tenant, "limit": 100}
        )
    assert got.status_code == 200, got.text
    found: list[dict[str, Any]] = got.json()["contacts"]
    return found
