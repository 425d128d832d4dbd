"""ClickHouse over its HTTP interface (httpx), and the node's tables in it.

Kept to what ClickHouse 18.16 (Debian's package) and current servers both accept: String,
DateTime and numeric types, ReplacingMergeTree, custom partitioning; no DateTime64, no TTL,
no query parameters (`{name:Type}` came in 19.x). Values never enter SQL text: rows go as
`FORMAT JSONEachRow` bodies, and a query's values go as an external table (`p`, one
JSONEachRow line sent beside the query) that the SQL selects from. SQL text is built only from
constants of this code and the configured database name (checked as an identifier), with one
exception: a mutation's condition (`delete_where`), which the server evaluates later, without
the external table; its values go in as `unhex('…')` literals (`hex_literal`: hex digits only,
nothing that can end the string).

Schema: versioned migrations (`MIGRATIONS`); `schema_versions` records the ones applied. A
database migrated by a newer node (a version this node does not know) is refused with a
`ConfigError` naming it (`voicenode serve` exits 2).
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

import httpx
import msgspec

from config.clickhouse import ClickHouseSettings
from config.loader import ConfigError
from core.errors import TransportError

_CODE = re.compile(r"Code: (\d+)")
_KEY = re.compile(r"while read(?:ing)? the value of key (\w+)")
"""The column of a refused value: "while read" (18.16), "while reading" (current servers)."""

ROW_REFUSAL_CODES: Final = frozenset({6, 26, 27, 36, 38, 41, 49, 53, 69, 70, 72, 117, 131})
"""Error codes of a value ClickHouse cannot take (parse errors, out of range, unknown enum
element): the row is refused, not the server unavailable."""


NOT_IMPLEMENTED: Final = 48
"""What the table cannot do (a Distributed table: no mutations, no partitions)."""


class ClickHouseError(TransportError):
    """ClickHouse answered with an error, or could not be reached (`code` None).

    Retryable unless it `refuses_rows` (the same rows would be refused again)."""

    def __init__(self, detail: str, *, code: int | None = None, key: str | None = None) -> None:
        super().__init__(detail, retryable=code not in ROW_REFUSAL_CODES)
        self.detail = detail
        self.code = code
        self.key = key

    @property
    def refuses_rows(self) -> bool:
        """The data was refused (another try would fail the same way)."""
        return self.code in ROW_REFUSAL_CODES


class ClickHouseSchemaError(ConfigError):
    """The ClickHouse database was migrated by a newer node."""


def _error(response: httpx.Response) -> ClickHouseError:
    text = response.text
    code_match = _CODE.search(text)
    key_match = _KEY.search(text)
    code = int(code_match.group(1)) if code_match else None
    key = key_match.group(1) if key_match else None
    # The server's message may quote the data: only the code and the column are kept.
    detail = f"clickhouse http {response.status_code}, code {code}" + (
        f", column {key}" if key else ""
    )
    return ClickHouseError(detail, code=code, key=key)


_UTC_ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|\+00:00)")
"""A UTC time as the node writes it (`datetime.isoformat()` of an aware UTC time)."""

_rows = msgspec.json.Encoder()


def hex_literal(value: str) -> str:
    """`value` as a ClickHouse string expression whose text is hex digits only."""
    return f"unhex('{value.encode().hex()}')"


def to_datetime(text: str) -> str:
    """An event's ISO 8601 UTC time as ClickHouse's `YYYY-MM-DD hh:mm:ss` (whole seconds)."""
    if _UTC_ISO.fullmatch(text):  # the node's own form: cut, not parsed (one per row)
        return f"{text[:10]} {text[11:19]}"
    at = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return at.astimezone(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")


class ClickHouse:
    """One ClickHouse database over HTTP (`settings.url`), as `settings.user`."""

    def __init__(self, settings: ClickHouseSettings, http: httpx.AsyncClient) -> None:
        self.database = settings.database
        self._url = settings.url
        self._http = http
        self._timeout_s = settings.timeout_s
        self._auth = {"X-ClickHouse-User": settings.user}
        if settings.password:
            self._auth["X-ClickHouse-Key"] = settings.password

    async def _post(
        self,
        sql: str,
        *,
        body: bytes | None = None,
        params: Mapping[str, Any] | None = None,
        structure: str = "",
    ) -> str:
        query: dict[str, str] = {"query": sql, "output_format_json_quote_64bit_integers": "0"}
        files = None
        if params is not None:
            query |= {"p_structure": structure, "p_format": "JSONEachRow"}
            files = {"p": ("p", json.dumps(dict(params)).encode())}
        try:
            response = await self._http.post(
                self._url,
                params=query,
                content=body,
                files=files,
                headers=self._auth,
                timeout=self._timeout_s,
            )
        except httpx.HTTPError as exc:
            raise ClickHouseError(f"clickhouse unreachable: {type(exc).__name__}") from exc
        if response.status_code != 200:
            raise _error(response)
        return response.text

    async def execute(self, sql: str) -> None:
        await self._post(sql, body=b"")

    async def delete_where(self, table: str, condition: str) -> None:
        """`ALTER TABLE ... DELETE WHERE condition` (a mutation; values in `condition` only as
        `hex_literal`s). Returns once the server has recorded it; it runs in the background.
        The condition travels in the body (the server appends it to the query): a long one
        would not fit the URL."""
        sql = f"ALTER TABLE {self.database}.{table} DELETE WHERE"
        await self._post(sql, body=condition.encode())

    async def insert(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """INSERT `rows` (JSON objects) into `table` of the database, all or none."""
        body = _rows.encode_lines(rows)
        await self._post(f"INSERT INTO {self.database}.{table} FORMAT JSONEachRow", body=body)

    async def select(
        self, sql: str, params: Mapping[str, Any] | None = None, structure: str = ""
    ) -> list[dict[str, Any]]:
        """Rows of `sql` (which ends without FORMAT); `params` is the external table `p` with
        the columns `structure` (`name Type, ...`) that the SQL reads its values from."""
        text = await self._post(f"{sql} FORMAT JSONEachRow", params=params, structure=structure)
        return [json.loads(line) for line in text.splitlines() if line]


def _migration_1(db: str) -> list[str]:
    partition = "PARTITION BY (tenant_id, toYYYYMM({}))"
    return [
        f"""CREATE TABLE IF NOT EXISTS {db}.calls (
            call_id String, tenant_id String, node String, agent String,
            agent_version UInt32, direction String, transport String,
            from_uri String, to_uri String, started_at DateTime, ended_at DateTime,
            duration_s Float64, end_reason String, disposition String, summary String,
            sentiment String, sentiment_score Float64, outcome_source String, slots String,
            turns UInt32, agent_turns UInt32, barge_ins UInt32,
            v2v_p50_ms Nullable(Float64), v2v_p95_ms Nullable(Float64), version UInt64
        ) ENGINE = ReplacingMergeTree(version) {partition.format("started_at")}
        ORDER BY (tenant_id, call_id)""",
        f"""CREATE TABLE IF NOT EXISTS {db}.turns (
            call_id String, tenant_id String, seq UInt32, turn UInt32, role String,
            text String, interrupted UInt8, at DateTime, version UInt64
        ) ENGINE = ReplacingMergeTree(version) {partition.format("at")}
        ORDER BY (tenant_id, call_id, seq)""",
    ]


TURN_STAGES: Final = (
    "turn_window",
    "stt_wait",
    "agent",
    "tts_first",
    "playout",
    "voice_to_voice",
)
"""The `turns` table's stage columns (`<stage>_ms`), `pipeline.marks.STAGES` in order."""


def _migration_2(db: str) -> list[str]:
    # One statement: all the columns or none (18.16 has no ADD COLUMN IF NOT EXISTS).
    columns = ", ".join(f"ADD COLUMN {stage}_ms Nullable(Float64)" for stage in TURN_STAGES)
    return [f"ALTER TABLE {db}.turns {columns}"]


MIGRATIONS: Final = {1: _migration_1, 2: _migration_2}
"""Schema version -> the statements that bring the database to it from the one before."""
SCHEMA_VERSION: Final = max(MIGRATIONS)


_COLUMN_EXISTS: Final = frozenset({15, 44})
"""DUPLICATE_COLUMN (current servers), ILLEGAL_COLUMN (18.16): an ADD COLUMN that ran before."""


async def _apply(ch: ClickHouse, statement: str) -> None:
    """Run a migration statement; an ADD COLUMN whose columns are there already (a node
    stopped between the ALTER and recording its version) counts as done."""
    try:
        await ch.execute(statement)
    except ClickHouseError as exc:
        if not (exc.code in _COLUMN_EXISTS and " ADD COLUMN " in statement):
            raise


async def migrate(ch: ClickHouse) -> list[int]:
    """Create the database and bring its tables to `SCHEMA_VERSION`; returns the versions
    applied now (none when already there). Raises `ClickHouseSchemaError` for a newer schema."""
    db = ch.database
    await ch.execute(f"CREATE DATABASE IF NOT EXISTS {db}")
    await ch.execute(
        f"CREATE TABLE IF NOT EXISTS {db}.schema_versions (version UInt32, applied_at DateTime)"
        " ENGINE = MergeTree ORDER BY version"
    )
    rows = await ch.select(f"SELECT version FROM {db}.schema_versions")
    have = {int(row["version"]) for row in rows}
    unknown = sorted(v for v in have if v not in MIGRATIONS)
    if unknown:
        raise ClickHouseSchemaError(
            f"analytics.clickhouse: database {db!r} has schema version {unknown[-1]}, which this "
            f"node does not know (it knows 1..{SCHEMA_VERSION}); upgrade the node"
        )
    applied = []
    for version in sorted(MIGRATIONS):
        if version in have:
            continue
        for statement in MIGRATIONS[version](db):
            await _apply(ch, statement)
        now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")
        await ch.insert("schema_versions", [{"version": version, "applied_at": now}])
        applied.append(version)
    return applied
