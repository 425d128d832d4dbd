"""`WS /v1/events` on the real app (real store, real keys): a revoked key's live stream closes
with 4401 at the next re-check (virtual clock), a tenant's sockets are capped (4429) without
touching another tenant's, a phone token is no key here, and oversized messages close 1009."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import msgspec
from websockets.asyncio.client import connect

from control_api.analytics import Analytics, open_analytics
from control_api.events_ws import CLOSE_TOO_MANY, CLOSE_UNAUTHORIZED
from control_api.phone import PhoneTokens
from media.clock import VirtualClock
from tests.control_api.test_events_ws import closed_with, receive
from tests.control_api.test_isolation import new_tenant
from tests.support.analytics import call_info, opening, wait_for
from tests.support.harness import Node, auth, node_settings, serve_node
from tests.support.host import FakeHost, temp_store

RECHECK_S = 5.0


class SleepCountingClock(VirtualClock):
    """A virtual clock that says how many tasks sleep on it (the sockets' key re-checks)."""

    def __init__(self) -> None:
        super().__init__()
        self.sleeping = 0

    async def sleep_until(self, deadline: float) -> None:
        self.sleeping += 1
        try:
            await super().sleep_until(deadline)
        finally:
            self.sleeping -= 1


class AnalyticsHost(FakeHost):
    analytics: Analytics | None = None


class Served(msgspec.Struct, frozen=True):
    node: Node
    clock: SleepCountingClock
    analytics: Analytics
    phone_token: str

    @property
    def ws(self) -> str:
        return self.node.url.replace("http://", "ws://") + "/v1/events"

    async def rechecks(self, count: int) -> None:
        """Wait until `count` sockets sleep until their next key re-check."""

        async def sleeping() -> bool:
            return self.clock.sleeping == count

        await wait_for(sleeping, what=f"{count} key re-check(s) scheduled")


@asynccontextmanager
async def served(max_per_tenant: int = 16) -> AsyncIterator[Served]:
    settings = node_settings()
    settings = msgspec.structs.replace(
        settings,
        http=msgspec.structs.replace(
            settings.http,
            events_recheck_s=RECHECK_S,
            events_max_per_tenant=max_per_tenant,
            max_ws_message_bytes=4096,
        ),
    )
    clock = SleepCountingClock()
    phone = PhoneTokens(3600)
    async with temp_store() as store:
        host = AnalyticsHost()
        await host.attach_store(store)
        async with open_analytics(settings, store, host.calls) as analytics:
            host.analytics = analytics
            async with serve_node(host, settings, clock=clock, phone=phone) as node:
                yield Served(node, clock, analytics, phone.issue(clock.now()))


async def tenant_key(node: Node, name: str) -> tuple[str, str, str]:
    """A new tenant's id, its admin key and that key's id."""
    tenant, keys = await new_tenant(node, name)
    listed = (await node.http.get("/v1/keys", headers=auth(keys["admin"]))).json()
    key_id = next(k["id"] for k in listed if k["role"] == "admin")
    return tenant, keys["admin"], key_id


async def test_a_revoked_key_loses_its_live_stream() -> None:
    async with served() as s:
        acme, acme_key, acme_key_id = await tenant_key(s.node, "Revoked")
        other, other_key, _ = await tenant_key(s.node, "Bystander")
        async with (
            connect(f"{s.ws}?key={acme_key}") as revoked,
            connect(s.ws, additional_headers=auth(other_key)) as bystander,
        ):
            assert await receive(revoked) == {"type": "ready", "tenant_id": acme}
            assert await receive(bystander) == {"type": "ready", "tenant_id": other}
            await s.rechecks(2)
            await s.clock.advance(RECHECK_S)  # still valid: both stay
            await s.rechecks(2)
            resp = await s.node.http.delete(f"/v1/keys/{acme_key_id}", headers=auth())
            assert resp.status_code == 204
            await s.clock.advance(RECHECK_S)
            assert await closed_with(revoked) == CLOSE_UNAUTHORIZED
            assert revoked.close_reason == "key revoked"
            # the other tenant's stream goes on and still gets its events
            await s.rechecks(1)
            for event in opening():  # what the node's live calls report to analytics
                s.analytics.recorder.on_call_event(call_info("b-call", tenant=other), event)
            got = await receive(bystander)
            assert got["call_id"] == "b-call" and got["tenant_id"] == other
        # the revoked key cannot come back
        async with connect(f"{s.ws}?key={acme_key}") as again:
            assert await closed_with(again) == CLOSE_UNAUTHORIZED


async def test_sockets_per_tenant_are_capped() -> None:
    async with served(max_per_tenant=2) as s:
        acme, acme_key, _ = await tenant_key(s.node, "Capped")
        other, other_key, _ = await tenant_key(s.node, "Uncapped")
        url = f"{s.ws}?key={acme_key}"
        async with connect(url) as first, connect(url) as second:
            for ws in (first, second):
                assert await receive(ws) == {"type": "ready", "tenant_id": acme}
            async with connect(url) as third:
                assert await closed_with(third) == CLOSE_TOO_MANY
            # the platform admin watching that tenant counts for it too
            async with connect(f"{s.ws}?key={auth()['Authorization'][7:]}&tenant={acme}") as adm:
                assert await closed_with(adm) == CLOSE_TOO_MANY
            async with connect(f"{s.ws}?key={other_key}") as elsewhere:
                assert await receive(elsewhere) == {"type": "ready", "tenant_id": other}
            await first.close()

            async def freed() -> bool:
                return len(s.analytics.feed) == 1

            await wait_for(freed, what="the closed socket's slot released")
            async with connect(url) as again:
                assert await receive(again) == {"type": "ready", "tenant_id": acme}


async def test_a_phone_token_is_not_an_events_key_and_big_messages_close() -> None:
    async with served() as s:
        async with connect(f"{s.ws}?key={s.phone_token}") as ws:
            assert await closed_with(ws) == CLOSE_UNAUTHORIZED
        async with connect(s.ws, max_size=None) as ws:
            await ws.send(json.dumps({"type": "auth", "key": "x" * 10_000}))
            assert await closed_with(ws) == 1009
        async with connect(s.ws, additional_headers=auth()) as ws:
            assert await receive(ws) == {"type": "ready", "tenant_id": "demo"}
            await ws.send("y" * 5000)
            assert await closed_with(ws) == 1009
