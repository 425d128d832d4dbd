"""`DELETE /v1/tenants/{id}` on the served app with the real bearer auth and a real store: the
platform admin erases a tenant and everything kept of it (keys, agents and versions, numbers and
ranges, secrets, policies, campaigns and contacts, the do-not-call list, calls, outbox events
delivered or not, relay marks, dead letters, webhooks, its recordings in a real local store),
with a `tenant.deleted` event in the outbox and an audit record; another tenant keeps every row
and recording. Refused while the tenant has a live call; tenant keys may not delete."""

from __future__ import annotations

import datetime
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from sqlalchemy import select

from config.schema import DialPlanSettings
from control_api.analytics.events import TenantDeletedEvent, decode_event
from control_api.analytics.tables import (
    CallRow,
    DeadLetterRow,
    OutboxRow,
    RelayMarkRow,
    WebhookRow,
)
from control_api.campaigns.dnc import DncRow
from control_api.quotas import TenantQuota
from control_api.recordings.live import LiveRecordings
from control_api.recordings.s3 import S3RecordingStore, S3Settings
from control_api.recordings.store import LocalRecordingStore, RecordingKey
from control_api.store import Store
from control_api.store.migrate import target_metadata
from control_api.store.models import AgentVersion
from media.clock import VirtualClock
from media.recording import wav_header
from tests.control_api.moto_s3 import ACCESS_KEY_ID, SECRET_ACCESS_KEY, s3_server
from tests.control_api.test_isolation import TenantKeys, new_tenant
from tests.support.harness import Node, auth, node_settings, serve_node
from tests.support.host import FakeHost, temp_store
from tests.support.pg import PostgresServer, pg_server

__all__ = ["pg_server"]

T0 = datetime.datetime(2026, 12, 7, 12, 0, tzinfo=datetime.UTC)
PLAN = DialPlanSettings(allowed_prefixes=("+1415",))
Rows = dict[str, list[tuple[Any, ...]]]


class Served(msgspec.Struct):
    node: Node
    recordings: LocalRecordingStore


@pytest.fixture(params=["sqlite", "postgres"])
async def served(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Served]:
    url = ""
    if request.param == "postgres":
        server: PostgresServer = request.getfixturevalue("pg_server")
        url = server.create_database()
    recordings = LocalRecordingStore.under(tmp_path / "data")
    settings = msgspec.structs.replace(node_settings(), dialplan=PLAN)
    async with temp_store(url) as store:
        host = FakeHost(max_calls=2)
        await host.attach_store(store)
        # the node's recordings, in a real local store (what DELETE erases them through)
        host.recordings = LiveRecordings.under(tmp_path / "data", recordings, VirtualClock())  # type: ignore[attr-defined]
        async with serve_node(host, settings) as node:
            yield Served(node, recordings)


async def put_recording(recordings: LocalRecordingStore, key: RecordingKey, tmp: Path) -> None:
    source = tmp / f"{key.tenant_id}-{key.call_id}.spool"
    source.write_bytes(wav_header(0))
    await recordings.put(key, source)


async def populate(served: Served, tenant: str, keys: TenantKeys, tmp: Path) -> None:
    """Something of the tenant in every kind of place the node keeps it."""
    http, admin = served.node.http, auth(keys["admin"])
    campaign = {
        "name": "Reminders", "agent": "front", "via": "sip",
        "contacts": [{"number": f"+1415555000{i}", "variables": {}} for i in range(2)],
        "schedule": {"timezone": "UTC", "windows": [
            {"days": ["mon"], "start": "09:00", "end": "17:00"}]},
        "max_concurrent": 1, "calls_per_minute": 10,
        "retry": {"max_attempts": 2, "backoff_minutes": 30, "on": ["busy"]},
    }  # fmt: skip
    for method, path, body in [
        ("POST", "/v1/campaigns", campaign),
        ("POST", "/v1/secrets", {"name": "openai", "value": "sk-secret"}),
    ]:
        resp = await http.request(method, path, json=body, headers=admin)
        assert resp.is_success, resp.text
    for setting, body in [
        ("pii-redaction", {"kinds": ["card"]}),
        ("analytics-retention", {"days": 90}),
        ("recording-retention", {"days": 30}),
    ]:
        resp = await http.put(f"/v1/tenants/{tenant}/{setting}", json=body, headers=auth())
        assert resp.is_success, resp.text
    call_id = f"call-{tenant}"
    async with served.node.host.store.session() as session:
        session.add(
            CallRow(
                id=call_id, tenant_id=tenant, agent="front", node="n", direction="inbound",
                transport="webrtc", from_uri="sip:+15550100@x", started_at=T0, ended_at=T0,
                transcript=[{"role": "user", "text": "my number is 555 0100"}],
            )
        )  # fmt: skip
        for seq, kind in enumerate(["call.started", "transcript.final", "call.ended"]):
            session.add(
                OutboxRow(
                    event_id=f"{call_id}:{seq}", call_id=call_id, tenant_id=tenant, node="n",
                    seq=seq, type=kind, payload="{}", created_at=T0,
                )
            )  # fmt: skip
        session.add(RelayMarkRow(sink="redis", call_id=call_id, delivered_seq=0, attempts=0))
        session.add(
            DeadLetterRow(
                sink=f"webhook:wh-{tenant}", event_id=f"{call_id}:1", call_id=call_id,
                tenant_id=tenant, seq=1, type="transcript.final", attempts=8, error="500",
                created_at=T0,
            )
        )  # fmt: skip
        session.add(
            WebhookRow(
                id=f"wh-{tenant}", tenant_id=tenant, url="https://hooks.example.com/x",
                events=[], secret="sealed", created_at=T0,
            )
        )  # fmt: skip
        session.add(DncRow(tenant_id=tenant, number="+14155550199", added_at=T0))
    for call in (call_id, "other-call"):
        await put_recording(served.recordings, RecordingKey(tenant, call), tmp)


async def rows_of(store: Store, tenant: str) -> Rows:
    """Every row of every table that is the tenant's: its `tenant_id`, its agents' versions,
    the relay marks of its calls."""
    found: Rows = {}
    async with store.session() as session:
        calls = set(await session.scalars(select(CallRow.id).where(CallRow.tenant_id == tenant)))
        for table in target_metadata().sorted_tables:
            if "tenant_id" in table.c:
                query = select(table).where(table.c.tenant_id == tenant)
            elif table.name == "tenants":
                query = select(table).where(table.c.id == tenant)
            elif table.name == "relay_marks":
                query = select(table).where(table.c.call_id.in_(calls))
            elif table.name == "agent_versions":
                query = select(AgentVersion.id).where(
                    AgentVersion.agent_id.in_(
                        select(table.metadata.tables["agents"].c.id).where(
                            table.metadata.tables["agents"].c.tenant_id == tenant
                        )
                    )
                )
            else:
                continue
            rows = [tuple(row) for row in (await session.execute(query)).all()]
            if rows:
                found[table.name] = sorted(rows, key=repr)
    return found


async def two_tenants(served: Served, tmp: Path) -> tuple[str, TenantKeys, str, TenantKeys]:
    gone, gone_keys = await new_tenant(served.node, "Leaving")
    kept, kept_keys = await new_tenant(served.node, "Staying")
    await populate(served, gone, gone_keys, tmp)
    await populate(served, kept, kept_keys, tmp)
    return gone, gone_keys, kept, kept_keys


async def test_the_platform_admin_erases_a_tenant_and_only_it(
    served: Served, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    http, store = served.node.http, served.node.host.store
    gone, gone_keys, kept, kept_keys = await two_tenants(served, tmp_path)
    before = await rows_of(store, gone)
    stores = ["api_keys", "agents", "agent_versions", "numbers", "number_ranges", "tenant_secrets",
              "tenant_retention", "calls", "outbox", "relay_marks", "dead_letters", "webhooks",
              "campaigns", "campaign_contacts", "dnc_numbers"]  # fmt: skip
    for table in stores:
        assert before.get(table), f"the test put nothing of the tenant in {table}"
    kept_before = await rows_of(store, kept)

    caplog.set_level(logging.INFO, logger="control_api.tenants_api")
    resp = await http.delete(f"/v1/tenants/{gone}", headers=auth())
    assert resp.status_code == 200, resp.text
    answer = resp.json()
    assert answer["id"] == gone and answer["deleted"]["recordings"] == 2
    assert answer["deleted"]["outbox"] == 3 and answer["deleted"]["tenants"] == 1

    left = await rows_of(store, gone)
    assert list(left) == ["outbox"]  # only the tenant.deleted event
    async with store.session() as session:
        (payload,) = await session.scalars(
            select(OutboxRow.payload).where(OutboxRow.tenant_id == gone)
        )
    event = decode_event(payload)
    assert isinstance(event, TenantDeletedEvent) and event.tenant_id == gone
    assert event.deleted == answer["deleted"] and event.seq == 0
    assert await served.recordings.list(gone) == []

    assert await rows_of(store, kept) == kept_before
    assert len(await served.recordings.list(kept)) == 2
    assert (await http.get(f"/v1/tenants/{kept}", headers=auth(kept_keys["viewer"]))).is_success

    assert (await http.get(f"/v1/tenants/{gone}", headers=auth())).status_code == 404
    assert (await http.delete(f"/v1/tenants/{gone}", headers=auth())).status_code == 404
    for key in gone_keys.values():  # its keys went with it
        assert (await http.get("/v1/agents", headers=auth(key))).status_code == 401
    (audit,) = [r for r in caplog.records if r.getMessage() == "tenant deleted"]
    assert audit.__dict__["tenant_id"] == gone and audit.__dict__["audit"] is True
    assert audit.__dict__["deleted"] == answer["deleted"]


async def test_tenant_keys_may_not_delete_a_tenant(served: Served, tmp_path: Path) -> None:
    http, store = served.node.http, served.node.host.store
    gone, gone_keys, kept, kept_keys = await two_tenants(served, tmp_path)
    before = await rows_of(store, gone)
    for key in (*gone_keys.values(), kept_keys["admin"]):
        resp = await http.delete(f"/v1/tenants/{gone}", headers=auth(key))
        assert resp.status_code == 403, resp.text
    assert await rows_of(store, gone) == before
    assert len(await served.recordings.list(gone)) == 2


async def test_refused_while_the_tenant_has_a_live_call(served: Served, tmp_path: Path) -> None:
    http, host = served.node.http, served.node.host
    gone, _, _, _ = await two_tenants(served, tmp_path)
    before = await rows_of(host.store, gone)
    host.quotas.take_with(gone, "live-call", TenantQuota())  # admitted on this node
    try:
        resp = await http.delete(f"/v1/tenants/{gone}", headers=auth())
        assert resp.status_code == 409 and "live call" in resp.json()["detail"]
    finally:
        host.quotas.release("live-call")
    async with host.store.session() as session:  # a call another node has not ended
        row = await session.get(CallRow, f"call-{gone}")
        assert row is not None
        row.ended_at = None
    assert (await http.delete(f"/v1/tenants/{gone}", headers=auth())).status_code == 409
    after = await rows_of(host.store, gone)
    assert after.keys() == before.keys() and after["tenants"] == before["tenants"]
    assert len(await served.recordings.list(gone)) == 2


async def test_a_failing_recording_store_erases_nothing(tmp_path: Path) -> None:
    """The recordings go first: a bucket that refuses (moto's S3 server, the bucket missing)
    is a 503, and the tenant and its rows are all still there, to delete again."""
    with s3_server() as endpoint:
        bucket = S3RecordingStore(
            S3Settings(
                bucket="no-such-bucket", endpoint_url=endpoint,
                access_key_id=ACCESS_KEY_ID, secret_access_key=SECRET_ACCESS_KEY,
            )
        )  # fmt: skip
        async with temp_store() as store:
            host = FakeHost(max_calls=2)
            await host.attach_store(store)
            host.recordings = LiveRecordings.under(tmp_path / "data", bucket, VirtualClock())  # type: ignore[attr-defined]
            async with serve_node(host) as node:
                tenant, keys = await new_tenant(node, "Bucketed")
                before = await rows_of(store, tenant)
                resp = await node.http.delete(f"/v1/tenants/{tenant}", headers=auth())
                assert resp.status_code == 503, resp.text
                assert await rows_of(store, tenant) == before
                shown = await node.http.get(f"/v1/tenants/{tenant}", headers=auth(keys["viewer"]))
                assert shown.status_code == 200


class AdmittingStore(LocalRecordingStore):
    """A local store during whose deletes a call of the tenant is admitted on the node."""

    def __init__(self, root: Path, host: FakeHost, tenant: str) -> None:
        super().__init__(root)
        self.host, self.tenant = host, tenant

    async def delete(self, key: RecordingKey) -> bool:
        if self.host.quotas.active(self.tenant) == 0:
            self.host.quotas.take_with(self.tenant, "late-call", TenantQuota())
        return await super().delete(key)


async def test_a_call_that_comes_in_while_the_recordings_go_stops_it(
    served: Served, tmp_path: Path
) -> None:
    http, host = served.node.http, served.node.host
    gone, _, _, _ = await two_tenants(served, tmp_path)
    before = await rows_of(host.store, gone)
    admitting = AdmittingStore(served.recordings.root, host, gone)
    host.recordings = LiveRecordings.under(tmp_path / "data", admitting, VirtualClock())  # type: ignore[attr-defined]
    try:
        resp = await http.delete(f"/v1/tenants/{gone}", headers=auth())
        assert resp.status_code == 409 and "live call" in resp.json()["detail"]
        assert await rows_of(host.store, gone) == before  # the recordings went; nothing else
        assert await served.recordings.list(gone) == []
    finally:
        host.quotas.release("late-call")
    resp = await http.delete(f"/v1/tenants/{gone}", headers=auth())  # the call ended: again
    assert resp.status_code == 200 and resp.json()["deleted"]["recordings"] == 0
