"""`voicenode serve` as an operator runs it: a process started from the command line with a
`--config` file, its stdout and stderr read line by line, signals sent, waited on by condition.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
ADMIN_KEY = "operator-e2e-admin-key-0123456789"


class NodeProcess:
    """A running `voicenode serve`; `records` are its JSON log lines (others are kept too)."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[tuple[str, str]] = []
        """(stream, line) as written, in order."""
        self._changed = asyncio.Event()
        assert proc.stdout is not None and proc.stderr is not None
        self._readers = [
            asyncio.create_task(self._collect("stdout", proc.stdout)),
            asyncio.create_task(self._collect("stderr", proc.stderr)),
        ]
        self.http: httpx.AsyncClient | None = None

    async def _collect(self, name: str, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            self.lines.append((name, line.decode(errors="replace").rstrip("\n")))
            self._changed.set()
        self._changed.set()

    @property
    def records(self) -> list[dict[str, Any]]:
        out = []
        for _, line in self.lines:
            with suppress(ValueError):
                doc = json.loads(line)
                if isinstance(doc, dict):
                    out.append(doc)
        return out

    async def wait_record(
        self, match: Callable[[dict[str, Any]], bool], limit_s: float = 120.0, after: int = 0
    ) -> dict[str, Any]:
        """The first JSON record (from the `after`-th on) that matches, waiting for it."""
        async with asyncio.timeout(limit_s):
            while True:
                found = [r for r in self.records[after:] if match(r)]
                if found:
                    return found[0]
                assert self.proc.returncode is None, f"the node exited: {self.tail()}"
                self._changed.clear()
                await self._changed.wait()

    def tail(self, n: int = 30) -> str:
        return "\n".join(f"{s}: {line}" for s, line in self.lines[-n:])

    async def ready(self, limit_s: float = 180.0) -> httpx.AsyncClient:
        """Once the node serves and its models are in: a client for its API (admin key)."""
        serving = await self.wait_record(lambda r: r.get("msg") == "serving", limit_s)
        url = f"http://127.0.0.1:{serving['port']}"
        self.http = httpx.AsyncClient(
            base_url=url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=20
        )
        async with asyncio.timeout(limit_s):
            while (await self.http.get("/readyz")).status_code != 200:
                self._changed.clear()
                with suppress(TimeoutError):  # re-asked whenever the node writes a line
                    async with asyncio.timeout(1.0):
                        await self._changed.wait()
        return self.http

    def signal(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    async def stop(self, limit_s: float = 60.0) -> int:
        """SIGTERM (drain), then the exit status; every line it wrote has been read."""
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(limit_s):
            code = await self.proc.wait()
            await asyncio.gather(*self._readers)
        if self.http is not None:
            await self.http.aclose()
        return code


@asynccontextmanager
async def node_process(config: Path) -> AsyncIterator[NodeProcess]:
    """`python -m voicenode.cli serve --config CONFIG` with no VOICENODE_* from the test's
    environment but the admin key; killed if still running on exit."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICENODE_")}
    env |= {"VOICENODE_ADMIN_KEY": ADMIN_KEY, "PYTHONPATH": str(ROOT)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "voicenode.cli",
        "serve",
        "--config",
        str(config),
        cwd=ROOT,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    node = NodeProcess(proc)
    try:
        yield node
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await asyncio.gather(*node._readers, return_exceptions=True)
        if node.http is not None:
            await node.http.aclose()
