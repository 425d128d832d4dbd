"""Recordings in an S3-compatible bucket (AWS S3, MinIO, Ceph, ...), through boto3.

The object key is `<prefix><tenant_id>/<call_id>.<format>` (`RecordingKey.name`, made of
checked ids only). boto3 is blocking: each call runs in a worker thread (`asyncio.to_thread`).
Its errors are translated at this boundary: a missing object is `RecordingMissing`, anything
else from the client or the network a `RecordingStoreError` (retryable). The credentials come
from the settings the operator gave (or boto3's own chain); they are never logged.
"""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import boto3
import msgspec
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from control_api.recordings.store import (
    ID_PATTERN,
    RecordingKey,
    RecordingMissing,
    StoredRecording,
)
from core.errors import StoreError

__all__ = ["RecordingStoreError", "S3RecordingStore", "S3Settings"]

_MISSING: Final = frozenset({"404", "NoSuchKey", "NotFound"})


class RecordingStoreError(StoreError):
    """The bucket could not be reached or refused the request."""

    retryable = True


class S3Settings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Where the bucket is. `endpoint_url` empty: AWS's own for `region`; credentials empty:
    boto3's chain (environment, instance role)."""

    bucket: str
    endpoint_url: str = ""
    region: str = "us-east-1"
    prefix: str = "recordings/"
    access_key_id: str = ""
    secret_access_key: str = msgspec.field(default="")

    def __repr__(self) -> str:  # the secret never reaches a log line
        return f"S3Settings(bucket={self.bucket!r}, endpoint_url={self.endpoint_url!r})"


def _missing(exc: ClientError) -> bool:
    error: dict[str, Any] = exc.response.get("Error", {})
    return str(error.get("Code", "")) in _MISSING


class S3RecordingStore:
    """`RecordingStore` on a bucket."""

    def __init__(self, settings: S3Settings) -> None:
        self._bucket = settings.bucket
        self._prefix = settings.prefix
        self._client: Any = boto3.client(
            "s3",
            endpoint_url=settings.endpoint_url or None,
            region_name=settings.region,
            aws_access_key_id=settings.access_key_id or None,
            aws_secret_access_key=settings.secret_access_key or None,
            config=Config(retries={"max_attempts": 3, "mode": "standard"}),
        )

    def _object(self, key: RecordingKey) -> str:
        return self._prefix + key.name

    async def _call(self, method: str, **kwargs: Any) -> Any:
        try:
            return await asyncio.to_thread(getattr(self._client, method), **kwargs)
        except ClientError as exc:
            if _missing(exc):
                raise RecordingMissing(f"no recording {kwargs.get('Key', '')}") from None
            raise RecordingStoreError(f"S3 {method} failed") from exc
        except BotoCoreError as exc:
            raise RecordingStoreError(f"S3 {method} failed") from exc

    async def put(self, key: RecordingKey, source: Path) -> int:
        size = (await asyncio.to_thread(source.stat)).st_size
        await self._call(
            "upload_file", Filename=str(source), Bucket=self._bucket, Key=self._object(key)
        )
        await asyncio.to_thread(source.unlink)
        return size

    async def size(self, key: RecordingKey) -> int | None:
        try:
            head = await self._call("head_object", Bucket=self._bucket, Key=self._object(key))
        except RecordingMissing:
            return None
        return int(head["ContentLength"])

    async def read(self, key: RecordingKey, start: int = 0, end: int | None = None) -> bytes:
        if start < 0 or (end is not None and end < start):
            raise ValueError(f"bad byte range {start}-{end}")
        if end == start:
            return b""
        byte_range = f"bytes={start}-" + ("" if end is None else str(end - 1))
        try:
            got = await self._call(
                "get_object", Bucket=self._bucket, Key=self._object(key), Range=byte_range
            )
        except RecordingStoreError as exc:  # a range past the end: S3 answers 416
            if "InvalidRange" in str(exc.__cause__):
                return b""
            raise
        body: bytes = await asyncio.to_thread(got["Body"].read)
        return body

    async def delete(self, key: RecordingKey) -> bool:
        if await self.size(key) is None:
            return False
        await self._call("delete_object", Bucket=self._bucket, Key=self._object(key))
        return True

    async def list(self, tenant_id: str | None = None) -> Sequence[StoredRecording]:
        if tenant_id is not None and not ID_PATTERN.match(tenant_id):
            raise ValueError("tenant_id is not an id")
        prefix = self._prefix + (f"{tenant_id}/" if tenant_id is not None else "")
        found: list[StoredRecording] = []
        token: str | None = None
        while True:
            extra = {"ContinuationToken": token} if token else {}
            page = await self._call("list_objects_v2", Bucket=self._bucket, Prefix=prefix, **extra)
            for item in page.get("Contents", []):
                key = RecordingKey.parse(str(item["Key"])[len(self._prefix) :])
                if key is not None:
                    stored = item["LastModified"].astimezone(datetime.UTC)
                    found.append(StoredRecording(key, int(item["Size"]), stored))
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return found
