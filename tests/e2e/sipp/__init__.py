"""sipp scenarios (the XML files here) and running them from async tests.

- :func:`run_sipp` runs one scenario (a caller, usually) to completion and returns a
  :class:`SippResult`: exit status, the SIP messages it sent and received, its errors and
  counters;
- :func:`sipp_server` keeps a scenario (a UAS standing in for a voice node) running on a free
  port for the body of an ``async with``.

Scenarios: ``uac_pcmu_call.xml`` (INVITE with a PCMU offer, plays ``pcmu_8k.wav`` from the
working directory with rtp_stream, BYE), ``uac_refused.xml`` (expects 404/480/503),
``uas_answer.xml`` (answers with SDP on -mp; add -rtp_echo), ``uas_options_503.xml`` (a
draining node as OPTIONS probes see it); for in-dialog checks ``uac_forged_in_dialog.xml`` (a
template: ``@METHOD@``), ``uac_call_then_forged.xml``, ``uas_options_ok.xml`` (a bystander),
``uas_answer_hangup.xml`` and ``uac_wait_bye.xml`` (the node hangs up); for outbound
campaigns ``uas_far_end.xml`` (a trunk's far end that answers each INVITE by its called
number's prefix: a person, an answering machine, busy, no answer; run by ``far_end.py``) and
``uac_far_end.xml`` (its caller in ``test_far_end.py``: ``@HOLD_MS@``, ``@CANCEL_MS@``).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.support.ports import free_port

from ..sipstack import HOST, STOP_TIMEOUT_S, require, udp_port_in_use, wait_for

SCENARIOS = Path(__file__).resolve().parent


_MESSAGE_SPLIT = re.compile(r"^-{10,}.*$", re.MULTILINE)


@dataclass(frozen=True)
class SippResult:
    """What a sipp run did: its exit status (0: every call succeeded), the -trace_msg log
    (every SIP message sent and received), the -trace_err log and the -trace_stat counters."""

    returncode: int
    messages: str
    errors: str
    stats: Mapping[str, str]

    def received(self) -> list[str]:
        """The messages sipp received, in order (each the full text)."""
        found = []
        for chunk in _MESSAGE_SPLIT.split(self.messages):
            head, _, body = chunk.partition("\n\n")
            if "message received" in head:
                found.append(body.strip())
        return found

    def statuses(self) -> list[int]:
        """Status codes of the responses sipp received, in order."""
        return [int(m[8:11]) for m in self.received() if m.startswith("SIP/2.0 ")]

    def counter(self, name: str) -> int:
        """A cumulative -trace_stat counter, e.g. ``counter("SuccessfulCall")``."""
        return int(self.stats.get(f"{name}(C)", "0"))

    def explain(self) -> str:
        return (
            f"sipp exit {self.returncode}\n--- errors ---\n{self.errors}\n"
            f"--- messages ---\n{self.messages[-6000:]}"
        )


def _read_stats(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    rows = [line.split(";") for line in path.read_text().splitlines() if line.strip()]
    if len(rows) < 2:
        return {}
    return dict(zip(rows[0], rows[-1], strict=False))


def sipp_argv(
    scenario: str,
    target: str,
    workdir: Path,
    *,
    local_port: int,
    service: str,
    calls: int,
    timeout_s: float,
    extra: Sequence[str],
) -> list[str]:
    name = Path(scenario).stem
    argv = [require("sipp"), target, "-sf", str(SCENARIOS / scenario)]
    argv += ["-i", HOST, "-mi", HOST, "-bind_local", "-p", str(local_port), "-s", service]
    argv += ["-m", str(calls), "-nostdin", "-timeout", f"{timeout_s:.0f}s", "-timeout_error"]
    argv += ["-trace_msg", "-message_file", str(workdir / f"{name}.messages.log")]
    argv += ["-trace_err", "-error_file", str(workdir / f"{name}.errors.log")]
    argv += ["-trace_stat", "-stf", str(workdir / f"{name}.stats.csv")]
    return argv + list(extra)


def _result(scenario: str, workdir: Path, returncode: int) -> SippResult:
    name = Path(scenario).stem

    def text(suffix: str) -> str:
        path = workdir / f"{name}.{suffix}"
        return path.read_text(errors="replace") if path.exists() else ""

    stats = _read_stats(workdir / f"{name}.stats.csv")
    return SippResult(returncode, text("messages.log"), text("errors.log"), stats)


async def run_sipp(
    scenario: str,
    target: str,
    workdir: Path,
    *,
    service: str = "1000",
    calls: int = 1,
    timeout_s: float = 15,
    local_port: int | None = None,
    extra: Sequence[str] = (),
) -> SippResult:
    """Run ``tests/e2e/sipp/<scenario>`` against ``target`` (host:port) until ``calls`` calls
    are done or ``timeout_s`` passes (then it fails), in ``workdir`` (its logs, and the audio
    files a scenario plays, e.g. pcmu_8k.wav)."""
    await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
    argv = sipp_argv(
        scenario,
        target,
        workdir,
        local_port=local_port or free_port(),
        service=service,
        calls=calls,
        timeout_s=timeout_s,
        extra=extra,
    )
    proc = await asyncio.create_subprocess_exec(
        *argv,
        cwd=workdir,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        returncode = await asyncio.wait_for(proc.wait(), timeout_s + STOP_TIMEOUT_S)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return _result(scenario, workdir, returncode)


@dataclass
class SippServer:
    """A sipp UAS running in the background on ``port`` (see :func:`sipp_server`)."""

    port: int
    process: asyncio.subprocess.Process
    result: SippResult | None = None

    @property
    def uri(self) -> str:
        return f"sip:{HOST}:{self.port}"

    @property
    def running(self) -> bool:
        """Still serving (it stops by itself once its ``calls`` are done)."""
        return self.process.returncode is None


@contextlib.asynccontextmanager
async def sipp_server(
    scenario: str,
    workdir: Path,
    *,
    calls: int = 1,
    timeout_s: float = 15,
    extra: Sequence[str] = (),
) -> AsyncIterator[SippServer]:
    """Start a sipp UAS scenario on a free port; ready once the port is bound. On exit, waits
    (at most ``timeout_s``) for it to finish its ``calls`` and fills ``server.result``."""
    await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
    port = free_port()
    argv = sipp_argv(
        scenario,
        HOST,
        workdir,
        local_port=port,
        service="node",
        calls=calls,
        timeout_s=timeout_s,
        extra=extra,
    )
    proc = await asyncio.create_subprocess_exec(
        *argv,
        cwd=workdir,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        start_new_session=True,
    )
    server = SippServer(port, proc)
    try:
        await wait_for(lambda: proc.returncode is not None or udp_port_in_use(port), "sipp to bind")
        if proc.returncode is not None:
            raise RuntimeError(_result(scenario, workdir, proc.returncode).explain())
        yield server
        returncode = await asyncio.wait_for(proc.wait(), timeout_s + STOP_TIMEOUT_S)
        server.result = _result(scenario, workdir, returncode)
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), STOP_TIMEOUT_S)
            except TimeoutError:
                proc.kill()
                await proc.wait()
