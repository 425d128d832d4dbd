"""Data-subject requests on a real migrated store, the real analytics recorder and relay (a
webhook on a local HTTP receiver), a local recordings store and a campaign: export then erase
of one caller across three calls, tenant isolation, roles, malformed numbers, an unknown
subject, a call still going."""

from __future__ import annotations

import datetime
import io
import json
import logging
import socket
import wave
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.middleware import DefineMiddleware
from sqlalchemy import select

from control_api.acting_tenant import tenant_dependency
from control_api.analytics import Analytics, open_analytics
from control_api.analytics.tables import CallRow, DeadLetterRow, OutboxRow, RelayMarkRow
from control_api.auth import BearerAuth, Principal
from control_api.campaigns import notify
from control_api.campaigns import rows as campaign_rows
from control_api.campaigns.lifecycle import Disposition
from control_api.campaigns.model import CampaignIn, Contact, Retry, Schedule, Window
from control_api.recordings.s3 import S3RecordingStore, S3Settings
from control_api.recordings.store import LocalRecordingStore, RecordingKey, RecordingStore
from control_api.store import Base, Store
from control_api.store import tenants as tenant_rows
from control_api.store.crypto import new_key
from control_api.store.subjects import SubjectRequestRow, ref_key_from
from control_api.subjects_api import subjects_router
from media.call import CallInfo, Direction
from media.clock import MonotonicClock
from tests.control_api.moto_s3 import ACCESS_KEY_ID, SECRET_ACCESS_KEY, make_bucket, s3_server
from tests.support.analytics import (
    NODE,
    FakeCalls,
    Keys,
    Received,
    Receiver,
    bearer,
    closing,
    opening,
    serve_api,
    settings,
    wait_for,
)
from tests.support.host import temp_store
from tests.support.pg import PostgresServer, pg_server  # noqa: F401
from tests.support.ports import free_port

PHONE = "+5511987654321"
DIGITS = "5511987654321"
OTHER_PHONE = "+5511912345678"
ADMIN = "platform-admin-key-0123"
ACME = "acme-admin-key-0123"
OPERATOR = "acme-operator-key-0123"
VIEWER = "acme-viewer-key-0123"
OTHER = "other-admin-key-0123"
KEYS = Keys(
    {
        ADMIN: Principal(),
        ACME: Principal(tenant_id="acme", role="admin", key_id="k_acme_admin"),
        OPERATOR: Principal(tenant_id="acme", role="operator", key_id="k_acme_operator"),
        VIEWER: Principal(tenant_id="acme", role="viewer", key_id="k_acme_viewer"),
        OTHER: Principal(tenant_id="other", role="admin", key_id="k_other_admin"),
    }
)
CALLS = {  # call id -> (tenant, direction, from, to)
    "s1": ("acme", "inbound", f'"Ana" <sip:{PHONE}@carrier.example>;tag=9a1', "agent:receptionist"),
    "s2": ("acme", "inbound", f"<sip:00{DIGITS}@10.0.0.7;user=phone>;tag=x2", "sip:100@node"),
    "s3": ("acme", "outbound", "", f"sip:{DIGITS}@trunk.example"),
    "o1": ("acme", "inbound", f"sip:{OTHER_PHONE}@carrier.example", "agent:receptionist"),
    "o2": ("acme", "inbound", "sip:+551198765432@carrier.example", "agent:receptionist"),
    "t1": ("other", "inbound", f"<sip:{PHONE}@carrier.example>;tag=t", "agent:receptionist"),
}
SUBJECT_CALLS = ["s1", "s2", "s3"]
FAILING = "s3:4"
"""The webhook receiver refuses this event (s3's call.ended): it stays undelivered."""


@dataclass
class Node:
    api: httpx.AsyncClient
    store: Store
    analytics: Analytics
    calls: FakeCalls
    recordings: RecordingStore
    receiver: Receiver


def info(call_id: str) -> CallInfo:
    tenant, direction, from_uri, to_uri = CALLS[call_id]
    return CallInfo(
        call_id=call_id,
        tenant_id=tenant,
        direction=Direction(direction),
        from_uri=from_uri,
        to_uri=to_uri,
        transport="sip",
    )


def wav_bytes(seconds: float = 0.2) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(bytes(int(16000 * seconds) * 4))
    return out.getvalue()


async def add_recording(recordings: RecordingStore, tmp: Path, call_id: str) -> None:
    spool = tmp / f"{call_id}.wav"
    spool.write_bytes(wav_bytes())
    await recordings.put(RecordingKey(CALLS[call_id][0], call_id, "wav"), spool)


def campaign() -> CampaignIn:
    return CampaignIn(
        name="renewals",
        agent="receptionist",
        via="sip",
        contacts=(
            Contact(number=PHONE, variables={"name": "Ana"}),
            Contact(number=OTHER_PHONE, variables={"name": "Bia"}),
        ),
        schedule=Schedule(
            timezone="America/Sao_Paulo",
            windows=(Window(days=("mon",), start="09:00", end="17:00"),),
        ),
        max_concurrent=1,
        calls_per_minute=10,
        retry=Retry(max_attempts=2, backoff_minutes=30, on=("busy",)),
    )


async def add_campaign(store: Store) -> None:
    """Acme's campaign calls the subject (the attempt is call s3, with its contact.attempted
    event) and another number."""
    now = datetime.datetime(2026, 1, 5, 13, 0, tzinfo=datetime.UTC)
    async with store.session() as session:
        campaign_id = await campaign_rows.create_campaign(session, "acme", campaign(), now)
        ids, _live = await campaign_rows.contact_states(session, "acme", campaign_id, now)
        subject = next(c.id for c in ids if c.number == PHONE)
        lease = datetime.timedelta(minutes=5)
        claim = campaign_rows.claim
        assert await claim(session, "acme", campaign_id, [subject], node="n", now=now, lease=lease)
        state = await campaign_rows.finish(
            session, "acme", subject, node="n", outcome=Disposition.ANSWERED_HUMAN, at=now,
            retry=campaign().retry, call_id="s3",
        )  # fmt: skip
        assert state is not None
        event = notify.attempted("acme", campaign_id, state, now, call_id="s3")
        await notify.emit(session, [event], NODE)


def event_id(request: Received) -> str:
    return request.headers["x-voicenode-event-id"]


@asynccontextmanager
async def serve(recordings: RecordingStore, url: str = "") -> AsyncIterator[Node]:
    """The subject routes (and the analytics ones) on a real server, a migrated store (at
    `url`; SQLite by default) with the tenants acme and other, analytics running with its
    relay, and `recordings`."""
    conf = settings(webhook_require_https=False, url_allowlist=("127.0.0.1",))
    calls = FakeCalls()

    def status_for(request: Received) -> int:
        return 500 if event_id(request) == FAILING else 200

    async with temp_store(url) as store, Receiver(status_for) as receiver:
        async with store.session() as session:
            await tenant_rows.create_tenant(session, "Acme", tenant_id="acme")
            await tenant_rows.create_tenant(session, "Other", tenant_id="other")
        async with open_analytics(conf, store, calls, MonotonicClock()) as analytics:
            router = subjects_router(
                analytics,
                recordings,
                ref_key_from(new_key()),
                dependencies=tenant_dependency(store),
                middleware=[DefineMiddleware(BearerAuth, keys=KEYS)],
            )
            async with serve_api(analytics, KEYS, extra=[router]) as api:
                yield Node(api, store, analytics, calls, recordings, receiver)


@pytest.fixture(params=["sqlite", "postgres"])
async def node(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Node]:
    url = ""
    if request.param == "postgres":
        server: PostgresServer = request.getfixturevalue("pg_server")
        url = server.create_database()
    async with serve(LocalRecordingStore(tmp_path / "recordings"), url) as served:
        yield served


async def record_calls(node: Node, tmp: Path, call_ids: list[str], *, end: bool = True) -> None:
    want = node.analytics.recorder.written + len(call_ids) * (5 if end else 3)
    for call_id in call_ids:
        for event in opening() + (closing() if end else []):
            node.calls.emit(info(call_id), event)

    async def written() -> bool:
        return node.analytics.recorder.written >= want

    await wait_for(written, what="the calls recorded")
    if end:
        for call_id in call_ids:
            await add_recording(node.recordings, tmp, call_id)


async def rows_with_the_number(store: Store) -> list[tuple[str, dict[str, Any]]]:
    """Every row of every table whose text holds the subject's digits."""
    found = []
    async with store.session() as session:
        for table in Base.metadata.sorted_tables:
            for row in (await session.execute(select(table))).mappings():
                if "987654321" in json.dumps(dict(row), default=str):
                    found.append((table.name, dict(row)))
    return found


async def test_export_then_erase_leaves_nothing_of_the_caller(
    node: Node, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    hook = await node.api.post(
        "/v1/webhooks", json={"url": node.receiver.url("/acme")}, headers=bearer(ACME)
    )
    assert hook.status_code == 201
    await record_calls(node, tmp_path, list(CALLS))
    await add_campaign(node.store)
    acme_events = {f"{c}:{i}" for c in CALLS if CALLS[c][0] == "acme" for i in range(5)}

    async def relayed() -> bool:
        got = [event_id(r) for r in node.receiver.requests]
        return acme_events <= set(got)  # every one tried, the failing one at least once

    await wait_for(relayed, what="acme's events at the webhook, s3's call.ended refused")
    async with node.store.session() as session:  # s3's call.ended is in the outbox, undelivered
        assert await session.scalar(select(OutboxRow.id).where(OutboxRow.event_id == FAILING))
        marks = (
            await session.scalars(select(RelayMarkRow).where(RelayMarkRow.call_id == "s3"))
        ).all()
        assert marks and all(m.delivered_seq < 4 for m in marks)

    export = await node.api.get(f"/v1/subjects/{PHONE}/export", headers=bearer(ACME))
    assert export.status_code == 200, export.text
    body = export.json()
    assert body["subject"] == PHONE and body["tenant_id"] == "acme"
    assert body["subject_ref"].startswith("hmac-sha256:")
    assert [c["id"] for c in body["calls"]] == SUBJECT_CALLS
    for call in body["calls"]:
        assert [line["role"] for line in call["transcript"]] == ["user", "agent"]
        assert call["disposition"] and call["summary"] is not None
        assert [e["seq"] for e in call["events"]] == [0, 1, 2, 3, 4]
        assert call["recording"] == {
            "url": f"/v1/calls/{call['id']}/recording",
            "format": "wav",
            "size_bytes": len(wav_bytes()),
        }
    [contact] = body["campaign_contacts"]
    assert contact["number"] == PHONE and contact["campaign"] == "renewals"
    assert contact["variables"] == {"name": "Ana"}
    assert [a["call_id"] for a in contact["attempts_made"]] == ["s3"]

    caplog.set_level(logging.INFO, logger="control_api.subjects_api")
    erased = await node.api.delete(f"/v1/subjects/{PHONE}", headers=bearer(ACME))
    assert erased.status_code == 200, erased.text
    receipt = erased.json()
    assert receipt["call_ids"] == SUBJECT_CALLS
    assert receipt["subject_ref"] == body["subject_ref"]
    assert receipt["erased"] == {
        "calls": 3,
        "transcript_lines": 6,
        "events": 16,  # 5 per call, and the contact's contact.attempted
        "dead_letters": 0,
        "recordings": 3,
        "campaign_contacts": 1,
        "campaign_attempts": 1,
    }

    # nothing of theirs in the store, the recordings or the outbox (undelivered s3:4 included)
    leftovers = await rows_with_the_number(node.store)
    assert {(table, row.get("call_id", row.get("id"))) for table, row in leftovers} == {
        ("calls", "t1"),  # the other tenant's call, and its call.started event
        ("outbox", "t1"),
    }
    async with node.store.session() as session:
        outbox = (await session.scalars(select(OutboxRow))).all()
        assert not {r.call_id for r in outbox} & set(SUBJECT_CALLS)
        assert not [r for r in outbox if r.type == "contact.attempted"]
        assert {r.call_id for r in outbox if DIGITS in r.payload} == {"t1"}
        calls = set((await session.scalars(select(CallRow.id))).all())
        assert calls == {"o1", "o2", "t1"}
        marked = (await session.scalars(select(RelayMarkRow.call_id))).all()
        assert not set(marked) & set(SUBJECT_CALLS)
        assert not (await session.scalars(select(DeadLetterRow))).all()
        contacts = (await session.scalars(select(campaign_rows.ContactRow.number))).all()
        assert contacts == [OTHER_PHONE]
        assert not (await session.scalars(select(campaign_rows.AttemptRow))).all()
        audit = (
            await session.scalars(select(SubjectRequestRow).order_by(SubjectRequestRow.at))
        ).all()
    left = sorted((k.tenant_id, k.call_id) for k in (r.key for r in await node.recordings.list()))
    assert left == [("acme", "o1"), ("acme", "o2"), ("other", "t1")]
    assert [(a.kind, a.actor, a.subject_ref) for a in audit] == [
        ("export", "k_acme_admin", body["subject_ref"]),
        ("erase", "k_acme_admin", body["subject_ref"]),
    ]
    assert audit[1].counts == receipt["erased"] and audit[1].id == receipt["erasure_id"]

    # the erasure event reaches the webhook, naming the calls and never the number
    def erasures() -> list[Received]:
        requests = node.receiver.requests
        return [r for r in requests if r.headers["x-voicenode-event-type"] == "subject.erased"]

    async def erasure_sent() -> bool:
        return bool(erasures())

    await wait_for(erasure_sent, what="subject.erased at the webhook")
    [sent] = erasures()
    event = json.loads(sent.body)
    assert event["call_ids"] == SUBJECT_CALLS and event["subject"] == body["subject_ref"]
    assert event["call_id"] == receipt["erasure_id"] and DIGITS[4:] not in sent.body.decode()
    logged = [r for r in caplog.records if r.getMessage() == "subject erased"]
    assert len(logged) == 1 and DIGITS[4:] not in json.dumps(logged[0].__dict__, default=str)

    # the other tenant's calls are untouched, and a second erasure finds nothing
    other = await node.api.get(f"/v1/subjects/{PHONE}/export", headers=bearer(OTHER))
    assert [c["id"] for c in other.json()["calls"]] == ["t1"]
    assert other.json()["calls"][0]["recording"] is not None
    again = await node.api.delete(f"/v1/subjects/{PHONE}", headers=bearer(ACME))
    assert again.status_code == 200
    assert set(again.json()["erased"].values()) == {0} and again.json()["call_ids"] == []


async def audit_kinds(store: Store) -> list[str]:
    async with store.session() as session:
        return list((await session.scalars(select(SubjectRequestRow.kind))).all())


async def test_only_the_tenants_admin_keys_may_export_or_erase(node: Node, tmp_path: Path) -> None:
    await record_calls(node, tmp_path, ["s1"])
    for key in (VIEWER, OPERATOR):
        export = await node.api.get(f"/v1/subjects/{PHONE}/export", headers=bearer(key))
        assert export.status_code == 403, key
        assert "needs admin" in export.json()["detail"]
        erase = await node.api.delete(f"/v1/subjects/{PHONE}", headers=bearer(key))
        assert erase.status_code == 403, key
    assert await audit_kinds(node.store) == []
    ghost = await node.api.get(f"/v1/subjects/{PHONE}/export?tenant=ghost", headers=bearer(ADMIN))
    assert ghost.status_code == 404  # the platform admin naming a tenant that is not there
    platform = await node.api.get(f"/v1/subjects/{PHONE}/export?tenant=acme", headers=bearer(ADMIN))
    assert [c["id"] for c in platform.json()["calls"]] == ["s1"]
    async with node.store.session() as session:
        actors = (await session.scalars(select(SubjectRequestRow.actor))).all()
    assert actors == ["platform"]


async def test_a_tenant_sees_and_erases_only_its_own_callers(node: Node, tmp_path: Path) -> None:
    await record_calls(node, tmp_path, ["s1", "t1"])
    named = await node.api.get(f"/v1/subjects/{PHONE}/export?tenant=other", headers=bearer(ACME))
    assert named.status_code == 403  # a tenant key may not name another tenant
    other = await node.api.get(f"/v1/subjects/{PHONE}/export", headers=bearer(OTHER))
    assert [c["id"] for c in other.json()["calls"]] == ["t1"]
    nobody = await node.api.get(f"/v1/subjects/{OTHER_PHONE}/export", headers=bearer(OTHER))
    assert nobody.status_code == 200 and nobody.json()["calls"] == []
    erased = await node.api.delete(f"/v1/subjects/{PHONE}", headers=bearer(OTHER))
    assert erased.json()["call_ids"] == ["t1"] and erased.json()["erased"]["recordings"] == 1
    acme = await node.api.get(f"/v1/subjects/{PHONE}/export", headers=bearer(ACME))
    assert [c["id"] for c in acme.json()["calls"]] == ["s1"]
    assert acme.json()["calls"][0]["recording"] is not None
    assert acme.json()["subject_ref"] != erased.json()["subject_ref"]  # keyed per tenant


@pytest.mark.parametrize(
    "phone",
    ["5511987654321", "+55 11 98765-4321", "+0511987654321", "%2B55abc", "tel:+5511987654321",
     "+1234567890123456", "+"],
)  # fmt: skip
async def test_a_phone_that_is_not_e164_is_a_400_naming_it(node: Node, phone: str) -> None:
    for method, path in (
        ("GET", f"/v1/subjects/{phone}/export"),
        ("DELETE", f"/v1/subjects/{phone}"),
    ):
        resp = await node.api.request(method, path, headers=bearer(ACME))
        assert resp.status_code == 400, (method, phone, resp.text)
        body = resp.json()
        assert body["detail"].startswith("phone: not an E.164 number")
        assert body["extra"] == [{"message": body["detail"][7:], "key": "phone", "source": "path"}]
        assert "98765" not in body["detail"]  # the number is never repeated back
    assert await audit_kinds(node.store) == []


async def test_erasing_an_unknown_subject_is_an_audited_erasure_of_nothing(
    node: Node, tmp_path: Path
) -> None:
    await record_calls(node, tmp_path, ["o1"])
    for _ in range(2):
        resp = await node.api.delete("/v1/subjects/+4915112345678", headers=bearer(ACME))
        assert resp.status_code == 200
        assert resp.json()["call_ids"] == [] and set(resp.json()["erased"].values()) == {0}
    assert await audit_kinds(node.store) == ["erase", "erase"]
    other = await node.api.get(f"/v1/subjects/{OTHER_PHONE}/export", headers=bearer(ACME))
    assert [c["id"] for c in other.json()["calls"]] == ["o1"]


async def test_a_call_still_going_holds_the_erasure_back(node: Node, tmp_path: Path) -> None:
    await record_calls(node, tmp_path, ["s1"])
    await record_calls(node, tmp_path, ["s2"], end=False)
    resp = await node.api.delete(f"/v1/subjects/{PHONE}", headers=bearer(ACME))
    assert resp.status_code == 409
    assert resp.json()["extra"] == {"call_ids": ["s2"], "contacts_held": 0}
    export = await node.api.get(f"/v1/subjects/{PHONE}/export", headers=bearer(ACME))
    assert [c["id"] for c in export.json()["calls"]] == ["s1", "s2"]
    assert export.json()["calls"][0]["recording"] is not None  # nothing was erased
    for event in closing():
        node.calls.emit(info("s2"), event)

    async def ended() -> bool:
        async with node.store.session() as session:
            call = await session.get(CallRow, "s2")
            return call is not None and call.ended_at is not None

    await wait_for(ended, what="s2 ended")
    resp = await node.api.delete(f"/v1/subjects/{PHONE}", headers=bearer(ACME))
    assert resp.status_code == 200 and resp.json()["call_ids"] == ["s1", "s2"]


async def test_recordings_in_s3_are_erased_and_an_unreachable_bucket_erases_nothing(
    tmp_path: Path,
) -> None:
    with s3_server() as endpoint:
        make_bucket(endpoint, "calls")
        s3 = S3RecordingStore(
            S3Settings(bucket="calls", endpoint_url=endpoint, access_key_id=ACCESS_KEY_ID,
                       secret_access_key=SECRET_ACCESS_KEY)
        )  # fmt: skip
        async with serve(s3) as node:
            await record_calls(node, tmp_path, ["s1", "o1"])
            resp = await node.api.delete(f"/v1/subjects/{PHONE}", headers=bearer(ACME))
            assert resp.json()["erased"]["recordings"] == 1
            assert [r.key.call_id for r in await s3.list("acme")] == ["o1"]
    unreachable = S3RecordingStore(
        S3Settings(bucket="calls", endpoint_url=f"http://127.0.0.1:{free_port(socket.SOCK_STREAM)}",
                   access_key_id=ACCESS_KEY_ID, secret_access_key=SECRET_ACCESS_KEY)
    )  # fmt: skip
    async with serve(unreachable) as node:
        await record_calls(node, tmp_path, ["s1"], end=False)
        for event in closing():
            node.calls.emit(info("s1"), event)
        await wait_for(lambda: _ended(node, "s1"), what="s1 ended")
        resp = await node.api.delete(f"/v1/subjects/{PHONE}", headers=bearer(ACME))
        assert resp.status_code == 503 and "recordings store" in resp.json()["detail"]
        async with node.store.session() as session:
            assert await session.get(CallRow, "s1") is not None
        assert await audit_kinds(node.store) == []


async def _ended(node: Node, call_id: str) -> bool:
    async with node.store.session() as session:
        call = await session.get(CallRow, call_id)
        return call is not None and call.ended_at is not None
