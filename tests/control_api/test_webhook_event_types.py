"""The webhook filter names every analytics event type, and a webhook filtered to
`subject.erased` gets its tenant's erasure and nothing else, from a real relay to a real
receiver."""

from __future__ import annotations

import typing

from sqlalchemy import select

from control_api.analytics import open_analytics
from control_api.analytics.events import (
    AnalyticsEvent,
    SubjectErasedEvent,
    decode_event,
    event_type,
)
from control_api.analytics.outbox import write_events
from control_api.analytics.tables import RelayMarkRow
from control_api.store import Store
from control_api.webhooks_api import EventType
from media.clock import MonotonicClock
from tests.support.analytics import (
    ACME,
    NODE,
    FakeCalls,
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

ERASURE = "era_" + "1" * 32
NEW_TYPES = ["subject.erased", "tenant.deleted", "campaign.started", "campaign.paused"]
NEW_TYPES += ["campaign.completed", "contact.attempted"]


def test_the_filter_names_every_event_type() -> None:
    tags = {member.__struct_config__.tag for member in typing.get_args(AnalyticsEvent)}
    assert set(typing.get_args(EventType)) == tags
    assert {"subject.erased", "tenant.deleted", "campaign.started", "contact.attempted"} <= tags


def erasure(tenant: str, erasure_id: str, call_ids: list[str]) -> SubjectErasedEvent:
    return SubjectErasedEvent(
        id=f"{erasure_id}:0",
        call_id=erasure_id,
        tenant_id=tenant,
        seq=0,
        at="2026-12-07T12:00:00.000Z",
        subject="hmac-sha256:" + "ab" * 32,
        call_ids=call_ids,
        erased={"calls": len(call_ids)},
    )


async def test_a_webhook_filtered_to_subject_erased_receives_it(store: Store) -> None:
    conf = settings(webhook_require_https=False, url_allowlist=("127.0.0.1",))
    calls = FakeCalls()
    async with Receiver() as receiver:
        async with (
            open_analytics(conf, store, calls, MonotonicClock()) as analytics,
            serve_api(analytics) as api,
        ):
            hooks: dict[str, str] = {}
            for path, types in (("/erased", ["subject.erased"]), ("/new", NEW_TYPES)):
                created = await api.post(
                    "/v1/webhooks",
                    json={"url": receiver.url(path), "events": types},
                    headers=bearer(ACME),
                )
                assert created.status_code == 201 and created.json()["events"] == sorted(types)
                hooks[path] = created.json()["id"]
            info = call_info("a1", tenant="acme")
            for event in opening() + closing():
                calls.emit(info, event)
            async with store.session() as session:
                await write_events(
                    session,
                    [
                        erasure("demo", "era_" + "0" * 32, ["d1"]),  # another tenant's
                        erasure("acme", ERASURE, ["a1", "a0"]),
                    ],
                    NODE,
                )
            analytics.relay.wake()

            async def erasure_sent_and_call_passed() -> bool:
                async with store.session() as session:
                    for hook in hooks.values():
                        mark = await session.get(RelayMarkRow, (f"webhook:{hook}", "a1"))
                        if mark is None or mark.delivered_seq < 4:
                            return False
                return len(receiver.requests) == 2

            await wait_for(erasure_sent_and_call_passed, what="the erasure sent to both webhooks")
        async with store.session() as session:
            marks = (await session.scalars(select(RelayMarkRow))).all()
    for hook in hooks.values():  # the other tenant's erasure is not even looked at
        assert {m.call_id for m in marks if m.sink == f"webhook:{hook}"} == {"a1", ERASURE}
    assert sorted(r.path for r in receiver.requests) == ["/erased", "/new"]
    for sent in receiver.requests:
        assert sent.headers["x-voicenode-event-type"] == "subject.erased"
        got = decode_event(sent.body)
        assert isinstance(got, SubjectErasedEvent) and event_type(got) == "subject.erased"
        assert got.tenant_id == "acme" and got.call_ids == ["a1", "a0"]
