"""Contacts uploaded as CSV to a draft campaign (`POST /v1/campaigns/{id}/contacts`,
`control_api.contacts_upload_api`) on the served app with the real bearer auth, on SQLite and
a real PostgreSQL: rows imported with their variables, bad rows and numbers outside the dial
plan reported by line while the rest are imported, numbers on the do-not-call list imported
ended as do_not_call (also through the JSON create), unusable and oversized files refused
whole (400, 413), only drafts (409), roles, and another tenant's campaign a 404. A campaign
created without contacts (left out, or an empty list) is not started (409, no event) until an
upload fills it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
from sqlalchemy import select

from config.telephony import DialPlanSettings
from control_api.analytics.tables import OutboxRow
from control_api.campaigns.contacts_csv import MAX_CSV_BYTES, MAX_ROWS
from tests.control_api.test_campaigns_api import body, create
from tests.control_api.test_isolation import new_tenant
from tests.support.harness import Node, auth, node_settings, serve_node
from tests.support.host import FakeHost, temp_store
from tests.support.pg import PostgresServer, pg_server  # noqa: F401

PLAN = DialPlanSettings(allowed_prefixes=("+1415",), refused_prefixes=("+1415999",))
CSV = {"Content-Type": "text/csv"}


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


async def upload(
    node: Node, campaign_id: str, text: str | bytes, headers: dict[str, str] | None = None
) -> Any:
    content = text.encode() if isinstance(text, str) else text
    return await node.http.post(
        f"/v1/campaigns/{campaign_id}/contacts",
        content=content,
        headers={**CSV, **(headers or auth())},
    )


async def contacts_of(node: Node, campaign_id: str) -> list[dict[str, Any]]:
    resp = await node.http.get(
        f"/v1/campaigns/{campaign_id}/contacts", params={"limit": 100}, headers=auth()
    )
    assert resp.status_code == 200, resp.text
    found: list[dict[str, Any]] = resp.json()["contacts"]
    return found


async def test_rows_are_imported_and_bad_ones_reported_by_line(node: Node) -> None:
    cid = (await create(node, n=1))["id"]  # +14155550000
    resp = await node.http.post(
        "/v1/dnc", json={"numbers": [{"number": "+14155550103"}]}, headers=auth()
    )
    assert resp.status_code == 200, resp.text
    text = (
        "number,name,timezone\n"  # 1
        "+1 (415) 555-0101,Ann,America/Chicago\n"  # 2
        "4155550102,national,\n"  # 3
        "+14155550103,listed,\n"  # 4: on the do-not-call list
        "+442071234567,abroad,\n"  # 5: outside the dial plan
        "+14159990000,refused prefix,\n"  # 6: a refused prefix
        "+14155550000,already,\n"  # 7: the campaign has it
        "+14155550104,short\n"  # 8
        "+14155550105,Eve,\n"  # 9
    )
    resp = await upload(node, cid, text)
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert (out["imported"], out["contacts"], out["do_not_call"]) == (3, 4, [4])
    rejected = {r["line"]: r["reason"] for r in out["rejected"]}
    assert sorted(rejected) == [3, 5, 6, 7, 8]
    assert [r["line"] for r in out["rejected"]] == [3, 5, 6, 7, 8]
    assert "E.164" in rejected[3]
    assert "dial plan" in rejected[5] and "dial plan" in rejected[6]
    assert "already has" in rejected[7]
    contacts = {c["number"]: c for c in await contacts_of(node, cid)}
    assert set(contacts) == {"+14155550000", "+14155550101", "+14155550103", "+14155550105"}
    assert contacts["+14155550101"]["variables"] == {"name": "Ann", "timezone": "America/Chicago"}
    assert contacts["+14155550105"]["variables"] == {"name": "Eve"}
    barred = contacts["+14155550103"]
    assert (barred["status"], barred["disposition"], barred["attempts"]) == (
        "done",
        "do_not_call",
        0,
    )
    shown = (await node.http.get(f"/v1/campaigns/{cid}", headers=auth())).json()
    assert shown["progress"]["by_status"]["pending"] == 3
    assert shown["progress"]["by_disposition"] == {"do_not_call": 1}


async def test_the_json_create_ends_listed_contacts_as_do_not_call(node: Node) -> None:
    resp = await node.http.post(
        "/v1/dnc", json={"numbers": [{"number": "+14155550001"}]}, headers=auth()
    )
    assert resp.status_code == 200, resp.text
    created = await create(node, n=3)
    assert created["progress"]["by_status"] == {
        "pending": 2,
        "dialing": 0,
        "retrying": 0,
        "done": 1,
    }
    assert created["progress"]["by_disposition"] == {"do_not_call": 1}


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "no header"),
        ("phone,name\n+14155550101,Ann\n", "no 'number' column"),
        ("number,name\n", "no rows"),
        ('{"contacts": [{"number": "+14155550101"}]}', "header column 1"),
    ],
    ids=["empty", "no-number-column", "header-only", "json"],
)
async def test_unusable_files_are_400_and_import_nothing(node: Node, text: str, why: str) -> None:
    cid = (await create(node, n=1))["id"]
    resp = await upload(node, cid, text)
    assert resp.status_code == 400, resp.text
    assert why in resp.json()["detail"]
    assert len(await contacts_of(node, cid)) == 1


async def test_too_big_is_413_and_imports_nothing(node: Node) -> None:
    cid = (await create(node, n=1))["id"]
    padding = "x" * 1000
    row = f"+14155550101,{padding}\n"
    big = "number,note\n" + row * (MAX_CSV_BYTES // len(row) + 1)
    resp = await upload(node, cid, big)
    assert resp.status_code == 413, resp.text
    rows = "".join(f"+1415{i:07d}\n" for i in range(MAX_ROWS + 1))
    resp = await upload(node, cid, f"number\n{rows}")
    assert resp.status_code == 413, resp.text
    assert f"more than {MAX_ROWS} rows" in resp.json()["detail"]
    half = "".join(f"+1415{i:07d}\n" for i in range(1, MAX_ROWS))  # with the one: the most
    resp = await upload(node, cid, f"number\n{half}")
    assert resp.status_code == 200, resp.text
    assert resp.json()["contacts"] == MAX_ROWS
    resp = await upload(node, cid, "number\n+14155559999\n")
    assert resp.status_code == 413, resp.text
    assert "would have" in resp.json()["detail"]


async def test_only_a_draft_takes_contacts(node: Node) -> None:
    cid = (await create(node, n=1))["id"]
    assert (await node.http.post(f"/v1/campaigns/{cid}/start", headers=auth())).status_code == 200
    resp = await upload(node, cid, "number\n+14155550101\n")
    assert resp.status_code == 409, resp.text
    assert len(await contacts_of(node, cid)) == 1
    assert (await upload(node, "nope", "number\n+14155550101\n")).status_code == 404


async def test_roles_and_other_tenants(node: Node) -> None:
    a_tenant, a = await new_tenant(node, "acme")
    _, b = await new_tenant(node, "bolt")
    cid = (await create(node, headers=auth(a["operator"]), agent="front"))["id"]
    text = "number\n+14155550101\n"
    assert (await upload(node, cid, text, auth(a["viewer"]))).status_code == 403
    for key in (b["admin"], b["operator"]):
        assert (await upload(node, cid, text, auth(key))).status_code == 404
    resp = await node.http.get(f"/v1/campaigns/{cid}", params={"tenant": a_tenant}, headers=auth())
    assert resp.json()["progress"]["contacts"] == 3
    resp = await upload(node, cid, text, auth(a["operator"]))
    assert resp.status_code == 200, resp.text
    assert resp.json()["contacts"] == 4


async def campaign_events(node: Node) -> list[str]:
    """The types of the `campaign.*` events in the outbox, in order."""
    async with node.host.store.session() as session:
        found = await session.scalars(
            select(OutboxRow.type).where(OutboxRow.type.like("campaign.%")).order_by(OutboxRow.id)
        )
        return list(found)


@pytest.mark.parametrize("contacts", ["left-out", "empty"])
async def test_a_campaign_created_empty_is_filled_by_csv_then_started(
    node: Node, contacts: str
) -> None:
    fields = body()
    if contacts == "left-out":
        del fields["contacts"]
    else:
        fields["contacts"] = []
    resp = await node.http.post("/v1/campaigns", json=fields, headers=auth())
    assert resp.status_code == 201, resp.text
    created = resp.json()
    cid = created["id"]
    assert created["state"] == "draft" and created["progress"]["contacts"] == 0
    assert await contacts_of(node, cid) == []
    refused = await node.http.post(f"/v1/campaigns/{cid}/start", headers=auth())
    assert refused.status_code == 409, refused.text
    assert "no contacts" in refused.json()["detail"]
    assert refused.json()["extra"] == {"reason": "no_contacts"}
    shown = (await node.http.get(f"/v1/campaigns/{cid}", headers=auth())).json()
    assert shown["state"] == "draft"
    assert await campaign_events(node) == []  # nothing emitted
    resp = await upload(node, cid, "number,name\n+14155550101,Ann\n+14155550102,Bob\n")
    assert resp.status_code == 200, resp.text
    assert (resp.json()["imported"], resp.json()["contacts"]) == (2, 2)
    started = await node.http.post(f"/v1/campaigns/{cid}/start", headers=auth())
    assert started.status_code == 200, started.text
    assert started.json()["state"] == "running"
    assert started.json()["progress"]["by_status"]["pending"] == 2
    assert await campaign_events(node) == ["campaign.started"]
    again = await node.http.post(f"/v1/campaigns/{cid}/start", headers=auth())
    assert again.status_code == 409 and again.json()["extra"] == {"reason": "state"}
