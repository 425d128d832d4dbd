"""Live calls' recordings: a call's speech recorded both ways, paused and resumed over HTTP (the
real bearer auth and acting tenant), stored when it ends; a crash's spool file recovered."""

from __future__ import annotations

import asyncio
import io
import shutil
import wave
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from litestar import Litestar
from litestar.middleware import DefineMiddleware
from litestar.testing import AsyncTestClient

from config.recording import RecordingSettings
from control_api.acting_tenant import tenant_dependency
from control_api.auth import BearerAuth, Principal
from control_api.recordings.live import LiveRecordings, node_recordings
from control_api.recordings.s3 import S3RecordingStore
from control_api.recordings.store import LocalRecordingStore, RecordingKey
from control_api.recordings_api import recording_router
from control_api.store import tenants as tenant_rows
from media.call import CallInfo
from media.clock import VirtualClock
from media.frames import SAMPLE_RATE, AudioFrame, frames_from_samples
from media.recording import PauseSpan
from media.recording_transport import RecordingTransport
from media.virtual import VirtualTransport
from tests.control_api.moto_s3 import ACCESS_KEY_ID, SECRET_ACCESS_KEY, make_bucket, s3_server
from tests.support.analytics import Keys, bearer
from tests.support.host import temp_store
from tests.support.speech import espeak

Samples = npt.NDArray[np.int16]
OPERATOR = "acme-operator-0123456789"
OTHER = "other-operator-0123456789"
KEYS = Keys(
    {
        OPERATOR: Principal(tenant_id="acme", role="operator", key_id="k_acme"),
        OTHER: Principal(tenant_id="other", role="operator", key_id="k_other"),
    }
)
INFO = CallInfo(call_id="call-7", tenant_id="acme", direction="inbound")


@pytest.fixture(scope="module")
def caller() -> Samples:
    return espeak("My card number is four one one one two two two two three three three three")


@pytest.fixture
def live(tmp_path: Path) -> LiveRecordings:
    store = LocalRecordingStore.under(tmp_path / "data")
    return LiveRecordings.under(tmp_path / "data", store, CLOCK, flush_every_s=1.0)


CLOCK = VirtualClock(100.0)


@pytest.fixture
async def client(live: LiveRecordings) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with temp_store() as store:
        async with store.session() as session:
            await tenant_rows.create_tenant(session, "Acme", tenant_id="acme")
            await tenant_rows.create_tenant(session, "Other", tenant_id="other")
        router = recording_router(live.store, live, dependencies=tenant_dependency(store))
        app = Litestar(
            route_handlers=[router],
            middleware=[DefineMiddleware(BearerAuth, keys=KEYS)],
            logging_config=None,
        )
        async with AsyncTestClient(app) as client:
            yield client


async def speak(
    inner: VirtualTransport, transport: RecordingTransport, frames: list[AudioFrame]
) -> None:
    """The caller's frames, one every 20 ms of the clock, each read by the session's side."""
    got: asyncio.Queue[AudioFrame] = asyncio.Queue()

    async def read() -> None:
        async for frame in transport.source.frames():
            got.put_nowait(frame)

    reader = asyncio.create_task(read())
    try:
        for frame in frames:
            await inner.source.send(frame)
            await asyncio.wait_for(got.get(), 10)
            await CLOCK.advance(0.02)
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)


def left_channel(data: bytes) -> Samples:
    with wave.open(io.BytesIO(data)) as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").reshape(-1, 2)[:, 0]


async def test_a_call_paused_over_http_is_stored_muted_there(
    live: LiveRecordings, client: AsyncTestClient[Litestar], caller: Samples
) -> None:
    inner = VirtualTransport(CLOCK)
    transport = live.start(INFO, inner)
    frames = frames_from_samples(caller)
    url = "/v1/calls/call-7/recording"
    await speak(inner, transport, frames[:50])  # 1 s
    resp = await client.post(f"{url}/pause", headers=bearer(OPERATOR))
    assert (resp.status_code, resp.json()) == (200, {"paused": True, "changed": True})
    resp = await client.post(f"{url}/pause", headers=bearer(OPERATOR))
    assert resp.json() == {"paused": True, "changed": False}
    assert (await client.post(f"{url}/pause", headers=bearer(OTHER))).status_code == 404
    await speak(inner, transport, frames[50:100])  # the card number: 1 s to 2 s
    resp = await client.post(f"{url}/resume", headers=bearer(OPERATOR))
    assert resp.json() == {"paused": False, "changed": True}
    await speak(inner, transport, frames[100:])
    await transport.close()
    result = await live.finish(INFO)
    assert result is not None and result.pauses == (PauseSpan(1.0, 2.0),)
    assert await live.finish(INFO) is None  # once
    assert (await client.post(f"{url}/resume", headers=bearer(OPERATOR))).status_code == 404

    stored = await client.get(url, headers=bearer(OPERATOR))
    assert stored.status_code == 200
    left = left_channel(stored.content)
    expected = np.zeros(len(left), dtype=np.int16)
    expected[: len(caller)] = caller[: len(left)]
    muted = slice(SAMPLE_RATE, 2 * SAMPLE_RATE)
    assert np.abs(expected[muted]).max() > 1000  # the caller spoke there
    expected[muted] = 0
    assert np.array_equal(left, expected)
    assert not list(live.spool.glob("*/*"))  # the spool file went into the store


async def test_a_crash_leaves_a_spool_file_the_next_start_stores(
    tmp_path: Path, live: LiveRecordings, caller: Samples
) -> None:
    inner = VirtualTransport(CLOCK)
    transport = live.start(INFO, inner)
    await speak(inner, transport, frames_from_samples(caller)[:150])  # 3 s, then the crash
    crashed = tmp_path / "crashed"  # the data dir as the crash left it
    shutil.copytree(live.spool, crashed / "recordings-spool")
    transport.recorder.close()
    (crashed / "recordings-spool" / "acme" / "not a key.wav").write_bytes(b"stray")
    store = LocalRecordingStore.under(crashed)
    after = LiveRecordings.under(crashed, store, CLOCK)
    assert await after.recover() == [RecordingKey("acme", "call-7", "wav")]
    left = left_channel(await store.read(RecordingKey("acme", "call-7", "wav")))
    assert 3.0 - len(left) / SAMPLE_RATE <= 1.0 + 10 * 0.02 + 0.02  # a flush and the lag
    assert np.array_equal(left, caller[: len(left)])
    assert (after.spool / "acme" / "not a key.wav").exists()  # not a recording: left alone


def test_a_call_whose_ids_are_not_ids_is_not_recorded(live: LiveRecordings) -> None:
    with pytest.raises(ValueError, match="not an id"):
        live.start(
            CallInfo(call_id="../x", tenant_id="acme", direction="inbound"), VirtualTransport(CLOCK)
        )


async def test_the_settings_choose_an_s3_bucket_and_ogg(tmp_path: Path, caller: Samples) -> None:
    with s3_server() as endpoint:
        make_bucket(endpoint, "calls")
        settings = RecordingSettings(
            format="ogg",
            storage="s3",
            s3_bucket="calls",
            s3_endpoint_url=endpoint,
            s3_access_key_id=ACCESS_KEY_ID,
            s3_secret_access_key=SECRET_ACCESS_KEY,
        )
        assert SECRET_ACCESS_KEY not in repr(settings)
        live = node_recordings(settings, tmp_path / "data", CLOCK)
        assert isinstance(live.store, S3RecordingStore)
        inner = VirtualTransport(CLOCK)
        transport = live.start(INFO, inner)
        await speak(inner, transport, frames_from_samples(caller)[:100])
        result = await live.finish(INFO)
        assert result is not None and result.format == "ogg"
        (stored,) = await live.store.list("acme")
        assert stored.key == RecordingKey("acme", "call-7", "ogg")
        data = await live.store.read(stored.key)
        assert data[:4] == b"OggS" and b"OpusHead" in data[:200]
        assert stored.size == len(data) == result.bytes
    with pytest.raises(ValueError, match="s3_bucket"):
        RecordingSettings(storage="s3")
