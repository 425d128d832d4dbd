"""A real ClickHouse for tests: Debian's `clickhouse-server` (18.16) as an unprivileged process
with a small XML config, on free 127.0.0.1 ports, its data in a temporary directory.

The server itself is `bench.ch_server.ClickHouseServer` (the analytics benchmark starts the same
one). `ClickHouseServer.stop()` / `start()` take it down and bring it back on the same ports
with the same data (an outage). The `clickhouse_server` fixture stops it and removes its
directory.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bench.ch_server import CLICKHOUSE_SERVER, HAVE_CLICKHOUSE, ClickHouseServer

__all__ = ["CLICKHOUSE_SERVER", "HAVE_CLICKHOUSE", "ClickHouseServer", "clickhouse_server"]


@pytest.fixture
async def clickhouse_server() -> AsyncIterator[ClickHouseServer]:
    if not HAVE_CLICKHOUSE:
        pytest.skip("clickhouse-server is not installed (make system-packages)")
    directory = Path(tempfile.mkdtemp(prefix="voicenode-ch-"))
    server = ClickHouseServer(directory)
    try:
        await server.start()
        yield server
    finally:
        await server.stop()
        shutil.rmtree(directory, ignore_errors=True)
