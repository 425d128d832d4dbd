"""Real Kamailio + RTPEngine (from deploy/) and sipp, on free 127.0.0.1 ports, for e2e tests.

Import the fixtures into a test module (``from .sipstack import kamailio_fixture as
kamailio_fixture``, the same for ``rtpengine_fixture``); they are named:

- ``rtpengine`` -> :class:`RtpEngine`: started from ``deploy/rtpengine/rtpengine.conf`` and
  ready (answers the ng ``ping``);
- ``kamailio`` -> a :class:`KamailioFactory`: ``kamailio(nodes, numbers=..., **defines)``
  starts ``deploy/kamailio/kamailio.cfg`` against that RTPEngine with generated dispatcher
  and numbers files and returns a ready :class:`Kamailio` (it answers OPTIONS to itself).

Everything started is stopped at teardown (SIGTERM, then SIGKILL), and its log is printed
there (pytest shows it when the test failed). sipp scenarios and their runner
(``run_sipp``, ``sipp_server``) are in ``tests/e2e/sipp``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import pytest

from tests.support.ports import free_port, free_port_run

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
HOST = "127.0.0.1"
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
#: numbers -> tenants every generated numbers table holds unless a test says otherwise
DEMO_NUMBERS: Mapping[str, str] = {"1000": "demo"}


def require(binary: str) -> str:
    path = shutil.which(binary) or (
        f"/usr/sbin/{binary}" if Path(f"/usr/sbin/{binary}").exists() else None
    )
    if path is None:
        pytest.fail(f"{binary} is not installed: `make test` installs it (SYSTEM_PACKAGES)")
    return path


# ---------------------------------------------------------------- ports and readiness


def udp_port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind((HOST, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            raise
        return False


def free_udp_range(size: int) -> tuple[int, int]:
    """An even-aligned block of ``size`` free UDP ports (RTP/RTCP pairs) as (first, last)."""
    first = free_port_run(size)
    return first, first + size - 1


def poll(check: Callable[[], bool], what: str, timeout_s: float, interval_s: float = 0.05) -> None:
    """Call ``check`` until it returns True; fail with ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not ready after {timeout_s:.0f} s: {what}")
        time.sleep(interval_s)


async def wait_for(
    check: Callable[[], bool], what: str, timeout_s: float = 5.0, interval_s: float = 0.02
) -> None:
    """:func:`poll` for async tests: the event loop keeps running between checks."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.1f} s waiting for {what}")
        await asyncio.sleep(interval_s)


# ---------------------------------------------------------------- processes


@dataclass
class Daemon:
    """A child process with its stdout+stderr in a log file, in its own process group."""

    name: str
    argv: list[str]
    log_path: Path
    env: Mapping[str, str] | None = None
    """The child's environment (None: this process's)."""
    cwd: Path | None = None
    process: subprocess.Popen[bytes] = field(init=False)

    def __post_init__(self) -> None:
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=self.env,
                cwd=self.cwd,
            )

    def log(self, tail_lines: int = 60) -> str:
        lines = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(lines[-tail_lines:])

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(
                f"{self.name} exited with status {self.process.returncode}:\n{self.log()}"
            )

    def stop(self) -> None:
        """SIGTERM; SIGKILL to the whole group if it is still there after STOP_TIMEOUT_S."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(STOP_TIMEOUT_S)
        # children (kamailio's workers) of a group whose leader is gone
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)


@contextlib.contextmanager
def running(daemon: Daemon, ready: Callable[[], bool], what: str) -> Iterator[Daemon]:
    """Wait until ``ready`` (the daemon must stay alive meanwhile); stop it on the way out."""
    try:

        def alive_and_ready() -> bool:
            daemon.check_alive()
            return ready()

        try:
            poll(alive_and_ready, what, START_TIMEOUT_S)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\n--- {daemon.name} log ---\n{daemon.log()}") from exc
        yield daemon
    finally:
        daemon.stop()
        print(f"--- {daemon.name} log ({daemon.log_path}) ---\n{daemon.log()}")


# ---------------------------------------------------------------- RTPEngine


def ng_ping(port: int, timeout_s: float = 0.2) -> bool:
    """RTPEngine's ng control protocol: bencoded ``ping`` over UDP answers ``pong``."""
    cookie = os.urandom(4).hex().encode()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout_s)
        sock.sendto(cookie + b" d7:command4:pinge", (HOST, port))
        try:
            reply = sock.recv(1024)
        except (TimeoutError, ConnectionRefusedError):
            return False
    return reply == cookie + b" d6:result4:ponge"


@dataclass(frozen=True)
class RtpEngine:
    ng_port: int
    port_min: int
    port_max: int
    daemon: Daemon

    @property
    def ng_socket(self) -> str:
        """The value of Kamailio's rtpengine_sock."""
        return f"udp:{HOST}:{self.ng_port}"

    def relays(self, port: int) -> bool:
        """Whether ``port`` is one of this RTPEngine's media ports."""
        return self.port_min <= port <= self.port_max


@contextlib.contextmanager
def start_rtpengine(workdir: Path, media_ports: int = 40) -> Iterator[RtpEngine]:
    exe = require("rtpengine")
    ng_port = free_port()
    port_min, port_max = free_udp_range(media_ports)
    argv = [
        exe,
        f"--config-file={DEPLOY / 'rtpengine' / 'rtpengine.conf'}",
        "--config-section=rtpengine",
        "--table=-1",
        f"--interface={HOST}",
        f"--listen-ng={HOST}:{ng_port}",
        f"--port-min={port_min}",
        f"--port-max={port_max}",
        f"--pidfile={workdir / 'rtpengine.pid'}",
        "--foreground",
        "--log-stderr",
        "--log-level=6",
    ]
    daemon = Daemon("rtpengine", argv, workdir / "rtpengine.log")
    with running(daemon, lambda: ng_ping(ng_port), f"rtpengine ng ping on {ng_port}"):
        yield RtpEngine(ng_port, port_min, port_max, daemon)


# ---------------------------------------------------------------- Kamailio


def options_request(port: int, local_port: int, call_id: str, cseq: str = "1 OPTIONS") -> str:
    """An OPTIONS to the SIP server on HOST:port itself (no user part), sent from local_port."""
    return (
        f"OPTIONS sip:{HOST}:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {HOST}:{local_port};branch=z9hG4bK{call_id}\r\n"
        f"From: <sip:probe@{HOST}:{local_port}>;tag={call_id}\r\n"
        f"To: <sip:{HOST}:{port}>\r\n"
        f"Call-ID: {call_id}\r\n"
        f"CSeq: {cseq}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )


def sip_options(port: int, timeout_s: float = 0.2, cseq: str = "1 OPTIONS") -> int | None:
    """Send an OPTIONS to HOST:port from a fresh socket; the reply's status, or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        sock.settimeout(timeout_s)
        request = options_request(port, sock.getsockname()[1], os.urandom(6).hex(), cseq)
        sock.sendto(request.encode(), (HOST, port))
        try:
            reply = sock.recv(65535)
        except (TimeoutError, ConnectionRefusedError):
            return None
    match = re.match(rb"SIP/2\.0 (\d{3}) ", reply)
    return int(match.group(1)) if match else None


def write_dispatcher_list(path: Path, nodes: Sequence[str]) -> None:
    """Dispatcher set 1 (the voice nodes): one ``1 <uri> 0 0 duid=node<i>`` line per node."""
    lines = [f"1 {uri} 0 0 duid=node{i}" for i, uri in enumerate(nodes)]
    path.write_text("# generated by tests/e2e/sipstack.py\n" + "\n".join(lines) + "\n")


def write_numbers_db(directory: Path, numbers: Mapping[str, str]) -> None:
    """The db_text table ``numbers`` (number -> tenant) that kamailio.cfg loads into htable."""
    directory.mkdir(parents=True, exist_ok=True)
    rows = [f"{number}:0:0:{tenant}:0" for number, tenant in numbers.items()]
    header = "key_name(string) key_type(int) value_type(int) key_value(string) expires(int)"
    (directory / "numbers").write_text("\n".join([header, *rows]) + "\n")


@dataclass(frozen=True)
class Kamailio:
    port: int
    ctl_socket: str
    dispatcher_list: Path
    daemon: Daemon

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    async def rpc(self, *command: str) -> str:
        """A kamcmd RPC over this instance's ctl socket (e.g. ``dispatcher.list``)."""
        proc = await asyncio.create_subprocess_exec(
            require("kamcmd"),
            "-s",
            self.ctl_socket,
            *command,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"kamcmd {' '.join(command)} failed: {out.decode()}")
        return out.decode()

    async def node_flags(self) -> dict[str, str]:
        """Dispatcher state per node URI: ``AP`` active, ``IP`` inactive (probing), ``TP``..."""
        text = await self.rpc("dispatcher.list")
        found = re.findall(r"URI:\s*(\S+)\s+FLAGS:\s*(\S+)", text)
        return dict(found)

    async def wait_node_state(self, uri: str, state: str, timeout_s: float = 6.0) -> None:
        """Wait until the node's dispatcher flags start with ``state`` ("A" or "I")."""
        deadline = time.monotonic() + timeout_s
        flags: dict[str, str] = {}
        while time.monotonic() < deadline:
            flags = await self.node_flags()
            if flags.get(uri, "").startswith(state):
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"node {uri} not in state {state} after {timeout_s} s: {flags}")


class KamailioFactory(Protocol):
    def __call__(
        self,
        nodes: Sequence[str],
        numbers: Mapping[str, str] = ...,
        **defines: str | int,
    ) -> Kamailio: ...


@contextlib.contextmanager
def start_kamailio(
    workdir: Path,
    rtpengine: RtpEngine,
    nodes: Sequence[str],
    numbers: Mapping[str, str] = DEMO_NUMBERS,
    defines: Mapping[str, str | int] | None = None,
) -> Iterator[Kamailio]:
    """Kamailio from deploy/kamailio/kamailio.cfg; ``defines`` override its ``-A`` defaults
    (ints as they are, strings quoted: ``{"DS_PING_INTERVAL": 1}``)."""
    exe = require("kamailio")
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    dispatcher_list = workdir / "dispatcher.list"
    write_dispatcher_list(dispatcher_list, nodes)
    write_numbers_db(workdir / "db", numbers)
    ctl_socket = f"unix:{workdir / 'kamailio_ctl'}"
    values: dict[str, str | int] = {
        "LISTEN_IP": HOST,
        "LISTEN_PORT": port,
        "RTPENGINE_SOCK": rtpengine.ng_socket,
        "DISPATCHER_LIST": str(dispatcher_list),
        "NUMBERS_DB": f"text://{workdir / 'db'}",
        "CTL_SOCKET": ctl_socket,
        "FR_TIMER": 1000,
        **(defines or {}),
    }
    argv = [exe, "-f", str(DEPLOY / "kamailio" / "kamailio.cfg"), "-DD", "-E"]
    argv += ["-m", "32", "-M", "4", "-Y", str(workdir), "-w", str(workdir)]
    argv += ["-P", str(workdir / "kamailio.pid")]
    for name, value in values.items():
        argv += ["-A", f"{name}={value}" if isinstance(value, int) else f'{name}="{value}"']
    daemon = Daemon("kamailio", argv, workdir / "kamailio.log")
    with running(daemon, lambda: sip_options(port) == 200, f"kamailio OPTIONS on {port}"):
        yield Kamailio(port, ctl_socket, dispatcher_list, daemon)


# ---------------------------------------------------------------- fixtures


@pytest.fixture(name="rtpengine")
def rtpengine_fixture(tmp_path: Path) -> Iterator[RtpEngine]:
    with start_rtpengine(tmp_path) as engine:
        yield engine


@pytest.fixture(name="kamailio")
def kamailio_fixture(tmp_path: Path, rtpengine: RtpEngine) -> Iterator[KamailioFactory]:
    with contextlib.ExitStack() as stack:
        count = 0

        def start(
            nodes: Sequence[str],
            numbers: Mapping[str, str] = DEMO_NUMBERS,
            **defines: str | int,
        ) -> Kamailio:
            nonlocal count
            count += 1
            workdir = tmp_path / f"kamailio{count}"
            return stack.enter_context(start_kamailio(workdir, rtpengine, nodes, numbers, defines))

        yield start
