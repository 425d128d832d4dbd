"""Recording retention: the decision alone, and the job on a real local store and an injected
clock."""

from __future__ import annotations

import asyncio
import datetime
import os
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

from control_api.recordings.retention import RecordingRetention, expired
from control_api.recordings.store import (
    LocalRecordingStore,
    RecordingKey,
    StoredRecording,
)
from media.clock import VirtualClock
from media.recording import wav_header

NOW = datetime.datetime(2026, 12, 7, 12, 0, tzinfo=datetime.UTC)
DAY = datetime.timedelta(days=1)


def stored(tenant: str, call: str, age: datetime.timedelta) -> StoredRecording:
    return StoredRecording(RecordingKey(tenant, call), 100, NOW - age)


def test_only_recordings_older_than_their_tenants_retention_expire() -> None:
    recordings = [
        stored("t_short", "old", 8 * DAY),
        stored("t_short", "edge", 7 * DAY),  # exactly the retention: kept
        stored("t_short", "new", DAY),
        stored("t_long", "old", 8 * DAY),
        stored("t_forever", "ancient", 3000 * DAY),
    ]
    days = {"t_short": 7, "t_long": 30}
    assert expired(recordings, days, NOW) == [RecordingKey("t_short", "old")]
    assert expired(recordings, days, NOW + 23 * DAY) == [
        RecordingKey("t_short", "old"),
        RecordingKey("t_short", "edge"),
        RecordingKey("t_short", "new"),
        RecordingKey("t_long", "old"),
    ]
    assert expired(recordings, {}, NOW) == []


class ObservedRetention(RecordingRetention):
    """The job, telling the test what each pass deleted."""

    passes: asyncio.Queue[list[RecordingKey]]

    async def pass_once(self) -> list[RecordingKey]:
        deleted = await super().pass_once()
        self.passes.put_nowait(deleted)
        return deleted


def days_of(days: Mapping[str, int]) -> Callable[[], Awaitable[Mapping[str, int]]]:
    async def read() -> Mapping[str, int]:
        return days

    return read


async def put_aged(store: LocalRecordingStore, key: RecordingKey, tmp: Path, age_days: int) -> None:
    source = tmp / f"{key.call_id}.spool"
    source.write_bytes(wav_header(0))
    await store.put(key, source)
    stamp = (NOW - age_days * DAY).timestamp()
    os.utime(store.path(key), (stamp, stamp))


async def test_the_job_deletes_on_each_pass_of_the_clock(tmp_path: Path) -> None:
    store = LocalRecordingStore.under(tmp_path / "data")
    keys = {
        "old": RecordingKey("t_acme", "old"),
        "young": RecordingKey("t_acme", "young"),
        "other": RecordingKey("t_other", "old"),
    }
    await put_aged(store, keys["old"], tmp_path, 40)
    await put_aged(store, keys["young"], tmp_path, 20)
    await put_aged(store, keys["other"], tmp_path, 40)
    wall = [NOW]
    retention = ObservedRetention(store, days_of({"t_acme": 30}), lambda: wall[0])
    retention.passes = passes = asyncio.Queue()
    clock = VirtualClock()
    task = asyncio.create_task(retention.run(clock, every_s=3600.0))
    try:
        assert await asyncio.wait_for(passes.get(), 30) == [keys["old"]]
        wall[0] = NOW + 11 * DAY  # "young" is now 31 days old
        await clock.advance(3600.0)
        assert await asyncio.wait_for(passes.get(), 30) == [keys["young"]]
        assert passes.empty()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert [r.key for r in await store.list()] == [keys["other"]]
