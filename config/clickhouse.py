"""`[analytics.clickhouse]`: the ClickHouse analytics store (off while `url` is empty)."""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

PASSWORD_ENV = "VOICENODE_ANALYTICS__CLICKHOUSE__PASSWORD"


class ClickHouseSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Calls and turns go to ClickHouse tables through its HTTP interface, in batches."""

    url: str = ""
    """The HTTP interface (`http://127.0.0.1:8123`); empty: no ClickHouse sink."""
    database: Annotated[str, Meta(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")] = "voicenode"
    user: str = "default"
    password: str = ""
    """Only from the environment (`VOICENODE_ANALYTICS__CLICKHOUSE__PASSWORD`), never a file."""
    batch_size: Annotated[int, Meta(ge=1, le=100_000)] = 50_000
    """Outbox rows per insert at most. Only a backlog (after an outage, or a busy fleet) fills a
    batch; each insert writes one part per tenant and month in each table, and ClickHouse 18.16
    on 2 cores ingests 28,000 rows/s at 10,000 a batch and 65,000 at 50,000
    (`bench/reports/analytics`). About 1 KB of memory per row while a batch is in flight."""
    flush_interval_s: Annotated[float, Meta(ge=0, le=60)] = 1.0
    """A smaller batch waits until its oldest event is this old (0: send at once)."""
    timeout_s: Annotated[float, Meta(gt=0, le=300)] = 10.0
    backoff_s: Annotated[float, Meta(gt=0, le=3600)] = 0.5
    backoff_max_s: Annotated[float, Meta(gt=0, le=3600)] = 30.0
    """ClickHouse unreachable: retry after `backoff_s`, doubling up to this (never dropped)."""

    def __repr__(self) -> str:  # the password stays out of logs and tracebacks
        shown = "***" if self.password else ""
        return (
            f"ClickHouseSettings(url={self.url!r}, database={self.database!r}, password={shown!r})"
        )
