"""Dead letters through the API: a tenant admin lists what its webhook refused (never the
payload) and replays it; the running relay sends each replayed event once more, signed, and
the dead letter goes when delivered or stays, with the new error, when refused again."""

from __future__ import annotations

import time

import msgspec
from sqlalchemy import select

from control_api.analytics import open_analytics
from control_api.analytics.sinks import SIGNATURE_HEADER, verify_signature
from control_api.analytics.tables import DeadLetterRow
from control_api.store import Store
from media.clock import MonotonicClock
from tests.support.analytics import (
    ACME,
    ADMIN,
    VIEWER,
    FakeCalls,
    Received,
    Receiver,
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


async def test_dead_letters_are_listed_and_replayed(store: Store) -> None:
    conf = settings(
        webhook_require_https=False, url_allowlist=("127.0.0.1",), webhook_max_attempts=1
    )
    calls = FakeCalls()
    refusing = [True]
    answers: list[tuple[str, int]] = []

    def status_for(request: Received) -> int:
        status = 500 if refusing[0] else 200
        answers.append((request.headers["x-voicenode-event-id"], status))
        return status

    async with (
        Receiver(status_for) as receiver,
        open_analytics(conf, store, calls, MonotonicClock()) as analytics,
        serve_api(analytics) as api,
    ):
        hook = (
            await api.post("/v1/webhooks", json={"url": receiver.url()}, headers=bearer(ADMIN))
        ).json()
        path = f"/v1/webhooks/{hook['id']}/dead-letters"
        for event in opening():
            calls.emit(call_info("c1"), event)
        sent = ["c1:0", "c1:1", "c1:2"]  # call.started and the two final transcripts

        async def dead(queued: bool | None = None) -> list[dict[str, object]]:
            page = await api.get(path, params={"limit": 200}, headers=bearer(ADMIN))
            assert page.status_code == 200, page.text
            rows: list[dict[str, object]] = page.json()["dead_letters"]
            return [r for r in rows if queued is None or r["replay_queued"] is queued]

        async def all_dead() -> bool:
            return len(await dead()) == len(sent)

        await wait_for(all_dead, what="every event refused once and dead-lettered")
        listed = await dead()
        assert [r["event_id"] for r in listed] == sent[::-1]  # newest first
        first = listed[0]
        assert set(first) == {
            "id", "event_id", "call_id", "type", "seq", "attempts", "error", "created_at",
            "replay_queued",
        }  # fmt: skip
        assert first["attempts"] == 1 and first["error"] == "http status 500"
        # pages
        one = (await api.get(path, params={"limit": 2}, headers=bearer(ADMIN))).json()
        assert [r["event_id"] for r in one["dead_letters"]] == sent[::-1][:2]
        rest = await api.get(
            path, params={"limit": 2, "before": one["next_before"]}, headers=bearer(ADMIN)
        )
        assert [r["event_id"] for r in rest.json()["dead_letters"]] == sent[::-1][2:]
        assert rest.json()["next_before"] is None
        assert (await api.get(path, params={"limit": 0}, headers=bearer(ADMIN))).status_code == 400

        # other tenants, viewers and strangers get nothing
        assert (await api.get(path, headers=bearer(ACME))).status_code == 404
        assert (await api.post(f"{path}/replay", json={}, headers=bearer(ACME))).status_code == 404
        assert (await api.get(path, headers=bearer(VIEWER))).status_code == 403
        assert (await api.get(path)).status_code == 401
        assert (
            await api.get("/v1/webhooks/wh_nope/dead-letters", headers=bearer(ADMIN))
        ).status_code == 404
        bogus = await api.post(f"{path}/replay", json={"ids": [10**9]}, headers=bearer(ADMIN))
        assert bogus.status_code == 404
        assert (
            await api.post(f"{path}/replay", json={"ids": "x"}, headers=bearer(ADMIN))
        ).status_code == 400

        # one replayed while the receiver accepts: sent again, signed, and gone from the list
        refusing[0] = False
        oldest = listed[-1]
        queued = await api.post(
            f"{path}/replay", json={"ids": [oldest["id"]]}, headers=bearer(ADMIN)
        )
        assert queued.status_code == 202 and queued.json() == {"queued": 1}

        async def replayed_one() -> bool:
            return len(await dead()) == len(sent) - 1

        await wait_for(replayed_one, what="the replayed dead letter delivered")
        assert (sent[0], 200) in answers
        redelivered = [r for r in receiver.requests if r.headers["x-voicenode-event-id"] == sent[0]]
        header = redelivered[-1].headers[SIGNATURE_HEADER.lower()]
        assert verify_signature(hook["secret"], header, redelivered[-1].body, now=time.time())
        assert msgspec.json.decode(redelivered[-1].body)["id"] == sent[0]

        # the rest replayed while the receiver refuses: they stay, with one more try each
        refusing[0] = True
        queued = await api.post(f"{path}/replay", json={}, headers=bearer(ADMIN))
        assert queued.json() == {"queued": len(sent) - 1}

        async def refused_again() -> bool:
            rows = await dead()
            return len(rows) == len(sent) - 1 and all(r["attempts"] == 2 for r in rows)

        await wait_for(refused_again, what="the replays refused and kept")
        assert await dead(queued=True) == []

        # and replayed once more when it accepts: the list empties, each delivered once
        refusing[0] = False
        assert (await api.post(f"{path}/replay", json={}, headers=bearer(ADMIN))).status_code == 202

        async def emptied() -> bool:
            return await dead() == []

        await wait_for(emptied, what="every dead letter delivered")
        accepted = [event for event, status in answers if status == 200]
        assert sorted(accepted) == sorted(sent)

        # removing the webhook removes its dead letters
        refusing[0] = True
        for event in closing():
            calls.emit(call_info("c1"), event)

        async def closing_dead() -> bool:
            return len(await dead()) == 2  # tool.called, call.ended

        await wait_for(closing_dead, what="the closing events dead-lettered")
        removed = await api.delete(f"/v1/webhooks/{hook['id']}", headers=bearer(ADMIN))
        assert removed.status_code == 204
    async with store.session() as session:
        assert (await session.scalars(select(DeadLetterRow))).all() == []
