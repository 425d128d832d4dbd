"""`GET /v1/calls/{id}/recording` behind the real bearer auth and acting-tenant dependency, on a
real migrated store and a real recording of speech: tenant scope, roles, byte ranges, audit."""

from __future__ import annotations

import io
import logging
import wave
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from litestar import Litestar
from litestar.middleware import DefineMiddleware
from litestar.testing import AsyncTestClient

from control_api.acting_tenant import tenant_dependency
from control_api.auth import BearerAuth, Principal
from control_api.recordings.store import LocalRecordingStore, RecordingKey
from control_api.recordings_api import (
    CHUNK_BYTES,
    RangeNotSatisfiable,
    byte_range,
    recording_router,
)
from control_api.store import tenants as tenant_rows
from media.frames import frames_from_samples
from media.recording_file import CallRecorder
from tests.support.analytics import ADMIN, Keys, bearer
from tests.support.host import temp_store
from tests.support.speech import espeak

CALL = "c0ffee42"
ACME = "acme-operator-0123456789"
VIEWER = "acme-viewer-0123456789"
KEYS = Keys(
    {
        ADMIN: Principal(),
        ACME: Principal(tenant_id="acme", role="operator", key_id="k_acme_operator"),
        VIEWER: Principal(tenant_id="acme", role="viewer", key_id="k_acme_viewer"),
    }
)


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return espeak("Your appointment is on Tuesday at nine in the morning, see you then")


@pytest.fixture
async def recordings(tmp_path: Path, speech: np.ndarray) -> LocalRecordingStore:
    """The acme call's recording, made from speech, taken into a local store."""
    spool = tmp_path / "spool.wav"
    recorder = CallRecorder(spool, "wav", start_s=0.0)
    for frame in frames_from_samples(speech):
        recorder.feed("caller", frame.seq * 0.02, frame.pcm)
    recorder.close()
    store = LocalRecordingStore.under(tmp_path / "data")
    await store.put(RecordingKey("acme", CALL, "wav"), spool)
    return store


@pytest.fixture
async def client(recordings: LocalRecordingStore) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with temp_store() as store:
        async with store.session() as session:
            await tenant_rows.create_tenant(session, "Acme", tenant_id="acme")
            await tenant_rows.create_tenant(session, "Other", tenant_id="other")
        app = Litestar(
            route_handlers=[recording_router(recordings, dependencies=tenant_dependency(store))],
            middleware=[DefineMiddleware(BearerAuth, keys=KEYS)],
            logging_config=None,
        )
        async with AsyncTestClient(app) as client:
            yield client


async def test_the_tenant_gets_its_call_whole_and_it_is_the_speech(
    client: AsyncTestClient[Litestar], recordings: LocalRecordingStore, speech: np.ndarray
) -> None:
    resp = await client.get(f"/v1/calls/{CALL}/recording", headers=bearer(ACME))
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "audio/wav"
    assert resp.headers["accept-ranges"] == "bytes"
    path = recordings.path(RecordingKey("acme", CALL, "wav"))
    assert resp.content == path.read_bytes()
    assert len(resp.content) > CHUNK_BYTES  # streamed in more than one chunk
    with wave.open(io.BytesIO(resp.content)) as w:
        left = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").reshape(-1, 2)[:, 0]
    assert np.array_equal(left[: len(speech)], speech)


async def test_byte_ranges_answer_206_and_past_the_end_416(
    client: AsyncTestClient[Litestar], recordings: LocalRecordingStore
) -> None:
    data = recordings.path(RecordingKey("acme", CALL, "wav")).read_bytes()
    size = len(data)
    url = f"/v1/calls/{CALL}/recording"
    for header, start, end in [
        ("bytes=0-43", 0, 44),
        ("bytes=1000-", 1000, size),
        ("bytes=-100", size - 100, size),
        (f"bytes={size - 10}-{size + 50}", size - 10, size),
    ]:
        resp = await client.get(url, headers={**bearer(ACME), "Range": header})
        assert resp.status_code == 206, header
        assert resp.content == data[start:end], header
        assert resp.headers["content-range"] == f"bytes {start}-{end - 1}/{size}"
    resp = await client.get(url, headers={**bearer(ACME), "Range": f"bytes={size}-"})
    assert resp.status_code == 416
    assert resp.headers["content-range"] == f"bytes */{size}"
    resp = await client.get(url, headers={**bearer(ACME), "Range": "bytes=0-1,5-9"})
    assert resp.status_code == 200 and resp.content == data  # several ranges: the whole file


async def test_another_tenant_an_unknown_call_and_a_path_are_404(
    client: AsyncTestClient[Litestar],
) -> None:
    for key, path in [
        (ADMIN, f"/v1/calls/{CALL}/recording?tenant=other"),
        (ADMIN, "/v1/calls/unknown/recording?tenant=acme"),
        (ACME, "/v1/calls/..%2F..%2Fetc%2Fpasswd/recording"),
        (ACME, "/v1/calls/c0ffee42.wav/recording"),
    ]:
        resp = await client.get(path, headers=bearer(key))
        assert resp.status_code == 404, path
    resp = await client.get(f"/v1/calls/{CALL}/recording?tenant=other", headers=bearer(ACME))
    assert resp.status_code == 403  # a tenant key may not name another tenant


async def test_a_viewer_and_no_key_are_refused(client: AsyncTestClient[Litestar]) -> None:
    url = f"/v1/calls/{CALL}/recording"
    assert (await client.get(url, headers=bearer(VIEWER))).status_code == 403
    assert (await client.get(url)).status_code == 401


async def test_each_read_is_audit_logged_without_audio(
    client: AsyncTestClient[Litestar], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="control_api.recordings_api"):
        resp = await client.get(
            f"/v1/calls/{CALL}/recording", headers={**bearer(ACME), "Range": "bytes=0-99"}
        )
    assert resp.status_code == 206
    (record,) = [r for r in caplog.records if r.getMessage() == "recording read"]
    assert (record.tenant_id, record.call_id, record.key_id, record.range) == (
        "acme",
        CALL,
        "k_acme_operator",
        "0-99",
    )
    assert all(resp.content[:64] not in r.getMessage().encode() for r in caplog.records)


def test_byte_range_parsing() -> None:
    assert byte_range(None, 100) is None
    assert byte_range("bytes=10-19", 100) == (10, 20)
    assert byte_range("bytes=90-", 100) == (90, 100)
    assert byte_range("bytes=-5", 100) == (95, 100)
    assert byte_range("bytes=-500", 100) == (0, 100)
    assert byte_range("bytes=20-10", 100) is None  # invalid: ignored
    assert byte_range("items=0-1", 100) is None
    assert byte_range("bytes=0-1,3-4", 100) is None
    with pytest.raises(RangeNotSatisfiable):
        byte_range("bytes=100-", 100)
    with pytest.raises(RangeNotSatisfiable):
        byte_range("bytes=-0", 100)
