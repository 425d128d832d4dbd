"""The do-not-call list over HTTP (`control_api.dnc_api`) on the served app with the real bearer
auth, on SQLite and a real PostgreSQL: numbers added in a batch (typed forms normalised, bad
ones reported per entry while the rest are added) and one at a time, checked, paged and
removed; roles; another tenant's list never seen nor changed; the numbers never logged."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import pytest

from control_api.campaigns import dnc
from tests.control_api.test_isolation import new_tenant
from tests.support.harness import Node, auth, node_settings, serve_node
from tests.support.host import FakeHost, temp_store
from tests.support.pg import PostgresServer, pg_server  # noqa: F401

FIRST_PARTY = {"control_api", "voicenode", "media", "agents", "pipeline", "core", "config"}
"""The node's own loggers (a database driver's debug log of its parameters is not the node's)."""


@pytest.fixture(params=["sqlite", "postgres"])
async def node(request: pytest.FixtureRequest) -> AsyncIterator[Node]:
    url = ""
    if request.param == "postgres":
        server: PostgresServer = request.getfixturevalue("pg_server")
        url = server.create_database()
    async with temp_store(url) as store:
        host = FakeHost(max_calls=2)
        await host.attach_store(store)
        async with serve_node(host, node_settings()) as served:
            yield served


def path(number: str) -> str:
    return f"/v1/dnc/{quote(number, safe='')}"


async def add(node: Node, *entries: Any, headers: dict[str, str] | None = None) -> dict[str, Any]:
    numbers = [e if isinstance(e, dict) else {"number": e} for e in entries]
    resp = await node.http.post("/v1/dnc", json={"numbers": numbers}, headers=headers or auth())
    assert resp.status_code == 200, resp.text
    out: dict[str, Any] = resp.json()
    return out


async def test_a_batch_adds_the_valid_numbers_and_reports_each_entry(
    node: Node, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    out = await add(
        node,
        {"number": "+1 (415) 555-0100", "reason": "asked on a call"},
        "4155550101",
        "0044 20 7123 4567",
        "+14155550100",
        "call me maybe",
    )
    assert (out["added"], out["already_listed"], out["invalid"]) == (2, 1, 2)
    assert [(r["index"], r["status"], r.get("number")) for r in out["results"]] == [
        (0, "added", "+14155550100"),
        (1, "invalid", None),
        (2, "added", "+442071234567"),
        (3, "already_listed", "+14155550100"),
        (4, "invalid", None),
    ]
    assert "E.164" in out["results"][1]["message"]
    again = await add(node, "+442071234567")
    assert again["results"][0]["status"] == "already_listed"
    check = (await node.http.get(path("+14155550100"), headers=auth())).json()
    assert check["listed"] and check["number"] == "+14155550100"
    assert check["reason"] == "asked on a call" and check["added_at"]
    unlisted = (await node.http.get(path("+14155550199"), headers=auth())).json()
    assert unlisted == {"number": "+14155550199", "listed": False, "added_at": None, "reason": None}
    ours = [r for r in caplog.records if r.name.split(".")[0] in FIRST_PARTY]
    assert any(r.name == "control_api.dnc_api" for r in ours)
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in ours)
    for digits in ("4155550100", "4155550101", "2071234567"):
        assert digits not in logged


async def test_one_number_put_checked_and_removed(node: Node) -> None:
    resp = await node.http.put(path("+14155550100"), json={"reason": "opted out"}, headers=auth())
    assert resp.status_code == 200, resp.text
    assert resp.json()["number"] == "+14155550100" and resp.json()["reason"] == "opted out"
    resp = await node.http.put(path("+14155550100"), headers=auth())  # listed: kept
    assert resp.status_code == 200 and resp.json()["reason"] == "opted out"
    assert (await node.http.delete("/v1/dnc/+14155550100", headers=auth())).status_code == 204
    assert not (await node.http.get(path("+14155550100"), headers=auth())).json()["listed"]
    resp = await node.http.delete(path("+14155550100"), headers=auth())
    assert resp.status_code == 404 and "4155550100" not in resp.text
    for method in ("GET", "PUT", "DELETE"):  # a path's number is E.164
        for typed in ("4155550100", "+1 415 555 0100"):
            resp = await node.http.request(method, path(typed), headers=auth())
            assert resp.status_code == 400, (method, resp.text)


async def test_the_list_is_paged_in_number_order(node: Node) -> None:
    numbers = [f"+1415555{i:04d}" for i in range(7)]
    await add(node, *reversed(numbers))
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 3}
    while True:
        page = (await node.http.get("/v1/dnc", params=params, headers=auth())).json()
        assert 1 <= len(page["numbers"]) <= 3
        seen += [entry["number"] for entry in page["numbers"]]
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert seen == numbers
    for bad in ({"cursor": "+1415"}, {"cursor": "x1"}, {"limit": 0}, {"limit": 501}):
        assert (await node.http.get("/v1/dnc", params=bad, headers=auth())).status_code == 400


@pytest.mark.parametrize(
    "body",
    [
        {"numbers": []},
        {"numbers": [{"number": ""}]},
        {"numbers": [{"number": "+14155550100", "reason": "x" * 257}]},
        {"numbers": [{"number": "+14155550100", "surprise": 1}]},
        {"numbers": [{"number": f"+1415555{i:04d}"} for i in range(1001)]},
        {"number": "+14155550100"},
    ],
    ids=["empty", "blank", "long-reason", "unknown-field", "too-many", "not-a-batch"],
)
async def test_bad_batches_are_400_and_add_nothing(node: Node, body: dict[str, Any]) -> None:
    resp = await node.http.post("/v1/dnc", json=body, headers=auth())
    assert resp.status_code == 400, resp.text
    assert (await node.http.get("/v1/dnc", headers=auth())).json()["numbers"] == []


async def test_roles_and_tenant_isolation(node: Node) -> None:
    a_tenant, a = await new_tenant(node, "acme")
    b_tenant, b = await new_tenant(node, "bolt")
    await add(node, "+14155550100", headers=auth(a["operator"]))
    viewer = auth(a["viewer"])
    resp = await node.http.post("/v1/dnc", json={"numbers": [{"number": "+1"}]}, headers=viewer)
    assert resp.status_code == 403
    assert (await node.http.put(path("+14155550101"), headers=viewer)).status_code == 403
    assert (await node.http.get(path("+14155550100"), headers=viewer)).json()["listed"]
    resp = await node.http.delete(path("+14155550100"), headers=auth(a["operator"]))
    assert resp.status_code == 403  # taking a number off needs admin
    # bolt's keys see an empty list and cannot take acme's number off
    for key in (b["admin"], b["operator"], b["viewer"]):
        headers = auth(key)
        assert (await node.http.get("/v1/dnc", headers=headers)).json()["numbers"] == []
        assert not (await node.http.get(path("+14155550100"), headers=headers)).json()["listed"]
        resp = await node.http.get("/v1/dnc", params={"tenant": a_tenant}, headers=headers)
        assert resp.status_code == 403
    assert (
        await node.http.delete(path("+14155550100"), headers=auth(b["admin"]))
    ).status_code == 404
    # bolt listing the same number is its own entry
    out = await add(node, {"number": "+14155550100", "reason": "bolt's"}, headers=auth(b["admin"]))
    assert out["added"] == 1
    async with node.host.store.session() as session:
        assert await dnc.dnc_numbers(session, a_tenant) == {"+14155550100"}
        assert await dnc.dnc_numbers(session, b_tenant) == {"+14155550100"}
        a_row = await dnc.get(session, a_tenant, "+14155550100")
        assert a_row is not None and a_row.reason is None
    # the platform admin acts for the tenant it names
    resp = await node.http.get("/v1/dnc", params={"tenant": a_tenant}, headers=auth())
    assert [e["number"] for e in resp.json()["numbers"]] == ["+14155550100"]
    assert (await node.http.get("/v1/dnc", headers=auth())).json()["numbers"] == []  # demo's
    resp = await node.http.get("/v1/dnc", params={"tenant": "ghost"}, headers=auth())
    assert resp.status_code == 404
    resp = await node.http.delete(path("+14155550100"), params={"tenant": a_tenant}, headers=auth())
    assert resp.status_code == 204
    async with node.host.store.session() as session:
        assert await dnc.dnc_numbers(session, a_tenant) == frozenset()
        assert await dnc.dnc_numbers(session, b_tenant) == {"+14155550100"}
