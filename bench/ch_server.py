"""A local ClickHouse: Debian's `clickhouse-server` (18.16) as an unprivileged process with a
small XML config, on free 127.0.0.1 ports, its data in a directory the caller owns.

Shared by the analytics benchmark (`bench.analytics`) and the tests' `clickhouse_server`
fixture (`tests/control_api/clickhouse_server.py`). `ClickHouseServer.stop()` / `start()` take
it down and bring it back on the same ports with the same data (an outage).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
from pathlib import Path

import httpx

CLICKHOUSE_SERVER = shutil.which("clickhouse-server") or "/usr/sbin/clickhouse-server"
HAVE_CLICKHOUSE = os.path.exists(CLICKHOUSE_SERVER)

_CONFIG = """<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>{dir}/server.log</log><errorlog>{dir}/error.log</errorlog>
    <console>0</console></logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>{http_port}</http_port>
  <tcp_port>{tcp_port}</tcp_port>
  <path>{dir}/data/</path>
  <tmp_path>{dir}/tmp/</tmp_path>
  <user_files_path>{dir}/user_files/</user_files_path>
  <format_schema_path>{dir}/format_schemas/</format_schema_path>
  <mark_cache_size>67108864</mark_cache_size>
  <max_concurrent_queries>32</max_concurrent_queries>
  <users_config>users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
</yandex>
"""
_USERS = """<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>2000000000</max_memory_usage></default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip></networks>
    <profile>default</profile><quota>default</quota></default></users>
  <quotas><default></default></quotas>
</yandex>
"""


class ClickHouseServerError(RuntimeError):
    """The server did not start, or answered a query with an error."""


def free_port() -> int:
    """A TCP port nothing listens on right now (the OS's pick; there is a race, as always)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ClickHouseServer:
    """`clickhouse-server` with its config and data in `directory` (which must exist)."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.http_port = free_port()
        self.tcp_port = free_port()
        self._proc: asyncio.subprocess.Process | None = None
        (directory / "config.xml").write_text(
            _CONFIG.format(dir=directory, http_port=self.http_port, tcp_port=self.tcp_port)
        )
        (directory / "users.xml").write_text(_USERS)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    async def start(self, timeout_s: float = 30.0) -> None:
        """Start it and wait (bounded) until its HTTP interface answers `/ping`."""
        if self.running:
            raise ClickHouseServerError("clickhouse-server is running already")
        self._proc = proc = await asyncio.create_subprocess_exec(
            CLICKHOUSE_SERVER,
            f"--config-file={self.dir / 'config.xml'}",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            async with httpx.AsyncClient(trust_env=False) as http, asyncio.timeout(timeout_s):
                while True:
                    if proc.returncode is not None:
                        raise ClickHouseServerError(
                            f"clickhouse-server exited ({proc.returncode}); see {self.dir}"
                        )
                    try:
                        response = await http.get(f"{self.url}ping", timeout=1.0)
                        if response.text.strip() == "Ok.":
                            return
                    except httpx.HTTPError:
                        pass
                    await asyncio.sleep(0.05)  # polling for the HTTP interface to answer
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.returncode is not None:
            return
        proc.terminate()
        async with asyncio.timeout(30):
            await proc.wait()

    async def query(self, sql: str) -> str:
        """Run `sql` (checks beside the code under test) and return the answer's text."""
        async with httpx.AsyncClient(trust_env=False) as http:
            response = await http.post(self.url, content=sql.encode(), timeout=30)
        if response.status_code != 200:
            raise ClickHouseServerError(f"clickhouse http {response.status_code}: {response.text}")
        return response.text
