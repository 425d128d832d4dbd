"""Moved to `tests.support.clickhouse_server`. This alias stays only until the tests written while
it moved import from there; `tests/test_support_imports.py` names them. Do not import it."""

from tests.support.clickhouse_server import (
    CLICKHOUSE_SERVER,
    HAVE_CLICKHOUSE,
    ClickHouseServer,
    clickhouse_server,
)

__all__ = ["CLICKHOUSE_SERVER", "HAVE_CLICKHOUSE", "ClickHouseServer", "clickhouse_server"]
