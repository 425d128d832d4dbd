"""Issue 17's campaign, dialled for real: two `voicenode serve` processes sharing one PostgreSQL
run a campaign of 20 contacts through their SIP trunk, a sipp far end (`far_end.py`) that
answers each number as a person, an answering machine, busy or no answer (8, 4, 4 and 4 of
them). The retry policy tries busy and no-answer contacts once more after a minute; the
campaign's window is open all week. The campaign is started through one node, which dials at
once, then paused there and resumed through the other, which is rung and dials at once too (so
both place calls whatever the timing: left to its 30 s idle wake, the other could find the
first round already dialled and lose every retry to the node that sleeps until it is due).
That other node is restarted (SIGTERM: it drains its calls, then starts again) once it has a
call of the campaign up; the first learns of the resume when one of its own calls ends.

Checked once the campaign has completed:
- every contact's final disposition is its kind's (the node's own answering-machine detection
  told the person from the machine on the audio the far end played, and left each machine
  the voicemail message after its beep), with the attempts the policy allows (1 for people
  and machines, 2 for busy and no answer);
- the far end, the witness, saw each number dialled exactly that many times (distinct
  Call-IDs per number in its message log): nothing was dialled twice, across the restart and
  across the two nodes;
- both nodes placed calls of the campaign.

A crash is the other restart: a node killed (SIGKILL) with its calls up loses them. Restarted
under the same name, it ends its old leases as failed attempts and, with `failed` in the
policy, dials those contacts again only after the backoff: the far end sees each number once
for the lost call and once for the retry, never more.

The calling window is not waited for here in real time: its rules are shown on virtual clocks
by tests/voicenode/test_dialler.py::test_retries_follow_the_policy_inside_the_calling_window
(the dialler: a retry due after the window closes waits for the next opening),
tests/control_api/test_campaigns_pacing.py (a contact's own zone, the next opening across a
DST change, a whole campaign) and tests/control_api/test_campaigns_windows.py.
"""

from __future__ import annotations

import signal
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import pytest

from tests.support.pg import PostgresServer
from tests.support.pg import pg_server as pg_server  # pytest fixture

from .campaign_nodes import (
    AGENT,
    all_contacts,
    attempts,
    completed,
    dialling_nodes,
    logged,
    move_campaign,
    start_campaign,
    wait_for,
)
from .far_end import FarEnd, FarEndAudio, Kind, far_end, kind_of, number, render_audio
from .fleet import FleetNode, add_tenant

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
"""From the restart to completed: a round of calls and the retries a backoff minute later, on
a loaded machine."""
DRAIN_LIMIT_S: Final = 60.0
"""A restarted node's drain: its calls of the campaign end (a person's takes ~10 s)."""
LIVE_LIMIT_S: Final = 90.0
"""Until a node has its calls up (the resume rings it: it dials at once), on a loaded machine."""


def campaign_body(numbers: list[str], retry: dict[str, Any]) -> dict[str, Any]:
    every_day = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    return {
        "name": "reminders",
        "agent": "reminder",
        "via": "sip",
        "schedule": {
            "timezone": "UTC",
            "windows": [{"days": every_day, "start": "00:00", "end": "24:00"}],
        },
        "max_concurrent": 8,
        "calls_per_minute": 600,
        "retry": retry,
        "voicemail": "leave_message",
        "contacts": [{"number": n, "variables": {"name": f"Contact {n[-3:]}"}} for n in numbers],
    }


def mixed_numbers() -> list[str]:
    """The 20 contacts' numbers, the kinds interleaved (as a real list would be)."""
    numbers = [number(kind, n) for kind, count in MIX.items() for n in range(count)]
    return sorted(numbers, key=lambda dialled: (int(dialled[-3:]), dialled))


async def restart_while_dialling(
    node: FleetNode, others: list[FleetNode], store_url: str
) -> tuple[datetime, datetime]:
    """Once `node` has a call of the campaign up: SIGTERM (it drains), then start it again.
    When it was stopped and when it was back (UTC)."""

    async def live_call() -> bool:
        return any(a.node == node.name and a.ended_at is None for a in await attempts(store_url))

    await wait_for(live_call, f"a live attempt on {node.name}", LIVE_LIMIT_S, [node, *others])
    stopped = datetime.now(UTC)
    node.signal(signal.SIGTERM)  # draining: its live calls end and their attempts finish
    assert await node.wait_exit(DRAIN_LIMIT_S) == 0, node.log()
    node.start()
    await node.wait_ready()
    return stopped, datetime.now(UTC)


@pytest.fixture(scope="module")
def audio(tmp_path_factory: pytest.TempPathFactory) -> FarEndAudio:
    return render_audio(tmp_path_factory.mktemp("far-end-audio"))


@pytest.fixture
async def far(tmp_path: Path, audio: FarEndAudio) -> AsyncIterator[FarEnd]:
    async with far_end(tmp_path / "far", audio, ring_ms=RING_MS) as running:
        yield running


@pytest.fixture
def store_url(pg_server: PostgresServer) -> str:
    return pg_server.create_database()


async def test_a_campaign_dials_each_contact_as_its_policy_says_across_restart_and_nodes(
    far: FarEnd, store_url: str, tmp_path: Path
) -> None:
    async with dialling_nodes(tmp_path, store_url, far, "ab") as nodes:
        first, second = nodes
        tenant = await add_tenant(second, "acme", [], AGENT)
        # started through the second node (its dialler is rung and dials at once), paused there
        # and resumed through the first (rung, it dials at once), which is restarted once it has
        # a call up
        body = campaign_body(mixed_numbers(), RETRY)
        campaign = await start_campaign(second, tenant, body)
        await move_campaign(second, tenant, campaign, "pause")
        await move_campaign(first, tenant, campaign, "resume")
        stopped, back = await restart_while_dialling(first, [second], store_url)
        done = await completed(second, tenant, campaign, CAMPAIGN_LIMIT_S, nodes)
        rows = await all_contacts(second, tenant, campaign)
    made = await attempts(store_url)

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


async def kill_with_every_call_up(node: FleetNode, store_url: str, calls: int, far: FarEnd) -> None:
    """Once `node` has `calls` attempts live and the far end has seen each of their numbers
    dialled: SIGKILL (its calls are lost), then start it again under the same name."""

    async def all_up() -> bool:
        live = [a for a in await attempts(store_url) if a.ended_at is None]
        rang = set(far.dialled())
        return len(live) == calls and len(rang) == calls

    await wait_for(all_up, f"{calls} calls up on {node.name}", LIVE_LIMIT_S, [node])
    node.signal(signal.SIGKILL)
    assert await node.wait_exit(DRAIN_LIMIT_S) == -signal.SIGKILL
    node.start()
    await node.wait_ready()


async def test_a_killed_node_redials_its_lost_calls_once_after_the_backoff(
    far: FarEnd, store_url: str, tmp_path: Path
) -> None:
    # as many people as the node has room for: all claimed and dialled at once, none later
    people = [number("human", n) for n in range(4)]
    retry = {"max_attempts": 2, "backoff_minutes": 1, "on": ["failed"]}
    async with dialling_nodes(tmp_path, store_url, far, "a") as nodes:
        (node,) = nodes
        tenant = await add_tenant(node, "acme", [], AGENT)
        campaign = await start_campaign(node, tenant, campaign_body(people, retry))
        await kill_with_every_call_up(node, store_url, len(people), far)
        await completed(node, tenant, campaign, CAMPAIGN_LIMIT_S, nodes)
        rows = await all_contacts(node, tenant, campaign)

    assert far.dialled() == Counter({n: 2 for n in people}), far.dialled()
    for row in rows:
        lost, retried = row["history"]
        assert (lost["disposition"], retried["disposition"]) == ("failed", "answered_human"), row
        waited = datetime.fromisoformat(retried["started_at"]) - datetime.fromisoformat(
            lost["ended_at"]
        )
        assert waited >= timedelta(minutes=1), row  # not before the backoff
