"""The SIP edge under a long seeded fuzz, measured: a node with live calls takes a million
mutated datagrams (and TCP streams) and must keep running, keep its calls' audio flowing and
keep its memory flat.

    python -m bench.sip_fuzz_run [--count 1000000] [--seed 1] [--tcp 2000] [--calls 4]
                                 [--seeds-dir DIR] [--refuse-fuzzed] [--out DIR]

The node is `bench.sip_media_node --agent echo` (the node's SIP `UserAgent` in its own process).
It answers every number, so a fuzzed INVITE valid enough becomes an answered call with media;
with `--refuse-fuzzed` it answers only the live calls' number and refuses the fuzz's 404, as a
node whose dial plan does not know the number (or one behind Kamailio) does: then the live
calls' gaps measure the SIP edge alone.
`--calls` live calls from `bench.sip_media_peer` stream PCMU into it and record every RTP packet
it sends back with the kernel's receive time. The fuzzer (`bench.sip_fuzz`, a subprocess, as
fast as its socket takes them) then sends `--count` datagrams and `--tcp` TCP streams at the
node's SIP port; seeds are the built-in requests plus the raw messages in `--seeds-dir` (RFC
4475's torture messages: `python -m tests.sip.torture DIR` writes them). The node's RSS is
sampled every second. Afterwards an OPTIONS must still be answered 200, the node must get back
to holding only the live calls (the fuzz's answered INVITEs are never ACKed: pjsip ends them
after 32 s), and the live calls hang up normally.

The fuzz runs in `--parts` parts (each with its own seed, `seed * 1000 + part`; with
`--cycle N` the seeds repeat every N parts), and the
node's RSS is noted after each: growth from the first part's end to the last's is the memory
the fuzz kept. The report (DIR/report.json, DIR/rss.png): datagrams and streams sent, the
node's exit code and whether it stayed up, the live calls' outbound packet gaps and losses
during the fuzz, and RSS before, after each part, at the peak and once settled. Exit status 0
when the node survived, kept its calls, answered OPTIONS and settled; 1 when not; 2 when it
could not start.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.report import machine_info, summarize
from bench.sip_churn import ChurnNode
from bench.sip_fuzz import seed_message
from bench.sip_media import BenchError, gaps_ms, lost_packets, node_rss_mb
from bench.sip_media_peer import PeerCall, SipPeer, send_rtp, tone_payload

LIVE_NUMBER = "7000"
"""The live calls' number. The fuzz's INVITEs go to 1000 (`bench.sip_fuzz.seed_message`) and
the torture messages' users: with `--refuse-fuzzed` the node answers only this one."""


async def sample_rss(pid: int, into: list[tuple[float, float]], start: float) -> None:
    while True:
        try:
            into.append((round(time.monotonic() - start, 2), node_rss_mb(pid)))
        except (OSError, BenchError):
            return  # the node is gone: the report says so
        await asyncio.sleep(1.0)


def options_answered(port: int, timeout_s: float = 10.0) -> str:
    """The status line the node answers an OPTIONS with ('' when none came)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(0.5)
        via = f"127.0.0.1:{sock.getsockname()[1]}"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            sock.sendto(
                seed_message("OPTIONS", f"probe{time.monotonic_ns()}", via), ("127.0.0.1", port)
            )
            try:
                data = sock.recv(65_535)
            except TimeoutError:
                continue
            line = data.split(b"\r\n", 1)[0].decode(errors="replace")
            if line.startswith("SIP/2.0 ") and not line.startswith("SIP/2.0 1"):
                return line
    return ""


async def settle(node: ChurnNode, live: int, timeout_s: float = 120) -> dict[str, Any]:
    """Wait until the node holds only the live calls again (the fuzz's answered INVITEs, never
    ACKed, time out in pjsip after 32 s); its counts then, and how long it took."""
    t0 = time.monotonic()
    while True:
        stats = await node.stats()
        if stats["pjsua_calls"] == live == stats["live"] or time.monotonic() - t0 > timeout_s:
            return {**stats, "settle_s": round(time.monotonic() - t0, 1)}
        await asyncio.sleep(1.0)


async def run_fuzzer(port: int, args: argparse.Namespace, part: int) -> dict[str, Any]:
    """Part `part` of `--parts`: its share of the datagrams and streams, its own seed."""
    count, tcp = args.count // args.parts, args.tcp // args.parts
    seed = args.seed * 1000 + part % (args.cycle or args.parts)
    cmd = [
        sys.executable, "-m", "bench.sip_fuzz", "--target", f"127.0.0.1:{port}",
        "--count", str(count), "--seed", str(seed), "--tcp", str(tcp),
    ]  # fmt: skip
    if args.seeds_dir:
        cmd += ["--seeds-dir", str(args.seeds_dir)]
    proc = await asyncio.create_subprocess_exec(*cmd, stdout=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise BenchError(f"the fuzzer exited {proc.returncode}")
    return dict(json.loads(out.decode().strip().splitlines()[-1]))


async def fuzz_in_parts(
    pid: int, port: int, args: argparse.Namespace
) -> tuple[dict[str, int], list[dict[str, float]]]:
    """Every part of the fuzz; what was sent, and the node's RSS after each part."""
    sent: dict[str, int] = {"datagrams": 0, "tcp_streams": 0}
    by_part: list[dict[str, float]] = []
    for part in range(args.parts):
        done = await run_fuzzer(port, args, part)
        for key in sent:
            sent[key] += int(done[key])
        if not os.path.exists(f"/proc/{pid}"):  # noqa: ASYNC240 (a /proc entry, instant)
            break  # the node is gone: the report says so, with its log's tail
        by_part.append({"datagrams": sent["datagrams"], "rss_mb": node_rss_mb(pid)})
    return sent, by_part


def live_calls(placed: list[PeerCall], hung_up: list[object]) -> dict[str, Any]:
    """The live calls' part of the report: kept, packets, losses and gaps during the fuzz."""
    gaps = [g for call in placed for g in gaps_ms(call.rtp.received.times)]
    return {
        "calls": len(placed),
        "hung_up_normally": sum(1 for h in hung_up if not isinstance(h, BaseException)),
        "packets_received": sum(len(c.rtp.received.times) for c in placed),
        "lost": sum(lost_packets(c.rtp.received.seqs) for c in placed),
        "gap_ms": summarize(gaps),
    }


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryFile("w+") as log:
        refusing = ["--answer-only", LIVE_NUMBER] if args.refuse_fuzzed else []
        node = await ChurnNode.start(["--agent", "echo", *refusing], log)
        port = int(node.hello["sip_port"])
        samples: list[tuple[float, float]] = []
        start = time.monotonic()
        sampler = asyncio.get_running_loop().create_task(sample_rss(node.pid, samples, start))
        peer = await SipPeer.open(("127.0.0.1", port))
        stop = asyncio.Event()
        placed: list[PeerCall] = []
        sender: asyncio.Task[None] | None = None
        try:
            calling = (peer.call(LIVE_NUMBER) for _ in range(args.calls))
            placed = list(await asyncio.gather(*calling))
            sender = asyncio.get_running_loop().create_task(send_rtp(placed, stop, tone_payload()))
            run = await _fuzz_during_calls(node, port, placed, args, start)
        finally:
            stop.set()
            if sender is not None:
                await sender
            hung_up = await asyncio.gather(
                *(peer.hang_up(c) for c in placed), return_exceptions=True
            )
            peer.close()
            sampler.cancel()
            exit_code = await node.stop()
            log.seek(0)
            node_log = log.read()
    alive = run["alive"]
    return {
        "fuzz": run["fuzz"],
        "node": {
            "alive_after_fuzz": alive,
            "exit_code": exit_code,
            "options_after": run["options"],
            "log_tail": node_log[-1500:] if exit_code != 0 or not alive else "",
        },  # fmt: skip
        "live_calls": live_calls(placed, list(hung_up)),
        "after_fuzz": run["after_fuzz"],
        "rss_mb": {**run["rss_mb"], "peak": max((mb for _, mb in samples), default=None)},
        "rss_samples": samples,
        "machine": machine_info(),
    }


async def _fuzz_during_calls(
    node: ChurnNode, port: int, placed: list[PeerCall], args: argparse.Namespace, start: float
) -> dict[str, Any]:
    """With the live calls' audio flowing: the fuzz (their packets recorded meanwhile), then
    whether the node is up, answers OPTIONS and settles back to the live calls."""
    await asyncio.sleep(2.0)  # the calls' audio is flowing: measure from here
    for call in placed:
        call.rtp.recording = True
    before = node_rss_mb(node.pid)
    fuzz_t0 = round(time.monotonic() - start, 2)
    sent, by_part = await fuzz_in_parts(node.pid, port, args)
    fuzz_t1 = round(time.monotonic() - start, 2)
    for call in placed:
        call.rtp.recording = False
    alive = node.proc.returncode is None
    after = node_rss_mb(node.pid) if alive else None
    return {
        "fuzz": {
            **sent,
            "seed": args.seed,
            "cycle": args.cycle,
            "refuse_fuzzed": args.refuse_fuzzed,
            "parts": by_part,
            "window_s": [fuzz_t0, fuzz_t1],
        },  # fmt: skip
        "alive": alive,
        "options": await asyncio.to_thread(options_answered, port) if alive else "",
        "after_fuzz": await settle(node, len(placed)) if alive else {},
        "rss_mb": {
            "before_fuzz": round(before, 2),
            "settled": None if after is None else round(after, 2),
        },
    }


def write_plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [s[0] for s in report["rss_samples"]]
    fig, ax = plt.subplots(figsize=(9, 4))
    ax.plot(t, [s[1] for s in report["rss_samples"]], lw=1.2)
    t0, t1 = report["fuzz"]["window_s"]
    ax.axvspan(t0, t1, color="tab:red", alpha=0.12, label="fuzz")
    ax.set_xlabel("seconds")
    ax.set_ylabel("node RSS (MB)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    f = report["fuzz"]
    ax.set_title(f"SIP fuzz: {f['datagrams']:,} datagrams, {f['tcp_streams']} TCP streams, "
                 f"seed {f['seed']}, node exit {report['node']['exit_code']}")  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.sip_fuzz_run", description=__doc__.split("\n")[0]
    )
    p.add_argument("--count", type=int, default=1_000_000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--tcp", type=int, default=2000)
    p.add_argument("--calls", type=int, default=4)
    p.add_argument("--parts", type=int, default=10, help="fuzzer runs, RSS noted after each")
    p.add_argument(
        "--cycle", type=int, default=0,
        help="part seeds repeat every N parts (memory that grows again on the same datagrams is "
        "a leak; memory that stops growing is pools kept); default: every part its own seed",
    )  # fmt: skip
    p.add_argument("--seeds-dir", type=Path)
    p.add_argument(
        "--refuse-fuzzed",
        action="store_true",
        help=f"the node answers only {LIVE_NUMBER} (the live calls); fuzzed INVITEs get 404",
    )
    p.add_argument("--out", type=Path, default=Path("var/sip-fuzz"))
    args = p.parse_args(argv)
    try:
        report = asyncio.run(measure(args))
    except BenchError as exc:
        print(f"sip_fuzz_run: {exc}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    write_plot(report, args.out / "rss.png")
    print(json.dumps({k: v for k, v in report.items() if k != "rss_samples"}, indent=2))
    node, live = report["node"], report["live_calls"]
    ok = (
        node["alive_after_fuzz"] and node["exit_code"] == 0
        and node["options_after"].startswith("SIP/2.0 200")
        and live["hung_up_normally"] == live["calls"]
        and report["after_fuzz"].get("pjsua_calls") == live["calls"]
        and report["after_fuzz"].get("lifetime_violations") == 0
    )  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
