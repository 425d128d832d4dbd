"""Issue 17's campaign, dialled for real: two `voicenode serve` processes sharing one PostgreSQL
run a campaign of 20 contacts through their SIP trunk, a sipp far end (`far_end.py`) that
answers each number as a person, an answering machine, busy or no answer (8, 4, 4 and 4 of
them). The retry policy tries busy and no-answer contacts once more after a minute; the
campaign's window is open all week. The campaign is started through one node; the other is
restarted (SIGTERM: it drains its calls, then starts again) once it has a call of it up.

Checked once the campaign has completed:
- every contact's final disposition is its kind's (the node's own answering-machine detection
  told the person from the machine on the audio the far end played, and left each machine
  the voicemail message after its beep), with the attempts the policy allows (1 for people
  and machines, 2 for busy and no answer);
- the far end, the witness, saw each number dialled exactly that many times (distinct
  Call-IDs per number in its message log): nothing was dialled twice, across the restart and
  across the two nodes;
- both nodes placed calls of the campaign.

The calling window is not waited for here in real time: its rules are shown on virtual clocks
by tests/voicenode/test_dialler.py::test_retries_follow_the_policy_inside_the_calling_window
(the dialler: a retry due after the window closes waits for the next opening),
tests/control_api/test_campaigns_pacing.py (a contact's own zone, the next opening across a
DST change, a whole campaign) and tests/control_api/test_campaigns_windows.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from control_api.store.crypto import new_key
from tests.support.pg import PostgresServer
from tests.support.pg import pg_server as pg_server  # pytest fixture

from .far_end import FarEnd, FarEndAudio, Kind, far_end, kind_of, number, render_audio
from .fleet import ADMIN_KEY, FleetNode, add_tenant
from .sipstack import HOST

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

MIX: Final[dict[Kind, int]] = {"human": 8, "machine": 4, "busy": 4, "no_answer": 4}
RETRY: Final = {"max_attempts": 2, "backoff_minutes": 1, "on": ["busy", "no_answer"]}
EXPECTED: Final[dict[Kind, tuple[str, int]]] = {
    "human": ("answered_human", 1),
    "machine": ("voicemail_left", 1),
    "busy": ("busy", 2),
    "no_answer": ("no_answer", 2),
}
"""Each kind's final disposition and how many times the policy dials it."""
RING_MS: Final = 2000
"""The far end's no-answer: 180 Ringing, then 480 after this long."""
CAMPAIGN_LIMIT_S: Final = 180.0
"""From start to completed: two rounds of calls a backoff minute apart and a restart, on a
loaded machine."""
DRAIN_LIMIT_S: Final = 60.0
"""A restarted node's drain: its calls of the campaign end (a person's takes ~10 s)."""
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


def contacts() -> list[dict[str, Any]]:
    """The campaign's 20 contacts, the kinds interleaved (as a real list would be)."""
    numbers = [number(kind, n) for kind, count in MIX.items() for n in range(count)]
    numbers.sort(key=lambda dialled: (int(dialled[-3:]), dialled))
    return [{"number": n, "variables": {"name": f"Contact {i}"}} for i, n in enumerate(numbers)]


def campaign_body() -> dict[str, Any]:
    return {
        "name": "reminders",
        "agent": "reminder",
        "via": "sip",
        "schedule": {
            "timezone": "UTC",
            "windows": [
                {
                    "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                    "start": "00:00",
                    "end": "24:00",
                },
            ],
        },  # fmt: skip
        "max_concurrent": 8,
        "calls_per_minute": 600,
        "retry": RETRY,
        "voicemail": "leave_message",
        "contacts": contacts(),
    }


def client(node: FleetNode) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    return httpx.AsyncClient(base_url=node.url, headers=headers, timeout=20)


async def start_campaign(node: FleetNode, tenant: str) -> str:
    async with client(node) as http:
        made = await http.post("/v1/campaigns", params={"tenant": tenant}, json=campaign_body())
        assert made.status_code == 201, made.text
        campaign: str = made.json()["id"]
        started = await http.post(f"/v1/campaigns/{campaign}/start", params={"tenant": tenant})
        assert started.status_code in (200, 201), started.text
    return campaign


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


async def restart_while_dialling(
    node: FleetNode, others: list[FleetNode], store_url: str
) -> tuple[datetime, datetime]:
    """Once `node` has a call of the campaign up: SIGTERM (it drains), then start it again.
    When it was stopped and when it was back (UTC)."""

    async def live_call() -> bool:
        return any(a.node == node.name and a.ended_at is None for a in await attempts(store_url))

    await wait_for(live_call, f"a live attempt on {node.name}", 90.0, [node, *others])
    stopped = datetime.now(UTC)
    node.signal(signal.SIGTERM)  # draining: its live calls end and their attempts finish
    assert await node.wait_exit(DRAIN_LIMIT_S) == 0, node.log()
    node.start()
    await node.wait_ready()
    return stopped, datetime.now(UTC)


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


@pytest.fixture(scope="module")
def audio(tmp_path_factory: pytest.TempPathFactory) -> FarEndAudio:
    return render_audio(tmp_path_factory.mktemp("far-end-audio"))


@pytest.fixture
async def far(tmp_path: Path, audio: FarEndAudio) -> AsyncIterator[FarEnd]:
    async with far_end(tmp_path / "far", audio, ring_ms=RING_MS) as running:
        yield running


@pytest.fixture
async def nodes(
    tmp_path: Path, pg_server: PostgresServer, far: FarEnd
) -> AsyncIterator[list[FleetNode]]:
    url, key = pg_server.create_database(), new_key()
    made = [DiallingNode(f"fleet-{n}", tmp_path / f"node-{n}", url, key) for n in "ab"]
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


async def test_a_campaign_dials_each_contact_as_its_policy_says_across_restart_and_nodes(
    nodes: list[FleetNode], far: FarEnd
) -> None:
    first, second = nodes
    tenant = await add_tenant(second, "acme", [], AGENT)
    # started through the second node: its dialler is rung and dials at once; the first finds
    # the campaign at its next idle wake, and is restarted once it has a call of it up
    campaign = await start_campaign(second, tenant)
    stopped, back = await restart_while_dialling(first, [second], first.store_url)

    async def completed() -> dict[str, Any] | None:
        state = await campaign_state(second, tenant, campaign)
        return state if state["state"] == "completed" else None

    done = await wait_for(completed, "the campaign to complete", CAMPAIGN_LIMIT_S, nodes)
    rows = await all_contacts(second, tenant, campaign)
    made = await attempts(first.store_url)

    assert len(rows) == sum(MIX.values()), done
    for row in rows:
        kind = kind_of(row["number"])
        assert kind is not None, row
        disposition, tries = EXPECTED[kind]
        assert (row["disposition"], row["attempts"]) == (disposition, tries), row
        assert [a["disposition"] for a in row["history"]][-1] == disposition, row
        assert len(row["history"]) == tries, row

    dialled = far.dialled()
    expected = {row["number"]: EXPECTED[kind_of(row["number"]) or "human"][1] for row in rows}
    assert dialled == Counter(expected), f"the far end saw {dialled}"
    assert {a.node for a in made} == {"fleet-a", "fleet-b"}, made
    assert all(a.ended_at is not None for a in made), made
    # each machine's message started after its beep, which the node heard on the wire
    left = [record.get("after") for record in logged(nodes, "voicemail left")]
    assert left == ["beep"] * MIX["machine"], left
    amd = Counter((r.get("result"), r.get("reason")) for r in logged(nodes, "amd decided"))
    print(f"amd decisions: {dict(amd)}")
    before = Counter(a.node for a in made if a.started_at < stopped)
    after = Counter(a.node for a in made if a.started_at > back)
    print(f"attempts by node: before the restart {dict(before)}, after it {dict(after)}")
    print("progress:", done["progress"])
