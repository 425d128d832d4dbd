"""Where finished call recordings are kept: one seam, the local filesystem by default.

A recording is named by a `RecordingKey`: the tenant's id, the call's id and the format. Both
ids are checked against `ID_PATTERN` (letters, digits, `_` and `-`, at most 64) when the key is
made, so a key's `name` (`<tenant_id>/<call_id>.<format>`) is always one file in one tenant's
folder: no `..`, no `/`, no absolute path. Nothing else a tenant sends ever becomes part of a
path or an object key.

`RecordingStore` is the seam: `put` takes a finished local file in (the recorder writes the call
to a spool file first, `media/recording_file.py`), `size` and `read` (a byte range, for HTTP
range requests) give it back, `delete` removes it, `list` says what is kept and when it was
stored (for retention). `LocalRecordingStore` keeps files under `<node.data_dir>/recordings`;
`control_api/recordings/s3.py` keeps them in an S3-compatible bucket.
"""

from __future__ import annotations

import asyncio
import datetime
import os
import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Final, Literal, Protocol, get_args

import msgspec

from core.errors import StoreError

__all__ = [
    "ID_PATTERN",
    "LocalRecordingStore",
    "RecordingKey",
    "RecordingMissing",
    "RecordingStore",
    "StoredRecording",
]

ID_PATTERN: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
Format = Literal["wav", "ogg"]
FORMATS: Final[tuple[str, ...]] = get_args(Format)
_NAME: Final = re.compile(r"^([^/]+)/([^/.]+)\.([a-z0-9]+)$")


class RecordingMissing(StoreError, LookupError):
    """No recording under that key."""


class RecordingKey(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A recording's name: the ids are checked when the key is made (`ValueError` if not ids)."""

    tenant_id: str
    call_id: str
    format: Format = "wav"

    def __post_init__(self) -> None:
        for field, value in (("tenant_id", self.tenant_id), ("call_id", self.call_id)):
            if not ID_PATTERN.match(value):
                raise ValueError(f"{field} is not an id ([A-Za-z0-9_-], at most 64)")
        if self.format not in FORMATS:
            raise ValueError(f"format must be one of {FORMATS}")

    @property
    def name(self) -> str:
        """`<tenant_id>/<call_id>.<format>`: the relative path or object key."""
        return f"{self.tenant_id}/{self.call_id}.{self.format}"

    @classmethod
    def parse(cls, name: str) -> RecordingKey | None:
        """The key a stored name stands for; None for a name no key makes."""
        match = _NAME.match(name)
        if match is None:
            return None
        tenant_id, call_id, fmt = match.groups()
        try:
            return msgspec.convert(
                {"tenant_id": tenant_id, "call_id": call_id, "format": fmt}, RecordingKey
            )
        except (msgspec.ValidationError, ValueError):
            return None


class StoredRecording(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    key: RecordingKey
    size: int
    stored_at: datetime.datetime
    """When it was stored (UTC)."""


class RecordingStore(Protocol):
    """The seam between the node and where recordings are kept."""

    async def put(self, key: RecordingKey, source: Path) -> int:
        """Take the finished file `source` in under `key` (it replaces one there); its size.
        `source` is gone afterwards."""
        ...

    async def size(self, key: RecordingKey) -> int | None:
        """Its size in bytes; None if there is none."""
        ...

    async def read(self, key: RecordingKey, start: int = 0, end: int | None = None) -> bytes:
        """Bytes `start` to `end` (exclusive; None: to the end); `RecordingMissing` if none."""
        ...

    async def delete(self, key: RecordingKey) -> bool:
        """Remove it; False if there was none."""
        ...

    async def list(self, tenant_id: str | None = None) -> Sequence[StoredRecording]:
        """Every recording kept (of one tenant, if given)."""
        ...


class LocalRecordingStore:
    """Recordings as files under `root` (`<node.data_dir>/recordings`), one folder per tenant."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def under(cls, data_dir: str | os.PathLike[str]) -> LocalRecordingStore:
        return cls(Path(data_dir) / "recordings")

    def path(self, key: RecordingKey) -> Path:
        return self.root / key.tenant_id / f"{key.call_id}.{key.format}"

    async def put(self, key: RecordingKey, source: Path) -> int:
        return await asyncio.to_thread(self._put, key, source)

    def _put(self, key: RecordingKey, source: Path) -> int:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        shutil.move(source, target)
        return target.stat().st_size

    async def size(self, key: RecordingKey) -> int | None:
        try:
            return (await asyncio.to_thread(self.path(key).stat)).st_size
        except FileNotFoundError:
            return None

    async def read(self, key: RecordingKey, start: int = 0, end: int | None = None) -> bytes:
        if start < 0 or (end is not None and end < start):
            raise ValueError(f"bad byte range {start}-{end}")
        return await asyncio.to_thread(self._read, key, start, end)

    def _read(self, key: RecordingKey, start: int, end: int | None) -> bytes:
        try:
            with self.path(key).open("rb") as file:
                file.seek(start)
                return file.read(-1 if end is None else end - start)
        except FileNotFoundError:
            raise RecordingMissing(f"no recording {key.name}") from None

    async def delete(self, key: RecordingKey) -> bool:
        try:
            await asyncio.to_thread(self.path(key).unlink)
        except FileNotFoundError:
            return False
        return True

    async def list(self, tenant_id: str | None = None) -> Sequence[StoredRecording]:
        return await asyncio.to_thread(self._list, tenant_id)

    def _list(self, tenant_id: str | None) -> Sequence[StoredRecording]:
        if tenant_id is not None and not ID_PATTERN.match(tenant_id):
            raise ValueError("tenant_id is not an id")
        pattern = f"{tenant_id}/*" if tenant_id is not None else "*/*"
        found = []
        for path in sorted(self.root.glob(pattern)):
            key = RecordingKey.parse(path.relative_to(self.root).as_posix())
            if key is None or not path.is_file():
                continue
            stat = path.stat()
            stored = datetime.datetime.fromtimestamp(stat.st_mtime, datetime.UTC)
            found.append(StoredRecording(key, stat.st_size, stored))
        return found
