"""A real Redis for tests: `redis-server` on 127.0.0.1 at a free port, no persistence.

`RedisServer.stop()` / `start()` take it down and bring it back on the same port (empty: it
keeps nothing). The `redis_server` fixture stops it at the end of the test.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
from collections.abc import AsyncIterator

import pytest

from tests.support.ports import free_port

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
HAVE_REDIS = os.path.exists(REDIS_SERVER)


class RedisServer:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port(socket.SOCK_STREAM)
        self._proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    async def start(self, timeout_s: float = 10.0) -> None:
        assert not self.running
        self._proc = await asyncio.create_subprocess_exec(
            REDIS_SERVER,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        async with asyncio.timeout(timeout_s):
            while True:
                assert self._proc.returncode is None, "redis-server exited"
                try:
                    _r, writer = await asyncio.open_connection("127.0.0.1", self.port)
                except OSError:
                    await asyncio.sleep(0.02)  # polling for the port to open
                    continue
                writer.close()
                await writer.wait_closed()
                return

    async def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.returncode is not None:
            return
        proc.terminate()
        async with asyncio.timeout(10):
            await proc.wait()


@pytest.fixture
async def redis_server() -> AsyncIterator[RedisServer]:
    if not HAVE_REDIS:
        pytest.skip("redis-server is not installed")
    server = RedisServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
