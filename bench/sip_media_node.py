"""The node side of the SIP media bench, run in its own process (pjsua2 allows one Endpoint
per process): the node's SIP `UserAgent` answering every INVITE with a trivial agent, no
models, so what it costs is the media path (pjsua2 + bridge port + asyncio handover).

    python -m bench.sip_media_node --agent echo|tone|listen|greet [--codec PCMU] [--quality 1-10]
                                   [--greeting-s S] [--late-number N --late-answer-s S]
                                   [--rtp-timeout S] [--max-calls N]

Agents: `echo` writes each inbound frame back out; `tone` reads the caller and writes a tone
paced 20 ms on the loop clock, three frames ahead (as the pipeline's playout does); `listen`
only reads (the outbound side then sends silence); `greet` plays a greeting (a tone of
`--greeting-s`, paced the same way) and then only reads, until the call ends (the churn bench:
a caller can hang up during the greeting). INVITEs to `--late-number` are answered only after
`--late-answer-s` (a caller CANCELs before the answer); `--rtp-timeout` sets
`sip.rtp_timeout_s` (the node hangs up a caller that sent no RTP that long); `--max-calls`
holds pjsua2 to fewer calls than it was built for (a node at its call limit).

Protocol with the bench (stdout, one JSON object a line): first
`{"sip_port", "threads": {"main": TID, "sip": TID}, "capacity", "rtp_timeout_s"}` once
listening (`rtp_timeout_s` null when the node has no such setting). A line `stats` on stdin
gets `{"stats": {"calls", "answered", "abandoned", "ended", "live", "routing", "pjsua_calls",
"ports", "rss_kb", "lifetimes_tracked", "lifetime_violations"}}`. The bench ends the node by
closing stdin, and the node prints `{"calls", "frames_in", "frames_out", "dropped_in",
"handoff_posts", "handoff_wakeups", "frame_access", "lifetime_violations"}` before it exits.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import socket
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import msgspec
import numpy as np

import sip.endpoint as sip_endpoint
from config import load_settings
from config.schema import SipSettings
from media.call import CallInfo, Direction
from media.frames import FRAME_MS, SAMPLE_RATE, AudioFrame
from sip.calls import SipCall
from sip.lifetime import LIFETIMES
from sip.media_port import loop_handoff
from sip.ua import Accept, IncomingInvite, Reject, UserAgent
from sip.vector import fast_access

AGENTS = ("echo", "tone", "listen", "greet")
Emit = Callable[[dict[str, object]], None]
FRAME_SECONDS = FRAME_MS / 1000


@dataclass(frozen=True)
class NodeOptions:
    """The churn bench's extras (defaults: what the media bench has always run)."""

    greeting_s: float = 1.5
    late_number: str = ""
    """INVITEs to this number are answered after `late_answer_s` ("": none)."""
    late_answer_s: float = 5.0
    rtp_timeout_s: float | None = None
    """`sip.rtp_timeout_s` (None: the node's default)."""
    answer_only: str = ""
    """Only INVITEs to this number are answered; any other is refused 404, as a node's dial
    plan refuses an unknown number ("": every number is answered)."""
    max_calls: int | None = None
    """pjsua2's call limit (`UaConfig.maxCalls`) below the one it was built with (None: the
    built one). pjsua hands out call slots round-robin, so a node at this limit reuses a
    call's slot as soon as it is free, as a full production node does."""


def rss_kb() -> int:
    """This process's resident set (VmRSS), in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tone_frames(hz: float = 440.0, level: float = 4000.0) -> list[bytes]:
    """One second of a tone as 50 frames (a whole number of cycles: it loops seamlessly)."""
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    pcm = (level * np.sin(2 * math.pi * hz * t)).astype("<i2").tobytes()
    size = len(pcm) // 50
    return [pcm[i : i + size] for i in range(0, len(pcm), size)]


class BenchAgents:
    """Runs the chosen trivial agent on every answered call and counts frames."""

    def __init__(self, agent: str, options: NodeOptions | None = None) -> None:
        self.agent = agent
        self.options = options or NodeOptions()
        self.calls = 0
        self.answered = 0
        self.abandoned = 0
        self.ended = 0
        self.routing = 0
        self.refused = 0
        self.frames_in = 0
        self.frames_out = 0
        self.dropped_in = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._tone = _tone_frames()

    async def route(self, invite: IncomingInvite) -> Accept | Reject:
        if self.options.answer_only and invite.number != self.options.answer_only:
            self.refused += 1
            return Reject(404, "Not Found")
        self.calls += 1
        self.routing += 1
        try:
            if self.options.late_number and invite.number == self.options.late_number:
                await asyncio.sleep(self.options.late_answer_s)  # rings, then answers late
        finally:
            self.routing -= 1
        info = CallInfo(
            call_id=f"bench{self.calls}",
            tenant_id="bench",
            direction=Direction.INBOUND,
            to_uri=invite.request.uri,
            transport="sip",
        )
        return Accept(info=info, start=self._start, abandon=self._abandon)

    @property
    def live(self) -> int:
        """Answered calls whose agent is still running."""
        return len(self._tasks)

    def _abandon(self) -> None:
        self.abandoned += 1

    def _start(self, call: SipCall) -> None:
        self.answered += 1
        task = asyncio.get_running_loop().create_task(self._run(call))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, call: SipCall) -> None:
        audio = call.audio
        writer: asyncio.Task[None] | None = None
        if self.agent in ("tone", "greet"):
            frames = round(self.options.greeting_s / FRAME_SECONDS) if self.agent == "greet" else 0
            writer = asyncio.get_running_loop().create_task(self._speak(call, frames=frames))
        try:
            async for frame in audio.source.frames():
                self.frames_in += 1
                if self.agent == "echo":
                    await audio.sink.write(frame)
                    self.frames_out += 1
        finally:
            if writer is not None:
                writer.cancel()
                await asyncio.gather(writer, return_exceptions=True)
            self.dropped_in += audio.source.dropped
            await call.close()
            self.ended += 1

    async def _speak(self, call: SipCall, lead: int = 3, frames: int = 0) -> None:
        """The tone, paced; `frames` of it (0: until cancelled)."""
        loop = asyncio.get_running_loop()
        sink = call.audio.sink
        next_at = loop.time()
        seq = 0
        while not frames or seq < frames:
            ahead = next_at - loop.time()
            if ahead > lead * FRAME_SECONDS:
                await asyncio.sleep(ahead - lead * FRAME_SECONDS)
                continue
            await sink.write(AudioFrame(self._tone[seq % len(self._tone)], seq))
            self.frames_out += 1
            seq += 1
            next_at += FRAME_SECONDS

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks))


def _sip_settings(codec: str, quality: int | None, options: NodeOptions) -> SipSettings:
    settings = load_settings(env={})
    extra: dict[str, object] = {}
    if options.rtp_timeout_s is not None and "rtp_timeout_s" in SipSettings.__struct_fields__:
        extra["rtp_timeout_s"] = options.rtp_timeout_s
    return msgspec.structs.replace(
        settings.sip,
        host="127.0.0.1",
        port=0,
        transports=["udp", "tcp"],  # TCP for the fuzz bench's streams
        rtp_port=_free_udp_port(),
        rtp_port_range=2000,
        codecs=[codec],
        media_quality=quality or settings.sip.media_quality,
        **extra,
    )


async def stats(agents: BenchAgents, ua: UserAgent) -> dict[str, object]:
    """What the churn bench samples: the node's calls, pjsua2's, the bridge's ports, RSS."""
    return {
        "calls": agents.calls,
        "answered": agents.answered,
        "abandoned": agents.abandoned,
        "ended": agents.ended,
        "live": agents.live,
        "routing": agents.routing,
        "refused": agents.refused,
        "pjsua_calls": await ua.call_count(),
        "ports": await ua.media_ports(),
        "rss_kb": rss_kb(),
        "lifetimes_tracked": LIFETIMES.tracked(),
        "lifetime_violations": len(LIFETIMES.violations),
    }


async def _commands(agents: BenchAgents, ua: UserAgent, emit: Emit) -> None:
    """Answer `stats` lines on stdin until the bench closes it."""
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.buffer.readline)
        if not line:
            return
        if line.strip() == b"stats":
            emit({"stats": await stats(agents, ua)})


async def serve(
    agent: str,
    codec: str,
    quality: int | None,
    emit: Emit,
    options: NodeOptions | None = None,
) -> None:
    options = options or NodeOptions()
    if options.max_calls is not None:
        limit = min(options.max_calls, sip_endpoint.call_capacity())
        setattr(sip_endpoint, "call_capacity", lambda: limit)  # noqa: B010 (read at start)
    sip = _sip_settings(codec, quality, options)
    agents = BenchAgents(agent, options)
    handoff = loop_handoff(asyncio.get_running_loop())
    ua = UserAgent(sip, agents.route)
    await ua.start()
    try:
        threads = {t.name: t.native_id for t in threading.enumerate()}
        emit(
            {
                "sip_port": ua.port,
                "threads": {"main": threading.get_native_id(), "sip": threads.get("sip")},
                "capacity": sip_endpoint.call_capacity(),
                "rtp_timeout_s": getattr(sip, "rtp_timeout_s", None),
            }
        )
        await _commands(agents, ua, emit)  # until the bench closes stdin
    finally:
        await agents.close()
        await ua.stop()
    emit(
        {
            "calls": agents.calls,
            "frames_in": agents.frames_in,
            "frames_out": agents.frames_out,
            "dropped_in": agents.dropped_in,
            "handoff_posts": handoff.posts,
            "handoff_wakeups": handoff.wakeups,
            "frame_access": "ctypes" if fast_access() else "swig",
            "lifetime_violations": list(LIFETIMES.violations),
        }
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.sip_media_node")
    p.add_argument("--agent", choices=AGENTS, default="echo")
    p.add_argument("--codec", choices=("PCMU", "PCMA", "G722"), default="PCMU")
    p.add_argument(
        "--quality", type=int, choices=range(1, 11), help="sip.media_quality (default: the node's)"
    )
    p.add_argument("--greeting-s", type=float, default=1.5, help="the greet agent's greeting")
    p.add_argument("--late-number", default="", help="a number answered only after a delay")
    p.add_argument("--late-answer-s", type=float, default=5.0)
    p.add_argument("--rtp-timeout", type=float, default=None, help="sip.rtp_timeout_s")
    p.add_argument("--max-calls", type=int, default=None, help="pjsua2's call limit (lower)")
    p.add_argument("--answer-only", default="", help="answer this number only; others 404")
    args = p.parse_args(argv)
    options = NodeOptions(
        greeting_s=args.greeting_s,
        late_number=args.late_number,
        late_answer_s=args.late_answer_s,
        rtp_timeout_s=args.rtp_timeout,
        max_calls=args.max_calls,
        answer_only=args.answer_only,
    )

    def emit(obj: dict[str, object]) -> None:
        print(json.dumps(obj), flush=True)

    asyncio.run(serve(args.agent, args.codec, args.quality, emit, options))
    return 0


if __name__ == "__main__":
    sys.exit(main())
