"""The node side of the SIP media bench, run in its own process (pjsua2 allows one Endpoint
per process): the node's SIP `UserAgent` answering every INVITE with a trivial agent, no
models, so what it costs is the media path (pjsua2 + bridge port + asyncio handover).

    python -m bench.sip_media_node --agent echo|tone|listen [--codec PCMU] [--quality 1-10]

Agents: `echo` writes each inbound frame back out; `tone` reads the caller and writes a tone
paced 20 ms on the loop clock, three frames ahead (as the pipeline's playout does); `listen`
only reads (the outbound side then sends silence).

Protocol with the bench (stdout, one JSON object a line): first
`{"sip_port", "threads": {"main": TID, "sip": TID}}` once listening; the bench ends the node
by closing stdin, and the node prints `{"calls", "frames_in", "frames_out", "dropped_in",
"handoff_posts", "handoff_wakeups", "frame_access"}` before it exits.
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

import msgspec
import numpy as np

from config import load_settings
from media.call import CallInfo, Direction
from media.frames import FRAME_MS, SAMPLE_RATE, AudioFrame
from sip.calls import SipCall
from sip.media_port import loop_handoff
from sip.ua import Accept, IncomingInvite, Reject, UserAgent
from sip.vector import fast_access

AGENTS = ("echo", "tone", "listen")
FRAME_SECONDS = FRAME_MS / 1000


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

    def __init__(self, agent: str) -> None:
        self.agent = agent
        self.calls = 0
        self.frames_in = 0
        self.frames_out = 0
        self.dropped_in = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._tone = _tone_frames()

    async def route(self, invite: IncomingInvite) -> Accept | Reject:
        self.calls += 1
        info = CallInfo(
            call_id=f"bench{self.calls}",
            tenant_id="bench",
            direction=Direction.INBOUND,
            to_uri=invite.request.uri,
            transport="sip",
        )
        return Accept(info=info, start=self._start, abandon=lambda: None)

    def _start(self, call: SipCall) -> None:
        task = asyncio.get_running_loop().create_task(self._run(call))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, call: SipCall) -> None:
        audio = call.audio
        writer: asyncio.Task[None] | None = None
        if self.agent == "tone":
            writer = asyncio.get_running_loop().create_task(self._speak(call))
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

    async def _speak(self, call: SipCall, lead: int = 3) -> None:
        loop = asyncio.get_running_loop()
        sink = call.audio.sink
        next_at = loop.time()
        seq = 0
        while True:
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


async def serve(
    agent: str, codec: str, quality: int | None, emit: Callable[[dict[str, object]], None]
) -> None:
    settings = load_settings(env={})
    sip = msgspec.structs.replace(
        settings.sip,
        host="127.0.0.1",
        port=0,
        transports=["udp"],
        rtp_port=_free_udp_port(),
        rtp_port_range=2000,
        codecs=[codec],
        media_quality=quality or settings.sip.media_quality,
    )
    agents = BenchAgents(agent)
    handoff = loop_handoff(asyncio.get_running_loop())
    ua = UserAgent(sip, agents.route)
    await ua.start()
    try:
        threads = {t.name: t.native_id for t in threading.enumerate()}
        emit(
            {
                "sip_port": ua.port,
                "threads": {"main": threading.get_native_id(), "sip": threads.get("sip")},
            }
        )
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.buffer.read)  # until the bench closes it
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
        }
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.sip_media_node")
    p.add_argument("--agent", choices=AGENTS, default="echo")
    p.add_argument("--codec", choices=("PCMU", "PCMA", "G722"), default="PCMU")
    p.add_argument(
        "--quality", type=int, choices=range(1, 11), help="sip.media_quality (default: the node's)"
    )
    args = p.parse_args(argv)

    def emit(obj: dict[str, object]) -> None:
        print(json.dumps(obj), flush=True)

    asyncio.run(serve(args.agent, args.codec, args.quality, emit))
    return 0


if __name__ == "__main__":
    sys.exit(main())
