"""The recordings of a node's live calls: started with a call, paused and resumed on request,
taken into the `RecordingStore` when the call ends.

`start(info, transport)` wraps the call's transport in a `RecordingTransport` writing to a spool
file `<spool>/<tenant_id>/<call_id>.<format>` (`<node.data_dir>/recordings-spool` by `under`);
the caller's session then runs on the returned transport. `pause`/`resume` find a live
recording by its tenant and call (another tenant's call is not found). `finish(info)` closes
the recording and puts the spool file into the store; it returns the `RecordingInfo` (duration,
pause spans), or None when the call was not recorded.

A crash leaves spool files that are whole up to their last flush (`media/recording_file.py`);
`recover()` at the next start puts each into the store as it is. A spool file whose name is not
a `RecordingKey` is left alone.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

from config.recording import RecordingSettings
from control_api.recordings.s3 import S3RecordingStore, S3Settings
from control_api.recordings.store import LocalRecordingStore, RecordingKey, RecordingStore
from media.call import CallInfo
from media.clock import Clock
from media.recording_file import CallRecorder, RecordingFormat, RecordingInfo
from media.recording_transport import RecordingTransport
from media.transport import Transport

__all__ = ["LiveRecordings", "node_recordings", "recording_store"]

log = logging.getLogger(__name__)


class LiveRecordings:
    """The node's recordings in progress (see the module docstring)."""

    def __init__(
        self,
        store: RecordingStore,
        spool: Path,
        clock: Clock,
        *,
        fmt: RecordingFormat = "wav",
        flush_every_s: float = 2.0,
    ) -> None:
        self.store = store
        self.spool = spool
        self._clock = clock
        self._format: RecordingFormat = fmt
        self._flush_every_s = flush_every_s
        self._live: dict[tuple[str, str], tuple[RecordingKey, RecordingTransport]] = {}

    @classmethod
    def under(
        cls,
        data_dir: str | os.PathLike[str],
        store: RecordingStore,
        clock: Clock,
        *,
        fmt: RecordingFormat = "wav",
        flush_every_s: float = 2.0,
    ) -> LiveRecordings:
        spool = Path(data_dir) / "recordings-spool"
        return cls(store, spool, clock, fmt=fmt, flush_every_s=flush_every_s)

    def start(self, info: CallInfo, transport: Transport) -> RecordingTransport:
        """Record the call from now on; `ValueError` if its ids are not ids."""
        key = RecordingKey(info.tenant_id, info.call_id, self._format)
        if (key.tenant_id, key.call_id) in self._live:
            raise ValueError("the call is already being recorded")
        path = self.spool / key.tenant_id / f"{key.call_id}.{key.format}"
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        recorder = CallRecorder(
            path, key.format, start_s=self._clock.now(), flush_every_s=self._flush_every_s
        )
        recording = RecordingTransport(transport, recorder, self._clock)
        self._live[(key.tenant_id, key.call_id)] = (key, recording)
        log.info(
            "recording started",
            extra={"tenant_id": key.tenant_id, "call_id": key.call_id, "format": key.format},
        )
        return recording

    def recording(self, tenant_id: str, call_id: str) -> RecordingTransport | None:
        found = self._live.get((tenant_id, call_id))
        return None if found is None else found[1]

    def pause(self, tenant_id: str, call_id: str) -> bool | None:
        """Mute the call's recording from now; None: no live recording of that call."""
        recording = self.recording(tenant_id, call_id)
        return None if recording is None else recording.pause()

    def resume(self, tenant_id: str, call_id: str) -> bool | None:
        """Record again from now; None: no live recording of that call."""
        recording = self.recording(tenant_id, call_id)
        return None if recording is None else recording.resume()

    async def finish(self, info: CallInfo) -> RecordingInfo | None:
        """Close the call's recording and take it into the store."""
        found = self._live.pop((info.tenant_id, info.call_id), None)
        if found is None:
            return None
        key, recording = found
        result = recording.recorder.close()
        await self.store.put(key, recording.recorder.path)
        log.info(
            "recording stored",
            extra={
                "tenant_id": key.tenant_id,
                "call_id": key.call_id,
                "duration_s": result.duration_s,
                "pauses": [[p.start_s, p.end_s] for p in result.pauses],
            },
        )
        return result

    async def recover(self) -> list[RecordingKey]:
        """Take the spool files a crash left (none of them live) into the store."""
        left = await asyncio.to_thread(lambda: sorted(self.spool.glob("*/*")))
        taken = []
        for path in left:
            key = RecordingKey.parse(path.relative_to(self.spool).as_posix())
            if key is None or (key.tenant_id, key.call_id) in self._live:
                continue
            await self.store.put(key, path)
            log.warning(
                "recording left by a crash stored",
                extra={"tenant_id": key.tenant_id, "call_id": key.call_id},
            )
            taken.append(key)
        return taken


def recording_store(
    settings: RecordingSettings, data_dir: str | os.PathLike[str]
) -> RecordingStore:
    """The store `[recording]` names: local under `data_dir`, or its S3 bucket."""
    if settings.storage == "local":
        return LocalRecordingStore.under(data_dir)
    return S3RecordingStore(
        S3Settings(
            bucket=settings.s3_bucket,
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            prefix=settings.s3_prefix,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=settings.s3_secret_access_key,
        )
    )


def node_recordings(
    settings: RecordingSettings, data_dir: str | os.PathLike[str], clock: Clock
) -> LiveRecordings:
    """A node's `LiveRecordings` as `[recording]` says (the spool always under `data_dir`)."""
    return LiveRecordings.under(
        data_dir,
        recording_store(settings, data_dir),
        clock,
        fmt=settings.format,
        flush_every_s=settings.flush_every_s,
    )
