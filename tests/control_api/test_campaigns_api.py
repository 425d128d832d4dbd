"""Campaigns over HTTP (`control_api.campaigns_api`) on the served app with the real bearer
auth, on SQLite and a real PostgreSQL: a draft created and read back with its settings and
progress, bad bodies refused naming the field, unknown agents and numbers outside the dial plan
refused with nothing stored, the lifecycle moves (409 on a refused one), roles, another
tenant's campaign a 404 on every route, and the pages of campaigns and of contacts (by status,
with the attempts the dialler's store calls recorded). A campaign whose contacts were erased:
its progress counts zeros, start is refused, resume is not. (A campaign created empty and
filled by CSV: `test_contacts_upload_api`.)"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest

from config.telephony import DialPlanSettings
from control_api import subject_rows
from control_api.campaigns import rows
from control_api.campaigns.lifecycle import Disposition
from control_api.campaigns.model import Retry, parse_campaign, read_settings
from tests.control_api.test_isolation import new_tenant
from tests.support.harness import Node, auth, node_settings, serve_node
from tests.support.host import FakeHost, temp_store
from tests.support.pg import PostgresServer, pg_server  # noqa: F401

FROM: dict[str, Any] = {"from": "+14155550000"}
WINDOWS = [{"days": ["mon", "tue"], "start": "09:00", "end": "17:00"}]
PLAN = DialPlanSettings(allowed_prefixes=("+1415",), refused_prefixes=("+1415999",))


def body(n: int = 3, **changes: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "name": "Reminders",
        "agent": "receptionist",
        "via": "sip",
        "contacts": [
            {"number": f"+1415555{i:04d}", "variables": {"name": f"P{i}"}} for i in range(n)
        ],
        "schedule": {
            "timezone": "America/New_York",
            "windows": WINDOWS,
        },
        "max_concurrent": 2,
        "calls_per_minute": 10,
        "retry": {"max_attempts": 2, "backoff_minutes": 30, "on": ["busy"]},
    }
    fields.update(changes)
    return fields


@pytest.fixture(params=["sqlite", "postgres"])
async def node(request: pytest.FixtureRequest) -> AsyncIterator[Node]:
    url = ""
    if request.param == "postgres":
        server: PostgresServer = request.getfixturevalue("pg_server")
        url = server.create_database()
    settings = msgspec.structs.replace(node_settings(), dialplan=PLAN)
    async with temp_store(url) as store:
        host = FakeHost(max_calls=2)
        await host.attach_store(store)
        async with serve_node(host, settings) as served:
            yield served


async def create(node: Node, headers: dict[str, str] | None = None, **kw: Any) -> dict[str, Any]:
    resp = await node.http.post("/v1/campaigns", json=body(**kw), headers=headers or auth())
    assert resp.status_code == 201, resp.text
    created: dict[str, Any] = resp.json()
    return created


async def every_page(node: Node, path: str, field: str, limit: int) -> list[dict[str, Any]]:
    """The items of every page of `path`, `limit` a page, following `next_cursor`."""
    items: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": limit}
    while True:
        resp = await node.http.get(path, params=params, headers=auth())
        assert resp.status_code == 200, resp.text
        page = resp.json()
        assert 1 <= len(page[field]) <= limit
        items += page[field]
        if page["next_cursor"] is None:
            return items
        params["cursor"] = page["next_cursor"]


async def give_range(node: Node, tenant: str, ranges: list[str]) -> None:
    """The platform admin gives `tenant` its number ranges (what it may present as `from`)."""
    resp = await node.http.put(
        f"/v1/tenants/{tenant}/number-ranges", json={"ranges": ranges}, headers=auth()
    )
    assert resp.status_code == 200, resp.text


async def test_create_and_read_back(node: Node) -> None:
    await give_range(node, "demo", ["+1415555000*"])
    created = await create(node, **FROM)
    assert created["state"] == "draft" and created["name"] == "Reminders"
    assert (created["agent"], created["via"]) == ("receptionist", "sip")
    settings = created["settings"]
    assert "contacts" not in settings
    assert settings["from"] == "+14155550000" and settings["retry"]["on"] == ["busy"]
    assert settings["schedule"]["windows"][0]["days"] == ["mon", "tue"]
    assert created["progress"] == {
        "contacts": 3,
        "by_status": {"pending": 3, "dialing": 0, "retrying": 0, "done": 0},
        "by_disposition": {},
    }
    shown = await node.http.get(f"/v1/campaigns/{created['id']}", headers=auth())
    assert shown.status_code == 200 and shown.json() == created
    listed = (await node.http.get("/v1/campaigns", headers=auth())).json()
    assert [c["id"] for c in listed["campaigns"]] == [created["id"]]
    assert listed["next_cursor"] is None
    contacts = await node.http.get(f"/v1/campaigns/{created['id']}/contacts", headers=auth())
    assert [c["variables"]["name"] for c in contacts.json()["contacts"]] == ["P0", "P1", "P2"]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"contacts": [{"number": "+14155550001"}, {"number": "4155550002"}]}, "contacts[1]"),
        ({"schedule": {"timezone": "Mars/Olympus", "windows": WINDOWS}}, "Mars/Olympus"),
        (
            {
                "schedule": {
                    "timezone": "UTC",
                    "windows": [{"days": ["mon"], "start": "18:00", "end": "09:00"}],
                }
            },
            "schedule.windows[0]",
        ),
        ({"calls_per_minute": 0}, "calls_per_minute"),
        ({"voicemail": "sing"}, "voicemail"),
        ({"surprise": 1}, "surprise"),
        (
            {"contacts": [{"number": "+14155550001"}, {"number": "+14155550001"}]},
            "contacts[1] repeats",
        ),
    ],
    ids=["number", "timezone", "window", "rate", "voicemail", "unknown", "dup"],
)
async def test_bad_bodies_are_400_naming_the_field(
    node: Node, changes: dict[str, Any], field: str
) -> None:
    resp = await node.http.post("/v1/campaigns", json=body(**changes), headers=auth())
    assert resp.status_code == 400, resp.text
    failure = resp.json()["extra"][0]
    assert field in f"{failure['key']}: {failure['message']}", failure
    listed = (await node.http.get("/v1/campaigns", headers=auth())).json()
    assert listed["campaigns"] == []


async def test_unknown_agent_and_numbers_outside_the_plan(node: Node) -> None:
    resp = await node.http.post("/v1/campaigns", json=body(agent="nobody"), headers=auth())
    assert resp.status_code == 404 and "nobody" in resp.json()["detail"]
    contacts = [{"number": n} for n in ("+14155550001", "+4420700000", "+14159990000")]
    resp = await node.http.post("/v1/campaigns", json=body(contacts=contacts), headers=auth())
    assert resp.status_code == 403, resp.text
    assert "2 contact(s)" in resp.json()["detail"]
    assert [e["key"] for e in resp.json()["extra"]] == [
        "$.contacts[1].number",
        "$.contacts[2].number",
    ]
    listed = (await node.http.get("/v1/campaigns", headers=auth())).json()
    assert listed["campaigns"] == []


async def test_lifecycle_moves(node: Node) -> None:
    cid = (await create(node))["id"]

    async def move(action: str, status: int, state: str | None = None) -> None:
        resp = await node.http.post(f"/v1/campaigns/{cid}/{action}", headers=auth())
        assert resp.status_code == status, resp.text
        if state is not None:
            assert resp.json()["state"] == state
            shown = await node.http.get(f"/v1/campaigns/{cid}", headers=auth())
            assert shown.json()["state"] == state

    await move("pause", 409)
    await move("resume", 409)
    await move("start", 200, "running")
    await move("start", 409)
    await move("pause", 200, "paused")
    await move("pause", 409)
    await move("resume", 200, "running")
    await move("cancel", 200, "cancelled")
    for action in ("start", "pause", "resume", "cancel"):
        await move(action, 409)
    resp = await node.http.post("/v1/campaigns/nope/start", headers=auth())
    assert resp.status_code == 404


async def test_roles_and_other_tenants(node: Node) -> None:
    a_tenant, a = await new_tenant(node, "acme")
    b_tenant, b = await new_tenant(node, "bolt")
    cid = (await create(node, headers=auth(a["operator"]), agent="front"))["id"]
    viewer = auth(a["viewer"])
    resp = await node.http.post("/v1/campaigns", json=body(agent="front"), headers=viewer)
    assert resp.status_code == 403
    assert (await node.http.post(f"/v1/campaigns/{cid}/start", headers=viewer)).status_code == 403
    assert (await node.http.get(f"/v1/campaigns/{cid}", headers=viewer)).status_code == 200
    # acme's agent is not bolt's: bolt's campaign on it would be an unknown agent
    for key in (b["admin"], b["operator"], b["viewer"]):
        headers = auth(key)
        for path in (f"/v1/campaigns/{cid}", f"/v1/campaigns/{cid}/contacts"):
            assert (await node.http.get(path, headers=headers)).status_code == 404
        listed = await node.http.get("/v1/campaigns", headers=headers)
        assert listed.json()["campaigns"] == []
    for action in ("start", "pause", "resume", "cancel"):
        resp = await node.http.post(f"/v1/campaigns/{cid}/{action}", headers=auth(b["admin"]))
        assert resp.status_code == 404
    resp = await node.http.get(
        f"/v1/campaigns/{cid}", params={"tenant": a_tenant}, headers=auth(b["admin"])
    )
    assert resp.status_code == 403
    # the platform admin acts for a tenant it names
    resp = await node.http.get(f"/v1/campaigns/{cid}", params={"tenant": b_tenant}, headers=auth())
    assert resp.status_code == 404
    resp = await node.http.get(f"/v1/campaigns/{cid}", params={"tenant": a_tenant}, headers=auth())
    assert resp.status_code == 200 and resp.json()["state"] == "draft"
    resp = await node.http.get(f"/v1/campaigns/{cid}", headers=auth())  # demo's: not found
    assert resp.status_code == 404
    resp = await node.http.get("/v1/campaigns", params={"tenant": "ghost"}, headers=auth())
    assert resp.status_code == 404


async def test_contacts_paged_by_status_with_attempts(node: Node) -> None:
    cid = (await create(node, n=7))["id"]
    now = datetime.now(UTC)
    retry = Retry(max_attempts=2, backoff_minutes=30, on=("busy",))
    async with node.host.store.session() as session:
        states, _ = await rows.contact_states(session, "demo", cid, now)
        ids = [s.id for s in states]
        lease = timedelta(minutes=5)
        assert await rows.claim(session, "demo", cid, ids[:3], node="n1", now=now, lease=lease)
        for contact_id, outcome in (
            (ids[0], Disposition.BUSY),
            (ids[1], Disposition.ANSWERED_HUMAN),
        ):
            done = await rows.finish(
                session,
                "demo",
                contact_id,
                node="n1",
                outcome=outcome,
                at=now,
                retry=retry,
                call_id=f"call-{contact_id}",
            )
            assert done is not None
    shown = (await node.http.get(f"/v1/campaigns/{cid}", headers=auth())).json()
    assert shown["progress"] == {
        "contacts": 7,
        "by_status": {"pending": 4, "dialing": 1, "retrying": 1, "done": 1},
        "by_disposition": {"busy": 1, "answered_human": 1},
    }
    paged = await every_page(node, f"/v1/campaigns/{cid}/contacts", "contacts", 3)
    assert [c["id"] for c in paged] == ids
    path = f"/v1/campaigns/{cid}/contacts"
    by_status: dict[str, list[dict[str, Any]]] = {}
    for status in ("pending", "dialing", "retrying", "done"):
        resp = await node.http.get(path, params={"status": status}, headers=auth())
        by_status[status] = resp.json()["contacts"]
    assert [c["id"] for c in by_status["pending"]] == ids[3:]
    assert [c["id"] for c in by_status["dialing"]] == [ids[2]]
    (retrying,) = by_status["retrying"]
    assert (retrying["id"], retrying["disposition"], retrying["attempts"]) == (ids[0], "busy", 1)
    assert retrying["next_eligible_at"] is not None
    (final,) = by_status["done"]
    (attempt,) = final["history"]
    assert (attempt["attempt"], attempt["disposition"]) == (1, "answered_human")
    assert attempt["call_id"] == f"call-{ids[1]}" and attempt["ended_at"] is not None
    (open_attempt,) = by_status["dialing"][0]["history"]
    assert open_attempt["ended_at"] is None and open_attempt["disposition"] is None
    for params in ({"status": "lost"}, {"cursor": "x1"}, {"limit": 0}, {"limit": 101}):
        assert (await node.http.get(path, params=params, headers=auth())).status_code == 400


async def test_campaigns_paged_newest_first(node: Node) -> None:
    made = [await create(node, name=f"c{i}") for i in range(5)]
    newest_first = sorted(made, key=lambda c: (c["created_at"], c["id"]), reverse=True)
    paged = await every_page(node, "/v1/campaigns", "campaigns", 2)
    assert [c["id"] for c in paged] == [c["id"] for c in newest_first]
    resp = await node.http.get("/v1/campaigns", params={"cursor": "!!"}, headers=auth())
    assert resp.status_code == 400


def test_settings_read_back_from_a_stored_body() -> None:
    """The store keeps a campaign without its contacts; `read_settings` reads that body (and
    one that still names its contacts) as the settings the dialler paces by."""
    campaign = parse_campaign(msgspec.json.encode(body(n=2)))
    stored = msgspec.to_builtins(campaign.settings())
    assert "contacts" not in stored and stored.get("from") is None
    assert read_settings(stored) == campaign.settings()
    assert read_settings({**stored, "contacts": []}) == campaign.settings()
    assert campaign.settings().retry == Retry(max_attempts=2, backoff_minutes=30, on=("busy",))


async def test_a_caller_id_the_tenant_does_not_hold_is_refused(node: Node) -> None:
    # `from` goes out through the operator's trunk: only the tenant's own numbers or ranges
    resp = await node.http.post("/v1/campaigns", json=body(**FROM), headers=auth())
    assert resp.status_code == 403 and "from" in resp.json()["detail"], resp.text
    listed = await node.http.get("/v1/campaigns", headers=auth())
    assert listed.json()["campaigns"] == []  # nothing stored
    tenant, keys = await new_tenant(node, "Other")
    await give_range(node, tenant, ["+14155550000"])  # another tenant's number is not demo's
    resp = await node.http.post("/v1/campaigns", json=body(**FROM), headers=auth())
    assert resp.status_code == 403
    mine = body(agent="front", **FROM)
    resp = await node.http.post("/v1/campaigns", json=mine, headers=auth(keys["admin"]))
    assert resp.status_code == 201, resp.text  # ... it is that tenant's
    await give_range(node, "demo", ["+14155550000"])  # exactly that number
    resp = await node.http.post("/v1/campaigns", json=body(**FROM), headers=auth())
    assert resp.status_code == 201, resp.text
    resp = await node.http.post("/v1/campaigns", json=body(), headers=auth())
    assert resp.status_code == 201 and resp.json()["settings"].get("from") is None


async def test_a_campaign_whose_contacts_were_erased(node: Node) -> None:
    """Erasing a subject deletes their campaign contacts: a draft left with none is not started
    (409, "no_contacts"); a paused one left with none resumes (the dialler then finds nothing
    to call and completes it). Its progress counts zeros."""
    draft = await create(node, n=1, name="d")  # +14155550000
    paused = await create(node, n=1, name="p")
    moved = await node.http.post(f"/v1/campaigns/{paused['id']}/start", headers=auth())
    assert moved.status_code == 200, moved.text
    moved = await node.http.post(f"/v1/campaigns/{paused['id']}/pause", headers=auth())
    assert moved.status_code == 200, moved.text
    async with node.host.store.session() as session:  # what DELETE /v1/subjects/{phone} runs
        found = await subject_rows.find_subject(session, "demo", "+14155550000")
        erased = await subject_rows.erase_rows(session, "demo", found)
    assert erased["campaign_contacts"] == 2
    empty = {"pending": 0, "dialing": 0, "retrying": 0, "done": 0}
    for cid in (draft["id"], paused["id"]):
        shown = (await node.http.get(f"/v1/campaigns/{cid}", headers=auth())).json()
        assert shown["progress"] == {"contacts": 0, "by_status": empty, "by_disposition": {}}
    resp = await node.http.post(f"/v1/campaigns/{draft['id']}/start", headers=auth())
    assert resp.status_code == 409 and resp.json()["extra"] == {"reason": "no_contacts"}
    resp = await node.http.post(f"/v1/campaigns/{paused['id']}/resume", headers=auth())
    assert resp.status_code == 200, resp.text
    assert resp.json()["state"] == "running" and resp.json()["progress"]["contacts"] == 0
