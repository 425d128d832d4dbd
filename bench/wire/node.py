"""The node under test, seen from outside: a spawned `voicenode serve` subprocess, or a running
node's URL; its CPU time and memory from /proc (spawned) or its /metrics (target).

`SpawnedNode` starts `voicenode serve` on free 127.0.0.1 ports with `VOICENODE_*` overrides
(fresh data dir, admin key, HTTP/AudioSocket/SIP ports, `node.max_calls`), waits for
`/readyz`, and stops it with SIGTERM (SIGKILL if it does not exit in time).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx

from bench.wire.leg import LegError


def free_port(kind: int = socket.SOCK_STREAM, host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (the OS's pick; there is a race, as always)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


@dataclass(frozen=True)
class ProcSample:
    """A process's CPU seconds (user + system) and memory at one instant."""

    cpu_s: float | None
    rss_bytes: int | None
    peak_rss_bytes: int | None = None
    """The kernel's high-water mark (VmHWM) when known: the peak since the process started."""


def read_proc(pid: int, proc: Path = Path("/proc")) -> ProcSample:
    """CPU seconds and RSS of `pid` from /proc (None where unreadable)."""
    cpu: float | None = None
    rss: int | None = None
    peak: int | None = None
    try:
        stat = (proc / str(pid) / "stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()
        ticks = os.sysconf("SC_CLK_TCK")
        cpu = (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    except (OSError, ValueError, IndexError):
        pass
    try:
        for line in (proc / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
            elif line.startswith("VmHWM:"):
                peak = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return ProcSample(cpu, rss, peak)


_METRIC = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+([-+0-9.eEinfNa]+)")


def parse_metrics(text: str) -> dict[str, list[tuple[str, float]]]:
    """Prometheus text exposition: metric name -> [(label block, value)]."""
    out: dict[str, list[tuple[str, float]]] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _METRIC.match(line)
        if m is None:
            continue
        try:
            value = float(m.group(3))
        except ValueError:
            continue
        out.setdefault(m.group(1), []).append((m.group(2) or "", value))
    return out


def metrics_sample(text: str) -> ProcSample:
    """CPU and RSS from a node's /metrics (the Prometheus client's process collector)."""
    metrics = parse_metrics(text)
    cpu = metrics.get("process_cpu_seconds_total")
    rss = metrics.get("process_resident_memory_bytes")
    return ProcSample(cpu[0][1] if cpu else None, int(rss[0][1]) if rss else None)


class NodeStats:
    """Samples the node's CPU and memory: from /proc for a pid, else from /metrics."""

    def __init__(self, base_url: str, pid: int | None = None) -> None:
        self._base_url = base_url.rstrip("/")
        self._pid = pid
        self.peak_rss_bytes: int | None = None
        self.source = "proc" if pid is not None else "metrics"

    async def sample(self, client: httpx.AsyncClient) -> ProcSample:
        if self._pid is not None:
            s = read_proc(self._pid)
        else:
            try:
                r = await client.get(f"{self._base_url}/metrics", timeout=5.0)
                s = metrics_sample(r.text) if r.status_code == 200 else ProcSample(None, None)
            except httpx.HTTPError:
                s = ProcSample(None, None)
        for v in (s.rss_bytes, s.peak_rss_bytes):
            if v is not None:
                self.peak_rss_bytes = max(self.peak_rss_bytes or 0, v)
        return s


class SpawnedNode:
    """`voicenode serve` as a subprocess on free ports (an async context manager)."""

    def __init__(
        self,
        *,
        config: Path | None = None,
        data_dir: Path,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        max_calls: int = 8,
        ready_timeout_s: float = 180.0,
        stop_timeout_s: float = 30.0,
    ) -> None:
        self.admin_key = "bench-" + secrets.token_urlsafe(16)
        self.http_port = free_port()
        self.audiosocket_port = free_port()
        self.sip_port = free_port(socket.SOCK_DGRAM)
        self.base_url = f"http://127.0.0.1:{self.http_port}"
        self._config = config
        self._log_path = log_path
        self._ready_timeout_s = ready_timeout_s
        self._stop_timeout_s = stop_timeout_s
        self._env = {
            "VOICENODE_HTTP__HOST": "127.0.0.1",
            "VOICENODE_HTTP__PORT": str(self.http_port),
            "VOICENODE_HTTP__ADMIN_KEY": self.admin_key,
            "VOICENODE_NODE__DATA_DIR": str(data_dir),
            "VOICENODE_NODE__MAX_CALLS": str(max_calls),
            # every bench call is the demo tenant's: its share of max_calls is all of it (the
            # default 0.5 refused the burst's calls past half as `max_concurrent_calls`)
            "VOICENODE_NODE__TENANT_SHARE": "1.0",
            "VOICENODE_NODE__DRAIN_TIMEOUT_S": "5",
            "VOICENODE_AUDIOSOCKET__HOST": "127.0.0.1",
            "VOICENODE_AUDIOSOCKET__PORT": str(self.audiosocket_port),
            "VOICENODE_SIP__HOST": "127.0.0.1",
            "VOICENODE_SIP__PORT": str(self.sip_port),
            "VOICENODE_SIP__RTP_PORT": str(20_000 + secrets.randbelow(2_000) * 10),
            "VOICENODE_SIP__RTP_PORT_RANGE": "200",
            "VOICENODE_WEBRTC__HOST_ADDRESSES": "127.0.0.1",
            **(env or {}),
        }
        self.process: asyncio.subprocess.Process | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def command(self) -> list[str]:
        cmd = [
            sys.executable,
            "-c",
            "import sys; from voicenode.cli import main; sys.exit(main(sys.argv[1:]))",
            "serve",
        ]
        if self._config is not None:
            cmd += ["--config", str(self._config)]
        return cmd

    async def __aenter__(self) -> SpawnedNode:
        env = {k: v for k, v in os.environ.items() if not k.startswith("VOICENODE_")}
        env |= self._env
        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self._log_path.open("wb")
        self.process = await asyncio.create_subprocess_exec(
            *self.command(), env=env, stdout=self._log, stderr=subprocess.STDOUT
        )
        try:
            await self._wait_ready()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _wait_ready(self) -> None:
        deadline = time.monotonic() + self._ready_timeout_s
        async with httpx.AsyncClient() as client:
            while True:
                assert self.process is not None
                if self.process.returncode is not None:
                    raise LegError(
                        f"the node exited with status {self.process.returncode} before it was "
                        f"ready; see {self._log_path}"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    r = await client.get(f"{self.base_url}/readyz", timeout=2.0)
                    if r.status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise LegError(
                        f"the node was not ready within {self._ready_timeout_s:g} s; "
                        f"see {self._log_path}"
                    )
                await asyncio.sleep(0.25)

    async def stop(self) -> int | None:
        """SIGTERM, wait for the exit (SIGKILL after `stop_timeout_s`); the exit status."""
        proc = self.process
        if proc is None:
            return None
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(self._stop_timeout_s):
                    await proc.wait()
            except TimeoutError:
                proc.kill()
                await proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
            self._scrub_log()
        return proc.returncode

    def _scrub_log(self) -> None:
        """The node prints its /phone URL with the admin key: keep the key out of the log."""
        with contextlib.suppress(OSError):
            text = self._log_path.read_bytes()
            self._log_path.write_bytes(text.replace(self.admin_key.encode(), b"***"))
