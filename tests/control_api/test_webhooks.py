"""Webhooks: the API (secret shown once, SSRF targets refused), signed deliveries to a real
receiver, retries with backoff on the injected clock, dead letters, per-call ordering."""

from __future__ import annotations

import datetime
import time

import httpx
import msgspec
import pytest
from sqlalchemy import select

from control_api.analytics import open_analytics
from control_api.analytics.events import CallTrack
from control_api.analytics.outbox import write_events
from control_api.analytics.relay import Relay
from control_api.analytics.sinks import SIGNATURE_HEADER, sign, verify_signature
from control_api.analytics.tables import DeadLetterRow, RelayMarkRow, WebhookRow
from control_api.store import Store
from media.clock import MonotonicClock, VirtualClock
from tests.support.analytics import (
    ACME,
    ADMIN,
    NODE,
    T0,
    FakeCalls,
    Received,
    Receiver,
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

REFUSED = [
    "https://127.0.0.1/hook",
    "https://10.1.2.3/hook",
    "https://169.254.169.254/latest/meta-data/",
    "https://localhost/hook",  # a host name that resolves to loopback
    "https://[::1]/hook",
    "http://example.com/hook",  # not https
    "ftp://example.com/hook",
]


@pytest.mark.parametrize("url", REFUSED)
async def test_webhook_urls_reaching_private_addresses_are_refused(store: Store, url: str) -> None:
    async with (
        open_analytics(settings(), store, FakeCalls(), wall=WallClock()) as analytics,
        serve_api(analytics) as api,
    ):
        response = await api.post("/v1/webhooks", json={"url": url}, headers=bearer(ADMIN))
        assert response.status_code == 400, response.text
        listed = await api.get("/v1/webhooks", headers=bearer(ADMIN))
        assert listed.json() == {"webhooks": []}


async def test_webhook_api_shows_the_secret_once_and_scopes_tenants(store: Store) -> None:
    conf = settings(webhook_require_https=False, url_allowlist=("127.0.0.1",))
    async with (
        open_analytics(conf, store, FakeCalls(), wall=WallClock()) as analytics,
        serve_api(analytics) as api,
    ):
        assert (await api.get("/v1/webhooks")).status_code == 401
        created = await api.post(
            "/v1/webhooks",
            json={"url": "http://127.0.0.1:9/hook", "events": ["call.ended"]},
            headers=bearer(ACME),
        )
        assert created.status_code == 201, created.text
        body = created.json()
        assert body["secret"].startswith("whsec_") and body["tenant_id"] == "acme"
        assert body["events"] == ["call.ended"]
        listed = (await api.get("/v1/webhooks", headers=bearer(ACME))).json()["webhooks"]
        assert [w["id"] for w in listed] == [body["id"]]
        assert "secret" not in listed[0]
        # the admin acting for demo does not see acme's webhook; acting for acme it does
        assert (await api.get("/v1/webhooks", headers=bearer(ADMIN))).json()["webhooks"] == []
        as_acme = await api.get("/v1/webhooks", params={"tenant": "acme"}, headers=bearer(ADMIN))
        assert len(as_acme.json()["webhooks"]) == 1
        other = await api.get("/v1/webhooks", params={"tenant": "demo"}, headers=bearer(ACME))
        assert other.status_code == 403
        bad = await api.post(
            "/v1/webhooks",
            json={"url": "http://127.0.0.1:9/hook", "events": ["call.nope"]},
            headers=bearer(ACME),
        )
        assert bad.status_code == 400
        extra = await api.post(
            "/v1/webhooks", json={"url": "http://127.0.0.1:9/x", "bogus": 1}, headers=bearer(ACME)
        )
        assert extra.status_code == 400
        gone = await api.delete(f"/v1/webhooks/{body['id']}", headers=bearer(ACME))
        assert gone.status_code == 204
        again = await api.delete(f"/v1/webhooks/{body['id']}", headers=bearer(ACME))
        assert again.status_code == 404
        assert (await api.get("/v1/webhooks", headers=bearer(ACME))).json()["webhooks"] == []


async def test_deliveries_are_signed_and_filtered(store: Store) -> None:
    conf = settings(webhook_require_https=False, url_allowlist=("127.0.0.1",))
    calls = FakeCalls()
    async with Receiver() as receiver:
        async with (
            open_analytics(conf, store, calls, MonotonicClock()) as analytics,
            serve_api(analytics) as api,
        ):
            everything = (
                await api.post(
                    "/v1/webhooks", json={"url": receiver.url("/all")}, headers=bearer(ADMIN)
                )
            ).json()
            ended_only = (
                await api.post(
                    "/v1/webhooks",
                    json={"url": receiver.url("/ended"), "events": ["call.ended"]},
                    headers=bearer(ADMIN),
                )
            ).json()
            acme = await api.post(
                "/v1/webhooks", json={"url": receiver.url("/acme")}, headers=bearer(ACME)
            )
            assert acme.status_code == 201
            info = call_info("c1")
            for event in opening() + closing():
                calls.emit(info, event)

            async def delivered() -> bool:
                return len(receiver.requests) == 6

            await wait_for(delivered, what="five events to /all and one to /ended")
        by_path: dict[str, list[Received]] = {}
        for request in receiver.requests:
            by_path.setdefault(request.path, []).append(request)
        assert set(by_path) == {"/all", "/ended"}  # acme's hook gets no demo call
        assert [r.headers["x-voicenode-event-id"] for r in by_path["/all"]] == [
            f"c1:{i}" for i in range(5)
        ]
        assert [r.headers["x-voicenode-event-type"] for r in by_path["/ended"]] == ["call.ended"]
        for path, hook in (("/all", everything), ("/ended", ended_only)):
            for request in by_path[path]:
                header = request.headers[SIGNATURE_HEADER.lower()]
                assert verify_signature(hook["secret"], header, request.body, now=time.time())
                assert not verify_signature("whsec_wrong", header, request.body, now=time.time())
                assert not verify_signature(
                    hook["secret"], header, request.body + b" ", now=time.time()
                )
                event = msgspec.json.decode(request.body)
                assert event["id"] == request.headers["x-voicenode-event-id"]


def test_signature_format_and_tolerance() -> None:
    header = sign("s3cret", 1_700_000_000, b'{"a":1}')
    assert header.startswith("t=1700000000,v1=") and len(header.split("v1=")[1]) == 64
    assert verify_signature("s3cret", header, b'{"a":1}', now=1_700_000_100)
    assert not verify_signature("s3cret", header, b'{"a":1}', now=1_700_000_000 + 301)
    assert not verify_signature("s3cret", "v1=abc", b'{"a":1}', now=1_700_000_000)


# ---- retries, backoff and dead letters, pass by pass on a virtual clock ----


async def _write_call(store: Store, call_id: str, tenant: str = "demo") -> None:
    track = CallTrack(call_info(call_id, tenant=tenant), agent="receptionist", node=NODE)
    wall = WallClock()
    events = [track.started(wall())]
    for event in opening():
        out = track.feed(event, wall())
        if out is not None:
            events.append(out)
    async with store.session() as session:
        await write_events(session, events, NODE)


async def _add_webhook(store: Store, url: str, hook_id: str = "wh_test") -> None:
    async with store.session() as session:
        session.add(
            WebhookRow(
                id=hook_id,
                tenant_id="demo",
                url=url,
                events=[],
                secret="whsec_test",
                after_outbox_id=0,
                created_at=T0,
            )
        )


def _relay(store: Store, clock: VirtualClock, http: httpx.AsyncClient, **conf: object) -> Relay:
    analytics = settings(
        webhook_backoff_s=1.0, webhook_backoff_max_s=4.0, webhook_max_attempts=4, **conf
    ).analytics
    return Relay(
        analytics,
        store=store,
        node=NODE,
        clock=clock,
        wall=lambda: datetime.datetime.now(datetime.UTC),
        http=http,
    )


async def test_failed_event_is_retried_with_backoff_then_dead_lettered(store: Store) -> None:
    clock = VirtualClock()

    def status_for(request: Received) -> int:
        return 500 if request.headers["x-voicenode-event-id"] == "bad:0" else 200

    async with Receiver(status_for) as receiver, httpx.AsyncClient() as http:
        await _add_webhook(store, receiver.url())
        await _write_call(store, "bad")
        await _write_call(store, "good")
        relay = _relay(store, clock, http, allow_private_urls=True)

        def sent() -> list[str]:
            return [r.headers["x-voicenode-event-id"] for r in receiver.requests]

        due = await relay.pass_once()
        # the failing call is held back; the other call is not
        assert sent() == ["bad:0", "good:0", "good:1", "good:2"]
        assert due == 1.0
        # tries of bad:0 at t = 0, 1, 3, 7 (backoff 1, 2, 4 s); none a moment before
        for moment, tries in ((0.99, 1), (1.0, 2), (2.99, 2), (3.0, 3), (6.99, 3), (7.0, 4)):
            await clock.advance(moment - clock.now())
            due = await relay.pass_once()
            assert sent().count("bad:0") == tries, f"at t={moment}"
        assert due is None
        assert sent().count("bad:0") == 4
        # given up: dead-lettered, and the call's later events went on in order
        assert sent()[-2:] == ["bad:1", "bad:2"]
        async with store.session() as session:
            dead = (await session.scalars(select(DeadLetterRow))).all()
            marks = {
                m.call_id: m.delivered_seq
                for m in (await session.scalars(select(RelayMarkRow))).all()
            }
        assert [(d.event_id, d.attempts, d.error) for d in dead] == [
            ("bad:0", 4, "http status 500")
        ]
        assert marks == {"bad": 2, "good": 2}
        # a restarted relay resumes from the marks: nothing is sent twice
        before = len(receiver.requests)
        assert (
            await _relay(store, VirtualClock(), http, allow_private_urls=True).pass_once() is None
        )
        assert len(receiver.requests) == before


async def test_delivery_refuses_private_targets_unless_allowed(store: Store) -> None:
    """A stored webhook whose host resolves to loopback gets nothing (checked at send time)."""
    clock = VirtualClock()
    async with Receiver() as receiver, httpx.AsyncClient() as http:
        await _add_webhook(store, receiver.url().replace("127.0.0.1", "localhost"))
        await _write_call(store, "c1")
        relay = _relay(store, clock, http)  # no allowlist
        for _ in range(4):
            await relay.pass_once()
            await clock.advance(10)
        assert receiver.requests == []
        async with store.session() as session:
            dead = (await session.scalars(select(DeadLetterRow))).all()
        assert [d.event_id for d in dead] == ["c1:0"]
        assert dead[0].error.startswith("refused URL")
        allowed = _relay(store, clock, http, url_allowlist=("localhost",))
        await allowed.pass_once()
        assert [r.headers["x-voicenode-event-id"] for r in receiver.requests] == ["c1:1", "c1:2"]
