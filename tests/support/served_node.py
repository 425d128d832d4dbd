"""The real node (its store, admission, analytics, `LiveCalls`) with fake speech engines (no
models loaded), alone or served with its HTTP API; and calls on virtual audio run through it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import msgspec

from agents.spec import RecordingMode
from config.schema import Settings
from media.call import CallInfo, Direction
from media.clock import MonotonicClock
from media.frames import FRAME_SAMPLES, SAMPLE_RATE, AudioFrame, frames_from_samples
from media.virtual import VirtualCall, VirtualTransport
from pipeline.events import CallEnded, CallEvent, StateChanged
from pipeline.fakes import fake_engines, utterance_audio
from tests.support.harness import real_node_settings, serve_app
from voicenode.node import Node, open_node

CALL_LIMIT_S = 60.0
"""Bound on a call run to its end (fake engines: seconds, on a loaded machine)."""


class VirtualLiveCall:
    """A call `LiveCalls` can run: virtual audio and call control."""

    def __init__(self, info: CallInfo) -> None:
        self.info = info
        self.control = VirtualCall(info)
        self.transport = VirtualTransport(MonotonicClock())

    def publish(self, event: CallEvent) -> None:
        pass

    async def close(self, outcome: str) -> None:
        await self.control.hangup(outcome)
        await self.transport.close()


def light_node_settings(data_dir: Path, **analytics: Any) -> Settings:
    """`real_node_settings` (the embedded defaults, the store under `data_dir`, HTTP on
    127.0.0.1) with telephony off (no SIP, no AudioSocket) and 127.0.0.1 on the analytics URL
    allowlist (the LLM double, a webhook receiver); `analytics`: more of that section."""
    s = real_node_settings(data_dir)
    return msgspec.structs.replace(
        s,
        audiosocket=msgspec.structs.replace(s.audiosocket, enabled=False),
        analytics=msgspec.structs.replace(
            s.analytics, **{"url_allowlist": ("127.0.0.1",), **analytics}
        ),
    )


@asynccontextmanager
async def light_node(settings: Settings, lines: Sequence[str] = ()) -> AsyncIterator[Node]:
    """The node with fake speech engines: the caller's recognized `lines`, in order."""
    async with open_node(settings, fake_engines(list(lines), settings)) as node:
        yield node


@asynccontextmanager
async def served_light_node(settings: Settings) -> AsyncIterator[tuple[Node, httpx.AsyncClient]]:
    """`light_node` and its HTTP API on a free 127.0.0.1 port, with a client for it."""
    async with (
        light_node(settings) as node,
        serve_app(node, settings) as url,
        httpx.AsyncClient(base_url=url, timeout=20) as http,
    ):
        yield node, http


def start_call(
    node: Node,
    tenant_id: str,
    agent: str,
    *,
    from_uri: str = "sip:caller@test",
    recording: RecordingMode | None = None,
) -> tuple[VirtualLiveCall, asyncio.Task[None]]:
    """An inbound call to `agent`, admitted and started: the call and the task that runs it
    (`recording`: the call's own recording choice, as `POST /v1/calls` gives one)."""
    info = CallInfo(
        call_id=f"call-{uuid.uuid4().hex[:8]}",
        tenant_id=tenant_id,
        direction=Direction.INBOUND,
        from_uri=from_uri,
        to_uri=f"agent:{agent}",
    )
    node.admit(info.call_id)
    if recording is not None:
        node.record_call(info.call_id, recording)
    call = VirtualLiveCall(info)
    return call, node.calls.start(call, agent)


async def run_call(
    node: Node,
    tenant_id: str,
    agent: str,
    *,
    hang_up: bool = False,
    from_uri: str = "sip:caller@test",
) -> CallInfo:
    """Run one call on the node to its end, within `CALL_LIMIT_S` (`hang_up`: the caller hangs
    up at once); its `CallInfo`."""
    call, task = start_call(node, tenant_id, agent, from_uri=from_uri)
    if hang_up:
        call.control.remote_hangup()
    async with asyncio.timeout(CALL_LIMIT_S):
        await task
    return call.info


async def call_and_speak(
    node: Node,
    tenant_id: str,
    agent: str,
    *,
    from_uri: str = "sip:caller@test",
    recording: RecordingMode | None = None,
) -> CallEnded:
    """One inbound call: the agent greets, the caller says its first line (the node's fake STT
    hears `lines[0]` of `light_node`; 20 ms frames on the real clock) and silence after it, until
    the call ends (the agent ends it); its `CallEnded`."""
    states: asyncio.Queue[CallEvent] = asyncio.Queue()
    ended: list[CallEnded] = []
    call, task = start_call(node, tenant_id, agent, from_uri=from_uri, recording=recording)

    def watch(seen: CallInfo, event: CallEvent) -> None:
        if seen.call_id == call.info.call_id:
            states.put_nowait(event)
            if isinstance(event, CallEnded):
                ended.append(event)

    unsubscribe = node.calls.subscribe(watch)  # before the call's task first runs
    try:
        async with asyncio.timeout(CALL_LIMIT_S):
            while await states.get() != StateChanged("listening"):
                pass  # the greeting plays first
            line = frames_from_samples(utterance_audio(0, 0.8))
            seq = 0
            next_at = asyncio.get_running_loop().time()
            while not task.done():
                frame = line.pop(0) if line else AudioFrame.silence()
                await call.transport.source.send(AudioFrame(frame.pcm, seq))
                seq += 1
                next_at += FRAME_SAMPLES / SAMPLE_RATE
                await asyncio.sleep(max(0.0, next_at - asyncio.get_running_loop().time()))
            await task
    finally:
        unsubscribe()
    assert len(ended) == 1
    return ended[0]
