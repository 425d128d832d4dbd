"""A tenant's own recording retention: `GET|PUT /v1/tenants/{id}/recording-retention` on the
served API (the platform admin sets it, the tenant's keys read it, values validated), and the
node's retention job honouring it over `recording.retention_days` on a real local store and an
injected clock."""

from __future__ import annotations

import asyncio
from pathlib import Path

from control_api.recordings.retention import (
    open_recording_retention,
    tenant_days,
)
from control_api.recordings.store import LocalRecordingStore, RecordingKey
from control_api.store import Store
from control_api.store import tenants as tenant_rows
from media.clock import VirtualClock
from tests.control_api.test_isolation import new_tenant
from tests.control_api.test_recordings_retention import DAY, NOW, ObservedRetention, put_aged
from tests.support.harness import Node, auth
from tests.support.host import temp_store


def path(tenant: str) -> str:
    return f"/v1/tenants/{tenant}/recording-retention"


async def test_the_platform_admin_sets_it_and_the_tenant_reads_it(node: Node) -> None:
    tenant, keys = await new_tenant(node, "Recorded")
    other, other_keys = await new_tenant(node, "Elsewhere")
    resp = await node.http.get(path(tenant), headers=auth(keys["viewer"]))
    assert resp.status_code == 200 and resp.json() == {"days": None}  # the node's
    for days in (7, 0, None, 3660):
        resp = await node.http.put(path(tenant), json={"days": days}, headers=auth())
        assert resp.status_code == 200 and resp.json() == {"days": days}, resp.text
        shown = await node.http.get(path(tenant), headers=auth(keys["viewer"]))
        assert shown.json() == {"days": days}
        async with node.host.store.session() as session:
            assert await tenant_rows.recording_days(session, tenant) == days
    for body in ({"days": -1}, {"days": 3661}, {"days": "a month"}, {}, {"days": 1, "also": 2}):
        resp = await node.http.put(path(tenant), json=body, headers=auth())
        assert resp.status_code == 400, (body, resp.text)
    for role in ("admin", "operator", "viewer"):
        resp = await node.http.put(path(tenant), json={"days": 1}, headers=auth(keys[role]))
        assert resp.status_code == 403, (role, resp.text)
    assert (await node.http.get(path(tenant), headers=auth())).json() == {"days": 3660}
    # another tenant's is a 404 to a tenant's key, and an unknown tenant's to the admin
    assert (await node.http.get(path(tenant), headers=auth(other_keys["admin"]))).status_code == 404
    assert (await node.http.get(path(other), headers=auth())).json() == {"days": None}
    assert (
        await node.http.put(path("nobody"), json={"days": 1}, headers=auth())
    ).status_code == 404


async def tenants(store: Store, own: dict[str, int | None]) -> None:
    async with store.session() as session:
        for tenant, days in own.items():
            if await tenant_rows.get_tenant(session, tenant) is None:
                await tenant_rows.create_tenant(session, tenant.title(), tenant_id=tenant)
            await tenant_rows.set_recording_days(session, tenant, days)


async def test_the_job_keeps_each_tenants_days_else_the_nodes(tmp_path: Path) -> None:
    recordings = LocalRecordingStore.under(tmp_path / "data")
    ages = {"short": [10, 3], "kept": [1000], "plain": [40, 20]}
    for tenant, days in ages.items():
        for age in days:
            await put_aged(recordings, RecordingKey(tenant, f"c{age}"), tmp_path, age)
    async with temp_store() as store:
        await tenants(store, {"short": 7, "kept": 0, "plain": None})
        wall = [NOW]
        job = ObservedRetention(recordings, tenant_days(store, 30), lambda: wall[0])
        passes: asyncio.Queue[list[RecordingKey]] = asyncio.Queue()
        job.passes = passes
        clock = VirtualClock()
        task = asyncio.create_task(job.run(clock, every_s=3600.0))
        try:
            first = await asyncio.wait_for(passes.get(), 30)
            assert sorted(k.name for k in first) == ["plain/c40.wav", "short/c10.wav"]
            # the tenant goes back to the node's 30 days; ten days on, its 3-day-old is 13
            await tenants(store, {"short": None, "plain": 25})
            wall[0] = NOW + 10 * DAY
            await clock.advance(3600.0)
            assert [k.name for k in await asyncio.wait_for(passes.get(), 30)] == ["plain/c20.wav"]
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    left = sorted(r.key.name for r in await recordings.list())
    assert left == ["kept/c1000.wav", "short/c3.wav"]


async def test_a_tenants_own_days_apply_when_the_node_keeps_everything(tmp_path: Path) -> None:
    """The node's job as `open_node` runs it with `recording.retention_days = 0` (which used to
    run no job at all): a tenant with days of its own still has its old recordings deleted."""
    recordings = LocalRecordingStore.under(tmp_path / "data")
    # 40 days before NOW, so at least that before the real wall clock the node's job reads
    await put_aged(recordings, RecordingKey("strict", "old"), tmp_path, 40)
    await put_aged(recordings, RecordingKey("lax", "old"), tmp_path, 40)
    async with temp_store() as store:
        await tenants(store, {"strict": 30, "lax": None})
        async with open_recording_retention(store, recordings, 0, VirtualClock()) as job:
            await job.pass_once()  # the same pass the job ran (or is running) at its start
    assert [r.key for r in await recordings.list()] == [RecordingKey("lax", "old")]
