"""The churn bench's callers: one sipp (Debian `sip-tester`) running `scenarios/churn.xml`, in
which each call draws its kind (normal, BYE during the greeting, CANCEL before the answer,
vanishing without a BYE), so the mix runs at once at the node's call limit (`-l`)."""

from __future__ import annotations

import asyncio
import contextlib
import math
import shutil
import socket
import struct
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from media.g711 import ulaw_encode

SCENARIO = Path(__file__).resolve().parent.parent / "scenarios" / "churn.xml"
KINDS = ("normal", "greeting", "cancel", "vanish")


class CallerError(RuntimeError):
    """sipp is missing, or could not run the scenario."""


@dataclass(frozen=True)
class Mix:
    """The share of each kind of call, and how long the caller's side of each lasts."""

    normal: float = 0.5
    greeting: float = 0.2
    cancel: float = 0.2
    vanish: float = 0.1
    greet_ms: int = 250
    """Answer to BYE for a greeting call (the node's greeting is longer)."""
    normal_ms: int = 1000
    """A normal call lasts `greet_ms` + this (past the node's greeting)."""
    cancel_ms: int = 100
    """From the INVITE's 100 Trying to the CANCEL."""

    def shares(self) -> dict[str, float]:
        weights = {kind: max(0.0, float(getattr(self, kind))) for kind in KINDS}
        total = sum(weights.values())
        if total <= 0:
            raise ValueError("the mix has no calls in it")
        return {kind: w / total for kind, w in weights.items()}

    def thresholds(self) -> dict[str, str]:
        """The scenario's cumulative draw bounds: cancel, then vanish, then greeting."""
        s = self.shares()
        return {
            "P_CANCEL": f"{s['cancel']:.6f}",
            "P_VANISH": f"{s['cancel'] + s['vanish']:.6f}",
            "P_GREET": f"{s['cancel'] + s['vanish'] + s['greeting']:.6f}",
        }


def scenario_text(mix: Mix, *, number: str, late: str, wav: Path, wait_ms: int) -> str:
    """`churn.xml` with its placeholders filled. `late`: the number the node answers late
    (cancelled calls go there); `wait_ms`: how long a vanished caller waits for the node's
    BYE before sipp counts the call failed."""
    fill = {
        **mix.thresholds(),
        "NUMBER": number,
        "LATE": late,
        "WAV": str(wav),
        "WAIT_MS": str(wait_ms),
        "GREET_MS": str(mix.greet_ms),
        "NORMAL_MS": str(mix.normal_ms),
        "CANCEL_MS": str(mix.cancel_ms),
    }
    text = SCENARIO.read_text()
    for key, value in fill.items():
        text = text.replace(f"@{key}@", value)
    return text


def write_wav(path: Path, seconds: float = 0.4, hz: float = 440.0) -> Path:
    """A tone as an 8 kHz G.711 mu-law WAV (what sipp's rtp_stream plays)."""
    t = np.arange(int(8000 * seconds)) / 8000
    pcm = (6000 * np.sin(2 * math.pi * hz * t)).astype(np.int16)
    codes = bytes(ulaw_encode(pcm))
    fmt = struct.pack("<HHIIHH", 7, 1, 8000, 8000, 1, 8)  # WAVE_FORMAT_MULAW
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(codes)) + codes
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class CallerResult:
    """What sipp saw: its exit status, calls that succeeded and failed, calls by kind.
    `late_responses` (in `as_dict`): messages that came after sipp had finished their call
    (the node answering a request sipp had retransmitted: it took over 500 ms to answer)."""

    returncode: int
    successful: int
    failed: int
    kinds: dict[str, int] = field(default_factory=dict)
    errors: str = ""

    def as_dict(self) -> dict[str, object]:
        return {
            "returncode": self.returncode,
            "successful": self.successful,
            "failed": self.failed,
            "kinds": self.kinds,
            "late_responses": self.errors.count("Dead call "),
            "errors_tail": self.errors[-1500:],
        }


@dataclass(frozen=True)
class Caller:
    """One sipp run: `calls` calls, at most `concurrency` at once, to 127.0.0.1:`port`."""

    port: int
    workdir: Path
    calls: int
    concurrency: int
    local_port: int = 0
    media_port: int = 0
    timeout_s: float = 3600

    def command(self, scenario: Path) -> list[str]:
        exe = shutil.which("sipp")
        if exe is None:
            raise CallerError("sipp is not installed (Debian package sip-tester)")
        w = self.workdir
        media = self.media_port or free_udp_port()
        rate = max(10, 4 * self.concurrency)  # calls/s: -l, not the rate, is the limit
        return [
            exe, "-sf", str(scenario), f"127.0.0.1:{self.port}", "-m", str(self.calls),
            "-l", str(self.concurrency), "-r", str(rate), "-i", "127.0.0.1", "-mi", "127.0.0.1",
            "-p", str(self.local_port or free_udp_port()), "-t", "u1", "-mp", str(media),
            "-timeout", f"{int(self.timeout_s)}s", "-timeout_error", "-nostdin",
            "-trace_err", "-error_file", str(w / "sipp-errors.log"),
            "-trace_logs", "-log_file", str(w / "sipp-kinds.log"),
            "-trace_stat", "-stf", str(w / "sipp-stats.csv"), "-fd", "5",
        ]  # fmt: skip

    async def run(self, scenario_xml: str) -> CallerResult:
        """Run sipp to the end (all calls placed and finished, or its timeout)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        for name in ("sipp-errors.log", "sipp-kinds.log", "sipp-stats.csv"):  # sipp appends
            (self.workdir / name).unlink(missing_ok=True)
        path = self.workdir / "churn-run.xml"
        path.write_text(scenario_xml)
        proc = await asyncio.create_subprocess_exec(
            *self.command(path), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        try:
            _, stderr = await proc.communicate()
        except BaseException:  # cancelled: no orphan sipp
            if proc.returncode is None:
                proc.kill()
            await asyncio.shield(proc.wait())
            raise
        return self.result(proc.returncode or 0, stderr.decode(errors="replace"))

    def result(self, returncode: int, stderr: str) -> CallerResult:
        successful, failed = read_stats(self.workdir / "sipp-stats.csv")
        kinds = read_kinds(self.workdir / "sipp-kinds.log")
        errors = _read(self.workdir / "sipp-errors.log") + stderr
        return CallerResult(returncode, successful, failed, kinds, errors)


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def read_stats(path: Path) -> tuple[int, int]:
    """(successful, failed) calls from the last row of sipp's `-trace_stat` CSV."""
    rows = [line.split(";") for line in _read(path).splitlines() if line.strip()]
    if len(rows) < 2:
        return 0, 0
    head, last = rows[0], rows[-1]

    def column(name: str) -> int:
        with contextlib.suppress(ValueError, IndexError):
            return int(last[head.index(name)])
        return 0

    return column("SuccessfulCall(C)"), column("FailedCall(C)")


def read_kinds(path: Path) -> dict[str, int]:
    """Calls by kind, from the scenario's `kind=...` log lines (cancel: those that drew 100)."""
    counts = dict.fromkeys(KINDS, 0)
    for line in _read(path).splitlines():
        _, sep, kind = line.rpartition("kind=")
        kind = kind.strip()
        if sep and kind in counts:
            counts[kind] += 1
    return counts
