"""`GET /v1/analytics/summary`: per tenant (a key never sees another tenant's calls), from the
node's SQL store and from a real ClickHouse (the same answer), JSON and CSV, and the 422
bounds."""

from __future__ import annotations

import csv
import datetime
import io
from typing import Any

import msgspec
import pytest

from control_api.analytics import open_analytics
from control_api.analytics import summary as summary_module
from control_api.store import Store
from tests.control_api.test_analytics_clickhouse import ch_settings, count
from tests.support.analytics import (
    ACME,
    ADMIN,
    T0,
    FakeCalls,
    WallClock,
    bearer,
    call_info,
    closing,
    opening,
    serve_api,
    settings,
    store,
    wait_for,
)
from tests.support.clickhouse_server import ClickHouseServer, clickhouse_server

__all__ = ["clickhouse_server", "store"]

DAY = datetime.timedelta(days=1)
RANGE = {"from": (T0 - DAY).isoformat(), "to": (T0 + 3 * DAY).isoformat()}


def _calls(calls: FakeCalls, wall: WallClock) -> None:
    """acme: 3 calls on day 1 (support, sales, support), 1 on day 2 (support, hung up);
    demo: 2 calls on day 1."""
    script = [
        ("acme-1", "acme", "support", "completed", 0),
        ("acme-2", "acme", "sales", "completed", 0),
        ("acme-3", "acme", "support", "completed", 0),
        ("demo-1", "demo", "support", "completed", 0),
        ("demo-2", "demo", "support", "completed", 0),
        ("acme-4", "acme", "support", "hangup", 1),
    ]
    for call_id, tenant, agent, reason, day in script:
        wall.at = T0 + day * DAY + datetime.timedelta(minutes=len(call_id))
        info = call_info(call_id, tenant=tenant, agent=agent)
        for event in opening() + closing(reason):
            calls.emit(info, event)


async def _summary(api: Any, key: str = ACME, **params: str) -> dict[str, Any]:
    response = await api.get(
        "/v1/analytics/summary", params={**RANGE, **params}, headers=bearer(key)
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    return response.json()  # type: ignore[no-any-return]


async def _check(api: Any, source: str) -> None:
    by_day = await _summary(api)
    assert by_day["tenant_id"] == "acme" and by_day["source"] == source
    days = {g["key"]: g for g in by_day["groups"]}
    assert set(days) == {T0.date().isoformat(), (T0 + DAY).date().isoformat()}
    first = days[T0.date().isoformat()]
    assert first["calls"] == 3 and first["total_duration_s"] == 126.0
    assert first["mean_duration_s"] == 42.0
    assert sum(first["outcomes"].values()) == 3 and sum(first["sentiments"].values()) == 3
    assert first["voice_to_voice_ms_p50"] == 640.0 and first["voice_to_voice_ms_p95"] == 640.0
    by_agent = await _summary(api, group_by="agent")
    assert {g["key"]: g["calls"] for g in by_agent["groups"]} == {"sales": 1, "support": 3}
    by_transport = await _summary(api, group_by="transport")
    assert [(g["key"], g["calls"]) for g in by_transport["groups"]] == [("sip", 4)]
    # The platform admin names a tenant; a tenant key cannot.
    demo = await _summary(api, ADMIN, tenant="demo", group_by="agent")
    assert [(g["key"], g["calls"]) for g in demo["groups"]] == [("support", 2)]
    other = await api.get(
        "/v1/analytics/summary", params={**RANGE, "tenant": "demo"}, headers=bearer(ACME)
    )
    assert other.status_code == 403
    # CSV: the same groups.
    response = await api.get(
        "/v1/analytics/summary",
        params={**RANGE, "group_by": "agent"},
        headers={**bearer(ACME), "Accept": "text/csv"},
    )
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [(r["agent"], r["calls"]) for r in rows] == [("sales", "1"), ("support", "3")]
    assert rows[1]["total_duration_s"] == "126.0" and rows[1]["voice_to_voice_ms_p50"] == "640.0"


async def _check_bounds(api: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    async def status(**params: str) -> tuple[int, str]:
        response = await api.get("/v1/analytics/summary", params=params, headers=bearer(ACME))
        return response.status_code, response.text

    t0 = T0.isoformat()
    assert (await status(**{"from": t0, "to": t0}))[0] == 422
    code, text = await status(**{"from": t0, "to": (T0 + 367 * DAY).isoformat()})
    assert code == 422 and "366 days" in text
    assert (await status(**RANGE, group_by="caller"))[0] == 400
    assert (await status(to=t0))[0] == 400
    monkeypatch.setattr(summary_module, "MAX_GROUPS", 1)
    code, text = await status(**RANGE, group_by="agent")
    assert code == 422 and "more than 1 groups" in text


async def test_summary_from_the_sql_store(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    calls, wall = FakeCalls(), WallClock()
    async with (
        open_analytics(settings(), store, calls, wall=wall) as analytics,
        serve_api(analytics) as api,
    ):
        _calls(calls, wall)

        async def written() -> bool:
            return analytics.recorder.written == 6 * 5

        await wait_for(written, what="every event written")
        await _check(api, "store")
        await _check_bounds(api, monkeypatch)


async def test_summary_from_clickhouse_matches_the_store(
    clickhouse_server: ClickHouseServer, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls, wall = FakeCalls(), WallClock()
    conf = settings(relay_interval_s=0.05, clickhouse=ch_settings(clickhouse_server))
    async with (
        open_analytics(conf, store, calls, wall=wall) as analytics,
        serve_api(analytics) as api,
    ):
        _calls(calls, wall)

        async def landed() -> bool:
            return await count(clickhouse_server, "calls") == 6

        await wait_for(landed, what="6 calls in ClickHouse")
        await _check(api, "clickhouse")
        lo, hi = T0 - DAY, T0 + 3 * DAY
        for group_by in ("day", "agent", "disposition", "transport"):
            assert analytics.clickhouse is not None
            ch = await summary_module.from_clickhouse(
                analytics.clickhouse, "acme", lo, hi, group_by
            )
            sql = await summary_module.from_store(analytics.store, "acme", lo, hi, group_by)
            assert [msgspec_dict(g, barge=False) for g in ch] == [
                msgspec_dict(g, barge=False) for g in sql
            ], group_by
            assert all(g.barge_in_rate == 0.0 for g in ch)  # no agent line was interrupted
        await _check_bounds(api, monkeypatch)


def msgspec_dict(group: summary_module.SummaryGroup, barge: bool) -> dict[str, Any]:
    out: dict[str, Any] = msgspec.to_builtins(group)
    if not barge:
        out.pop("barge_in_rate", None)
    return out
