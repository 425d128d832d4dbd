"""Personal data leaves a call only as placeholders (`agents.pii`): a caller line with a card
number and an email, recorded by the real analytics (store, outbox, relay, a webhook receiver
on a real HTTP server, the history API on a real server), comes out as `[CARD]`/`[EMAIL]`, with
`redacted` naming the kinds, in the outbox rows, the call record, the history API, the webhook
deliveries and the live feed; the tool call and the outcome's slots too. A tenant's policy (the
lookup's `pii`) redacts only its kinds."""

from __future__ import annotations

import json
from typing import Any

import msgspec
from sqlalchemy import select

from control_api.analytics import AgentRef, open_analytics
from control_api.analytics.events import TranscriptFinalEvent, decode_event
from control_api.analytics.tables import CallRow, OutboxRow
from control_api.store import Store
from media.call import CallInfo
from media.clock import MonotonicClock
from pipeline.events import CallEnded, CallEvent, StateChanged, ToolCalled, Transcript
from tests.support.analytics import (
    ADMIN,
    FakeCalls,
    Receiver,
    WallClock,
    bearer,
    call_info,
    serve_api,
    settings,
    store,
    wait_for,
)

__all__ = ["store"]

CARD = "4111 1111 1111 1111"
LINE = f"My card is {CARD} and my email is john at example dot com"
REDACTED = "My card is [CARD] and my email is [EMAIL]"
RAW = (b"4111", b"john at example", b"john@example.com")


def call_with_pii() -> list[CallEvent]:
    """A call whose caller reads a card and an email; the agent reads the email back, a tool
    gets both, the flow kept the card as a slot."""
    return [
        StateChanged("listening"),
        Transcript(role="user", text="My card is 4111 1111", final=False, turn=1),
        Transcript(role="user", text=LINE, final=True, turn=1),
        Transcript(role="agent", text="Thanks, I have john@example.com.", final=True, turn=1),
        ToolCalled(
            name="charge",
            arguments={"card": "4111111111111111", "contact": ["john@example.com"]},
            result="charged card 4111111111111111",
            ok=True,
        ),
        CallEnded(reason="completed", duration_s=30.0, slots={"card": "4111111111111111"}),
    ]


async def outbox_events(store: Store, call_id: str) -> list[tuple[str, str]]:
    async with store.session() as session:
        rows = await session.scalars(
            select(OutboxRow).where(OutboxRow.call_id == call_id).order_by(OutboxRow.seq)
        )
        return [(row.type, row.payload) for row in rows]


async def test_transcripts_events_history_webhooks_and_feed_carry_placeholders(
    store: Store,
) -> None:
    conf = settings(webhook_require_https=False, url_allowlist=("127.0.0.1",))
    calls = FakeCalls()
    info = call_info("c1")
    async with Receiver() as receiver:
        async with (
            open_analytics(conf, store, calls, MonotonicClock(), wall=WallClock()) as analytics,
            serve_api(analytics) as api,
        ):
            hook = await api.post(
                "/v1/webhooks", json={"url": receiver.url()}, headers=bearer(ADMIN)
            )
            assert hook.status_code == 201, hook.text
            with analytics.feed.subscribe(None) as feed:
                for event in call_with_pii():
                    calls.emit(info, event)

                async def delivered() -> bool:
                    return len(receiver.requests) == 5

                await wait_for(delivered, what="five events delivered to the webhook")
            live = [json.loads(feed.queue.get_nowait()) for _ in range(feed.queue.qsize())]
            detail = await api.get("/v1/calls/c1", headers=bearer(ADMIN))
        rows = await outbox_events(store, "c1")

    # the outbox: every payload redacted, the transcript events say what was
    assert [t for t, _ in rows] == [
        "call.started", "transcript.final", "transcript.final", "tool.called", "call.ended"
    ]  # fmt: skip
    for _, payload in rows:
        assert not any(raw in payload.encode() for raw in RAW), payload
    user, agent = [decode_event(p) for t, p in rows if t == "transcript.final"]
    assert isinstance(user, TranscriptFinalEvent) and isinstance(agent, TranscriptFinalEvent)
    assert (user.text, user.redacted) == (REDACTED, ["card", "email"])
    assert (agent.text, agent.redacted) == ("Thanks, I have [EMAIL].", ["email"])
    tool = json.loads(rows[3][1])
    assert tool["arguments"] == {"card": "[CARD]", "contact": ["[EMAIL]"]}
    assert tool["result"] == "charged card [CARD]" and tool["redacted"] == ["card", "email"]
    ended = json.loads(rows[4][1])
    assert ended["outcome"]["slots"] == {"card": "[CARD]"} and ended["redacted"] == ["card"]

    # the webhooks get the outbox's payloads
    for request in receiver.requests:
        assert not any(raw in request.body for raw in RAW), request.body
    bodies = [msgspec.json.decode(r.body) for r in receiver.requests]
    assert [b["text"] for b in bodies if b["type"] == "transcript.final"][0] == REDACTED

    # the history API reads the stored (redacted) record
    assert detail.status_code == 200, detail.text
    body = detail.json()
    assert [(line["text"], line["redacted"]) for line in body["transcript"]] == [
        (REDACTED, ["card", "email"]),
        ("Thanks, I have [EMAIL].", ["email"]),
    ]
    assert body["slots"] == {"card": "[CARD]"}
    assert not any(raw.decode() in detail.text for raw in RAW)

    # the live feed: the partial transcript too
    partial = [m for m in live if m["type"] == "transcript.partial"]
    assert [m["text"] for m in partial] == ["My card is 4111 1111"]  # 8 digits: no card yet
    finals = [m for m in live if m["type"] == "transcript.final"]
    assert [m["text"] for m in finals][0] == REDACTED


async def test_a_tenants_policy_redacts_only_its_kinds(store: Store) -> None:
    policies = {"mail-only": frozenset({"email"}), "nothing": frozenset[str]()}

    def lookup(info: CallInfo) -> AgentRef:
        return AgentRef(name="receptionist", pii=policies[info.tenant_id])

    calls = FakeCalls()
    conf = settings()
    async with open_analytics(conf, store, calls, agents=lookup, wall=WallClock()) as analytics:
        for tenant in policies:
            for event in call_with_pii():
                calls.emit(call_info(f"{tenant}-1", tenant=tenant), event)

        async def written() -> bool:
            return analytics.recorder.written == 2 * 5

        await wait_for(written, what="both calls written")
    async with store.session() as session:
        records = {
            row.id: row for row in await session.scalars(select(CallRow).order_by(CallRow.id))
        }
    lines: dict[str, Any] = {call: row.transcript for call, row in records.items()}
    assert lines["mail-only-1"][0]["text"] == f"My card is {CARD} and my email is [EMAIL]"
    assert lines["mail-only-1"][0]["redacted"] == ["email"]
    assert records["mail-only-1"].slots == {"card": "4111111111111111"}
    assert lines["nothing-1"][0]["text"] == LINE and lines["nothing-1"][0]["redacted"] == []
