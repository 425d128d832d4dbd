"""`GET /v1/calls` and `GET /v1/calls/{id}`: tenant-scoped, filtered, paginated history."""

from __future__ import annotations

from control_api.analytics import open_analytics
from control_api.app import analytics_routers
from control_api.calls_history_api import MAX_PAGE_SIZE
from control_api.store import Store
from tests.support.analytics import (
    ACME,
    ADMIN,
    VIEWER,
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

__all__ = ["store"]


async def test_history_lists_filters_pages_and_shows_one_call(store: Store) -> None:
    calls = FakeCalls()
    wall = WallClock()
    async with (
        open_analytics(settings(), store, calls, wall=wall) as analytics,
        serve_api(analytics) as api,
    ):
        for i in range(5):
            info = call_info(f"acme-{i}", tenant="acme", agent="sales" if i % 2 else "support")
            for event in opening() + closing("completed" if i < 3 else "hangup"):
                calls.emit(info, event)
        for event in opening():
            calls.emit(call_info("acme-live", tenant="acme"), event)
        for event in opening() + closing():
            calls.emit(call_info("demo-1"), event)

        async def written() -> bool:
            return analytics.recorder.written == 5 * 5 + 3 + 5

        await wait_for(written, what="every event written")

        async def page(key: str = ACME, **params: object) -> dict[str, object]:
            response = await api.get("/v1/calls", params=params, headers=bearer(key))
            assert response.status_code == 200, response.text
            return response.json()  # type: ignore[no-any-return]

        everything = await page(VIEWER)  # a viewer may read calls
        ids = [c["id"] for c in everything["calls"]]  # type: ignore[index]
        assert ids == ["acme-live", "acme-4", "acme-3", "acme-2", "acme-1", "acme-0"]  # newest
        assert everything["next_cursor"] is None
        live = await page(status="live")
        assert [c["id"] for c in live["calls"]] == ["acme-live"]  # type: ignore[index]
        assert live["calls"][0]["status"] == "live"  # type: ignore[index]
        sales = await page(agent="sales")
        assert [c["id"] for c in sales["calls"]] == ["acme-3", "acme-1"]  # type: ignore[index]
        abandoned = await page(disposition="abandoned")
        assert [c["id"] for c in abandoned["calls"]] == ["acme-4", "acme-3"]  # type: ignore[index]
        # pages of two, following the cursor, never repeat or skip a call
        seen: list[str] = []
        cursor = None
        while True:
            params: dict[str, object] = {"limit": 2}
            if cursor:
                params["cursor"] = cursor
            got = await page(**params)
            seen += [c["id"] for c in got["calls"]]  # type: ignore[index]
            cursor = got["next_cursor"]
            if cursor is None:
                break
        assert seen == ids
        too_big = await api.get(
            "/v1/calls", params={"limit": MAX_PAGE_SIZE + 1}, headers=bearer(ACME)
        )
        assert too_big.status_code == 400
        bad_cursor = await api.get("/v1/calls", params={"cursor": "nope"}, headers=bearer(ACME))
        assert bad_cursor.status_code == 400
        # time filter: started at or after the third call's start
        third = next(c for c in everything["calls"] if c["id"] == "acme-2")  # type: ignore[union-attr]
        since = await page(since=third["started_at"])
        assert [c["id"] for c in since["calls"]][-1] == "acme-2"  # type: ignore[index]
        # tenants are kept apart
        assert [c["id"] for c in (await page(ADMIN))["calls"]] == ["demo-1"]  # type: ignore[index]
        assert (await api.get("/v1/calls/demo-1", headers=bearer(ACME))).status_code == 404
        assert (
            await api.get("/v1/calls", params={"tenant": "demo"}, headers=bearer(ACME))
        ).status_code == 403
        assert (await api.get("/v1/calls")).status_code == 401

        detail = (await api.get("/v1/calls/acme-0", headers=bearer(ACME))).json()
        assert detail["status"] == "ended" and detail["disposition"] == "completed"
        assert detail["sentiment"]["label"] == "positive"
        assert detail["slots"] == {"day": "tuesday"}
        assert [line["role"] for line in detail["transcript"]] == ["user", "agent"]
        assert detail["latency"]["turns"] == 1 and detail["latency"]["voice_to_voice_ms_p50"] == 640
        assert detail["from_uri"] == "sip:+15550100@example.com"
        live_detail = (await api.get("/v1/calls/acme-live", headers=bearer(ACME))).json()
        assert live_detail["status"] == "live" and len(live_detail["transcript"]) == 2
        assert (await api.get("/v1/calls/nope", headers=bearer(ACME))).status_code == 404


async def test_the_hangup_route_shares_the_call_path(store: Store) -> None:
    """`DELETE /v1/calls/{id}` (call_control_api) joins the history router: one path, one router."""
    from litestar import Litestar
    from litestar.di import Provide
    from litestar.middleware import DefineMiddleware
    from litestar.testing import AsyncTestClient

    from control_api.auth import BearerAuth
    from control_api.call_control_api import hangup_call
    from control_api.state import ApiState
    from tests.support.analytics import KEYS

    hung_up: list[str] = []

    class LiveCallsDouble:
        def get(self, call_id: str) -> object:
            return type("Live", (), {"info": call_info(call_id, tenant="acme")})()

        async def hangup(self, call_id: str) -> None:
            hung_up.append(call_id)

    api_state = ApiState(
        settings=settings(),
        host=None,  # type: ignore[arg-type]
        calls=LiveCallsDouble(),  # type: ignore[arg-type]
        webrtc=None,  # type: ignore[arg-type]
        store=store,
        quotas=None,  # type: ignore[arg-type]
    )

    async with open_analytics(settings(), store, FakeCalls(), wall=WallClock()) as analytics:
        auth = [DefineMiddleware(BearerAuth, keys=KEYS)]
        app = Litestar(
            route_handlers=analytics_routers(
                analytics,
                principal_for=KEYS.principal_for,
                call_handlers=[hangup_call],
                middleware=auth,
            ),
            dependencies={"api": Provide(lambda: api_state, sync_to_thread=False)},
            logging_config=None,
        )
        async with AsyncTestClient(app) as client:
            assert (await client.get("/v1/calls/x1", headers=bearer(ACME))).status_code == 404
            r = await client.delete("/v1/calls/x1", headers=bearer(ACME))
            assert r.status_code == 204, r.text
            assert (await client.options("/v1/calls/x1")).status_code == 204
    assert hung_up == ["x1"]
