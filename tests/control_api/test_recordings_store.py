"""The recording store seam: the local filesystem and an S3 bucket (moto's server, on a free
127.0.0.1 port) behave the same; keys are ids only."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import numpy as np
import pytest

from control_api.recordings.s3 import RecordingStoreError, S3RecordingStore, S3Settings
from control_api.recordings.store import (
    LocalRecordingStore,
    RecordingKey,
    RecordingMissing,
    RecordingStore,
)
from media.recording import wav_header
from tests.control_api.moto_s3 import ACCESS_KEY_ID, SECRET_ACCESS_KEY, make_bucket, s3_server
from tests.support.ports import free_port

BUCKET = "recordings-test"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with s3_server() as endpoint:
        yield endpoint


def s3_settings(endpoint: str, bucket: str = BUCKET) -> S3Settings:
    return S3Settings(
        bucket=bucket,
        endpoint_url=endpoint,
        access_key_id=ACCESS_KEY_ID,
        secret_access_key=SECRET_ACCESS_KEY,
    )


@pytest.fixture(params=["local", "s3"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[RecordingStore]:
    if request.param == "local":
        yield LocalRecordingStore.under(tmp_path / "data")
        return
    endpoint = request.getfixturevalue("s3_endpoint")
    bucket = f"{BUCKET}-{tmp_path.name.lower().replace('_', '-')}"[:63]
    make_bucket(endpoint, bucket)
    yield S3RecordingStore(s3_settings(endpoint, bucket))


def a_recording(tmp_path: Path, seconds: float = 0.5, name: str = "spool.wav") -> Path:
    rng = np.random.default_rng(7)
    pcm = rng.integers(-3000, 3000, size=int(seconds * 16000) * 2, dtype=np.int16).tobytes()
    path = tmp_path / name
    path.write_bytes(wav_header(len(pcm)) + pcm)
    return path


async def test_put_then_read_whole_and_in_ranges(store: RecordingStore, tmp_path: Path) -> None:
    source = a_recording(tmp_path)
    data = source.read_bytes()
    key = RecordingKey("t_acme", "c0ffee", "wav")
    assert await store.put(key, source) == len(data)
    assert not source.exists()
    assert await store.size(key) == len(data)
    assert await store.read(key) == data
    assert await store.read(key, 0, 44) == data[:44]
    assert await store.read(key, 1000, 5000) == data[1000:5000]
    assert await store.read(key, len(data) - 10) == data[-10:]
    assert await store.read(key, 7, 7) == b""
    assert await store.read(key, len(data) + 5) == b""
    with pytest.raises(ValueError, match="byte range"):
        await store.read(key, 10, 5)


async def test_missing_recordings(store: RecordingStore) -> None:
    key = RecordingKey("t_acme", "nothing", "ogg")
    assert await store.size(key) is None
    with pytest.raises(RecordingMissing):
        await store.read(key)
    assert await store.delete(key) is False


async def test_list_is_per_tenant_and_delete_removes(store: RecordingStore, tmp_path: Path) -> None:
    keys = [
        RecordingKey("t_acme", "call-1", "wav"),
        RecordingKey("t_acme", "call-2", "ogg"),
        RecordingKey("t_other", "call-1", "wav"),
    ]
    for i, key in enumerate(keys):
        await store.put(key, a_recording(tmp_path, 0.1, f"{i}.wav"))
    assert {r.key for r in await store.list()} == set(keys)
    acme = await store.list("t_acme")
    assert {r.key for r in acme} == set(keys[:2])
    assert all(r.size > 44 and r.stored_at.tzinfo is not None for r in acme)
    assert await store.delete(keys[0]) is True
    assert {r.key for r in await store.list()} == set(keys[1:])
    assert await store.size(keys[2]) is not None  # the other tenant's call-1 is untouched
    with pytest.raises(ValueError, match="not an id"):
        await store.list("../t_acme")


@pytest.mark.parametrize(
    "tenant_id, call_id",
    [
        ("..", "c1"),
        ("t1", "../../etc/passwd"),
        ("t1/x", "c1"),
        ("", "c1"),
        ("t1", "a" * 65),
        ("t1", "c1.wav"),
        ("t1", "/abs"),
        ("t1", "c 1"),
        ("-t", "c1"),
    ],
)
def test_a_key_is_made_of_ids_only(tenant_id: str, call_id: str) -> None:
    with pytest.raises(ValueError, match="is not an id"):
        RecordingKey(tenant_id, call_id)


def test_names_round_trip_and_stray_names_are_not_keys() -> None:
    key = RecordingKey("t_acme", "abc-123", "ogg")
    assert key.name == "t_acme/abc-123.ogg"
    assert RecordingKey.parse(key.name) == key
    for stray in ["t_acme/abc.mp3", "t_acme/../x.wav", "x.wav", "a/b/c.wav", ".tmp/x.wav"]:
        assert RecordingKey.parse(stray) is None


async def test_local_files_stay_under_the_data_dir(tmp_path: Path) -> None:
    store = LocalRecordingStore.under(tmp_path / "data")
    key = RecordingKey("t_acme", "call-9", "wav")
    await store.put(key, a_recording(tmp_path))
    assert store.path(key) == tmp_path / "data" / "recordings" / "t_acme" / "call-9.wav"
    (store.root / "t_acme" / "notes.txt").write_text("not a recording")
    assert [r.key for r in await store.list()] == [key]


async def test_an_unreachable_bucket_is_a_retryable_store_error(tmp_path: Path) -> None:
    port = free_port(socket.SOCK_STREAM)  # nothing listens there
    store = S3RecordingStore(s3_settings(f"http://127.0.0.1:{port}"))
    with pytest.raises(RecordingStoreError) as caught:
        await store.size(RecordingKey("t_acme", "c1"))
    assert caught.value.retryable
    assert "testing-secret" not in repr(s3_settings("http://x"))
