"""SIP churn bench: one node process carries many short SIP calls, mixed as production sees
them, and must release every one of them without crashing or growing.

    python -m bench.sip_churn [--calls N] [--concurrency C] [--rtp-timeout S]
                              [--mix normal=5,greeting=2,cancel=2,vanish=1] [--out DIR]
    voicenode-bench churn ... (the same)

The node is `bench.sip_media_node --agent greet`: the node's SIP `UserAgent` in its own process,
with an agent that plays a greeting (1 s) on every answered call and then listens. One sipp
(`bench/scenarios/churn.xml`, `bench.churn.caller`) places N calls, C at once, at the node's
call limit: the node's pjsua2 is held to C calls (`--max-calls`; C is `--concurrency`, default
32 so the bench fits a small machine, or the build's `sip.endpoint.call_capacity()` if lower: 4 with
the PyPI wheel, 512 with the server build). pjsua hands out call slots round-robin, so at the
limit a call's slot goes to the next INVITE as soon as it is free. Each call draws
its kind from the mix: a normal short call (the caller talks, hangs up after the greeting),
BYE during the greeting, CANCEL before the answer (the node answers that number late), and a
caller that vanishes without a BYE (stops its RTP; the node must hang up on
`sip.rtp_timeout_s`, set to `--rtp-timeout`; with a node that has no such setting those calls
are left out and the report says so).

While sipp runs, the node is sampled every `--sample-s` (`stats` on its stdin): RSS, bridge
ports (`UserAgent.media_ports()`), pjsua2's calls (`UserAgent.call_count()`) and the node's
running agents, against calls completed. After sipp, the bench waits for the node to be idle
again (no call, no agent, ports back to where they started) and stops it.

The report (DIR/report.json, DIR/churn.png; sipp's and the node's logs stay in a temporary
directory the report names): calls by kind and outcome, the node's exit code and
any pjsua2 lifetime rule break (`sip.lifetime`), whether it went idle, and RSS growth after
warm-up (`--warmup-calls`, default a tenth of the calls) against the issue's 20 MB (reported,
not asserted); `clean` also needs every sipp call to have gone as scripted. Exit status: 0
when every call was released, the node exited cleanly and broke no pjsua2 lifetime rule, 1
when not, 2 on bad arguments or a node that cannot start.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, TextIO

from bench.churn.caller import KINDS, Caller, CallerError, Mix, scenario_text, write_wav
from bench.churn.report import Sample, rss_growth, sample_of, samples_json, write_plot
from bench.report import machine_info
from bench.sip_media import BenchError, NodeProcess

NUMBER, LATE_NUMBER = "1000", "2000"
GREETING_S = 1.0
LATE_ANSWER_S = 5.0
DEFAULT_MAX_CONCURRENCY = 32


class ChurnNode(NodeProcess):
    """The bench node, answering `stats` requests."""

    def __init__(self, proc: asyncio.subprocess.Process, log: TextIO) -> None:
        super().__init__(proc, log)
        self._stats: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def _read_rest(self) -> None:
        while (line := await self._line()) is not None:
            if isinstance(line.get("stats"), dict):
                self._stats.put_nowait(line["stats"])
            else:
                self.messages.append(line)

    async def stats(self, timeout_s: float = 30) -> dict[str, Any]:
        """The node's counts now; BenchError if it has exited (or does not answer)."""
        stdin = self.proc.stdin
        if self.proc.returncode is not None or stdin is None or stdin.is_closing():
            raise BenchError(f"the node is gone (exit code {self.proc.returncode})")
        try:
            stdin.write(b"stats\n")
            await stdin.drain()
            async with asyncio.timeout(timeout_s):
                return await self._stats.get()
        except (ConnectionError, TimeoutError) as exc:
            raise BenchError(f"the node did not answer (exit code {self.proc.returncode})") from exc


def idle(stats: dict[str, Any], base_ports: int) -> bool:
    """No call left anywhere: the node's agents and routing, pjsua2's calls, the bridge."""
    return bool(
        stats["live"] == 0
        and stats["routing"] == 0
        and stats["pjsua_calls"] == 0
        and stats["ports"] == base_ports
    )


async def _sample_while(
    node: ChurnNode, running: asyncio.Task[Any], samples: list[Sample], every_s: float
) -> None:
    started = time.monotonic()
    while not running.done():
        samples.append(sample_of(time.monotonic() - started, await node.stats()))
        await asyncio.wait([running], timeout=every_s)


async def _wait_idle(
    node: ChurnNode, base_ports: int, timeout_s: float, samples: list[Sample], t0: float
) -> dict[str, Any]:
    """Poll until the node is idle (or `timeout_s`); its last counts."""
    deadline = time.monotonic() + timeout_s
    while True:
        stats = await node.stats()
        samples.append(sample_of(time.monotonic() - t0, stats))
        if idle(stats, base_ports) or time.monotonic() > deadline:
            return stats
        await asyncio.sleep(0.5)  # a bench poll, not a test's synchronisation


async def churn(
    *,
    calls: int,
    workdir: Path,
    concurrency: int | None = None,
    rtp_timeout_s: float = 3.0,
    mix: Mix | None = None,
    sample_s: float = 1.0,
    warmup_calls: int | None = None,
) -> tuple[dict[str, Any], list[Sample]]:
    """Run the bench once: the report and the samples."""
    await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
    mix = mix or Mix()
    args = ["--agent", "greet", "--greeting-s", str(GREETING_S), "--late-number", LATE_NUMBER]
    args += ["--late-answer-s", str(LATE_ANSWER_S), "--rtp-timeout", str(rtp_timeout_s)]
    args += ["--max-calls", str(concurrency or DEFAULT_MAX_CONCURRENCY)]  # at the node's limit
    with (workdir / "node.log").open("w+") as log:
        node = await ChurnNode.start(args, log)
        assert isinstance(node, ChurnNode)
        samples: list[Sample] = []
        try:
            report = await _run(node, calls, workdir, concurrency, mix, sample_s, samples)
        finally:
            exit_code = await node.stop()
    final = node.messages[-1] if node.messages else {}
    report["node"].update(
        exit_code=exit_code,
        crashed=exit_code != 0,
        lifetime_violations=final.get("lifetime_violations"),
    )
    warm = warmup_calls if warmup_calls is not None else max(20, calls // 10)
    report["rss"] = rss_growth(samples, warm)
    report["released_all"] = bool(report["idle"]["reached"] and exit_code == 0)
    report["clean"] = bool(
        report["released_all"]
        and not report["node"]["lifetime_violations"]
        and isinstance(report["sipp"], dict)
        and report["sipp"]["failed"] == 0
    )
    return report, samples


async def _run(
    node: ChurnNode,
    calls: int,
    workdir: Path,
    concurrency: int | None,
    mix: Mix,
    sample_s: float,
    samples: list[Sample],
) -> dict[str, Any]:
    capacity = int(node.hello.get("capacity") or 4)
    rtp_timeout = node.hello.get("rtp_timeout_s")
    if rtp_timeout is None:  # the node cannot hang up on silence: no vanishing callers
        mix = dataclasses.replace(mix, vanish=0.0)
    at_once = capacity  # the node's limit: --concurrency, or the build's if lower
    base = await node.stats()
    wait_ms = int(1000 * (float(rtp_timeout or 0) + 30))
    xml = scenario_text(
        mix, number=NUMBER, late=LATE_NUMBER, wav=write_wav(workdir / "caller.wav"), wait_ms=wait_ms
    )
    caller = Caller(node.hello["sip_port"], workdir, calls=calls, concurrency=at_once)
    t0, load = time.monotonic(), os.getloadavg()
    sipp = asyncio.create_task(caller.run(xml))
    try:
        await _sample_while(node, sipp, samples, sample_s)
    except BenchError:
        sipp.cancel()
    result = await asyncio.gather(sipp, return_exceptions=True)
    placed_s = time.monotonic() - t0
    final: dict[str, Any] = {}
    with contextlib.suppress(BenchError):
        final = await _wait_idle(
            node, base["ports"], LATE_ANSWER_S + float(rtp_timeout or 0) + 60, samples, t0
        )
    sipp_result = result[0]
    return {
        "calls_requested": calls,
        "loadavg_at_start": load,
        "capacity": capacity,
        "concurrency": at_once,
        "rtp_timeout_s": rtp_timeout,
        "vanish_enabled": rtp_timeout is not None,
        "mix": {k: round(v, 3) for k, v in mix.shares().items()},
        "sipp": sipp_result.as_dict() if hasattr(sipp_result, "as_dict") else repr(sipp_result),
        "wall_s": round(placed_s, 1),
        "calls_per_s": round(calls / placed_s, 2) if placed_s > 0 else None,
        "node": {k: final.get(k) for k in ("calls", "answered", "abandoned", "ended")},
        "idle": {
            "reached": bool(final) and idle(final, base["ports"]),
            "base_ports": base["ports"],
            **{k: final.get(k) for k in ("live", "routing", "pjsua_calls", "ports")},
        },
        "lifetimes_tracked_at_end": final.get("lifetimes_tracked"),
        "machine": machine_info(),
        "loadavg_at_end": os.getloadavg(),
    }


def write(report: dict[str, Any], samples: list[Sample], out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / "report.json"
    json_path.write_text(json.dumps({**report, "samples": samples_json(samples)}, indent=1))
    return json_path, write_plot(report, samples, out / "churn.png")


def parse_mix(text: str) -> Mix:
    """`normal=5,greeting=2,cancel=2,vanish=1` (kinds left out keep their default share)."""
    shares: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        kind, sep, value = part.partition("=")
        if not sep or kind not in KINDS:
            raise argparse.ArgumentTypeError(f"expected KIND=WEIGHT with KIND in {KINDS}")
        try:
            shares[kind] = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{kind}: not a number: {value!r}") from None
    d = Mix()
    return dataclasses.replace(
        d,
        normal=shares.get("normal", d.normal),
        greeting=shares.get("greeting", d.greeting),
        cancel=shares.get("cancel", d.cancel),
        vanish=shares.get("vanish", d.vanish),
    )


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--calls", type=int, default=10_000, help="calls to place (default 10000)")
    p.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help=f"calls at once, the node's call limit (default {DEFAULT_MAX_CONCURRENCY}, or "
        "what pjsua2 was built for if lower)",
    )
    p.add_argument("--rtp-timeout", type=float, default=3.0, help="sip.rtp_timeout_s (default 3)")
    p.add_argument(
        "--mix",
        type=parse_mix,
        default=Mix(),
        help="KIND=WEIGHT,... (kinds: normal, greeting, cancel, vanish; "
        "default normal=.5,greeting=.2,cancel=.2,vanish=.1)",
    )
    p.add_argument("--no-vanish", action="store_true", help="no vanishing callers")
    p.add_argument("--sample-s", type=float, default=1.0, help="sampling period (default 1 s)")
    p.add_argument("--warmup-calls", type=int, default=None, help="default: a tenth of --calls")
    p.add_argument("--out", type=Path, default=Path("bench/reports/churn"), metavar="DIR")


def run_cli(args: argparse.Namespace) -> int:
    if args.calls < 1 or (args.concurrency is not None and args.concurrency < 1):
        print("sip_churn: --calls and --concurrency must be at least 1", file=sys.stderr)
        return 2
    mix = dataclasses.replace(args.mix, vanish=0.0) if args.no_vanish else args.mix
    os.environ.setdefault("PYTHONFAULTHANDLER", "1")  # the node prints every thread on a crash
    workdir = Path(tempfile.mkdtemp(prefix="voicenode-churn-"))  # sipp's logs, the node's
    try:
        report, samples = asyncio.run(
            churn(
                calls=args.calls, workdir=workdir, concurrency=args.concurrency,
                rtp_timeout_s=args.rtp_timeout, mix=mix, sample_s=args.sample_s,
                warmup_calls=args.warmup_calls,
            )
        )  # fmt: skip
    except (BenchError, CallerError) as exc:
        print(f"sip_churn: {exc}", file=sys.stderr)
        return 2
    report["logs"] = str(workdir)
    json_path, png = write(report, samples, args.out)
    summary = {k: report[k] for k in ("clean", "released_all", "node", "idle", "rss", "sipp")}
    print(json.dumps(summary, indent=1))
    print(f"wrote {json_path} and {png}")
    return 0 if report["released_all"] and not report["node"]["lifetime_violations"] else 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.sip_churn", description=__doc__)
    add_arguments(p)
    return run_cli(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
