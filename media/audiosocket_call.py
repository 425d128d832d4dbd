"""One Asterisk AudioSocket connection as a call: a `Call` (signalling), a `Transport` (audio)
and what `control_api.calls.LiveCall` asks for (`info`, `control`, `transport`, `publish`,
`close`), without importing it. `media/audiosocket_server.py` accepts and routes connections
and hands each routed one to an `AudioSocketCall`; the wire format is `media/audiosocket.py`.

- Inbound audio (any AudioSocket rate) becomes 16 kHz 20 ms frames; DTMF digits become `Dtmf`
  signals; the hangup kind, the error kind or the socket closing end the call.
- Agent audio goes back paced at 20 ms, in the format the caller sends (8 kHz slin for kind
  0x10, ...); `clear()` drops what has not been sent; `hangup()` sends the hangup kind.
- Transfer and sending DTMF are not part of AudioSocket: they go through the `FarEndControl`
  the router supplies (Asterisk AMI); without one they raise `CallControlError`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

import msgspec

from core.tasks import OwnedTasks
from media.audiosocket import (
    Audio,
    CallUuid,
    DtmfDigit,
    Error,
    ErrorCode,
    Framer,
    Hangup,
    Message,
)
from media.audiosocket_audio import AgentAudio, CallerAudio
from media.call import Call, CallControlError, CallInfo, CallSignal, Dtmf, RemoteHangup
from media.clock import Clock, MonotonicClock
from media.pacer import Pacer
from media.transport import Transport

__all__ = ["AudioSocketCall", "AudioSocketOptions", "FarEndControl", "close_writer"]

log = logging.getLogger(__name__)


class AudioSocketOptions(msgspec.Struct, frozen=True, kw_only=True):
    uuid_timeout_s: float = 5.0
    """A connection that has not sent its UUID by then is closed."""
    inbound_buffer_frames: int = 50
    """1 s of caller audio may wait for the pipeline; older frames are dropped past that."""
    outbound_buffer_frames: int = 10
    """0.2 s of agent audio may wait to be sent; `write` waits while it is full."""
    signal_queue: int = 64
    close_timeout_s: float = 1.0
    """How long closing waits for the socket to flush before aborting it."""
    read_chunk: int = 65_536
    allowed_sources: tuple[str, ...] = ()
    """IPs or CIDRs that may connect (Asterisk's); others are closed at accept. Empty: any."""


class FarEndControl(Protocol):
    """Signalling that AudioSocket cannot carry, done by the PBX side (Asterisk AMI)."""

    async def transfer(self, target: str) -> None: ...

    async def send_dtmf(self, digits: str) -> None: ...

    async def hangup(self) -> None: ...


class _AudioSocketTransport(Transport):
    def __init__(self, call: AudioSocketCall, source: CallerAudio, sink: AgentAudio) -> None:
        self.source = source
        self.sink = sink
        self._call = call

    async def close(self) -> None:
        await self._call.close("transport closed")


class AudioSocketCall(Call):
    """One AudioSocket connection as a call. `run()` serves it until it closes."""

    def __init__(
        self,
        info: CallInfo,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        framer: Framer,
        *,
        options: AudioSocketOptions | None = None,
        clock: Clock | None = None,
        far_end: FarEndControl | None = None,
    ) -> None:
        self.info = info
        self._reader = reader
        self._writer = writer
        self._framer = framer
        self._options = options = options or AudioSocketOptions()
        self._clock = clock or MonotonicClock()
        self._far_end = far_end
        self._extra = {"call_id": info.call_id, "tenant_id": info.tenant_id}
        self._source = CallerAudio(options.inbound_buffer_frames, self._extra)
        self._sink = AgentAudio(options.outbound_buffer_frames)
        self._transport = _AudioSocketTransport(self, self._source, self._sink)
        self._signals: asyncio.Queue[CallSignal] = asyncio.Queue(maxsize=options.signal_queue)
        self.rate = 8_000
        """The caller's audio rate (from the last audio kind received); agent audio uses it."""
        self._tasks = OwnedTasks(info.call_id, log=log, extra=self._extra)
        self._closing = False
        self._hung_up = False
        self._closed = asyncio.Event()
        self.end_reason = ""

    # -- Call ---------------------------------------------------------------------------
    async def hangup(self, reason: str = "normal") -> None:
        if not self._closing and not self._hung_up:
            self._sink.close()  # nothing may follow the hangup kind
            self._send(Hangup())
            self._hung_up = True
            if self._far_end is not None:
                try:
                    async with asyncio.timeout(self._options.close_timeout_s * 2):
                        await self._far_end.hangup()
                except (CallControlError, TimeoutError) as exc:
                    log.info("far-end hangup failed", extra={**self._extra, "error": str(exc)})
        await self.close(reason)

    async def transfer(self, target: str) -> None:
        if self._far_end is None:
            raise CallControlError(
                "an AudioSocket call is transferred through AMI: none set up", kind="unsupported"
            )
        await self._far_end.transfer(target)

    async def send_dtmf(self, digits: str) -> None:
        if self._far_end is None:
            raise CallControlError(
                "AudioSocket cannot send DTMF; it needs AMI: none set up", kind="unsupported"
            )
        await self._far_end.send_dtmf(digits)

    async def next_signal(self) -> CallSignal:
        return await self._signals.get()

    # -- LiveCall (control_api.calls) --------------------------------------------------------
    @property
    def control(self) -> Call:
        return self

    @property
    def transport(self) -> Transport:
        return self._transport

    def publish(self, event: object) -> None:
        """AudioSocket has no channel for call events."""

    # -- lifecycle ------------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._closing

    async def wait_closed(self) -> None:
        await self._closed.wait()

    async def run(self, first: list[Message] | None = None) -> None:
        """Serve the connection until the call closes (either side)."""
        try:
            if first and self._dispatch(first):
                await self.close(self.end_reason)
                return
            self._tasks.spawn(self._read_loop(), "audiosocket-read")
            self._tasks.spawn(self._send_loop(), "audiosocket-send")
            await self._closed.wait()
        finally:
            if not self._closed.is_set():
                await self.close("stopped")

    async def close(self, outcome: str = "normal") -> None:
        """Close the socket and this call's tasks (idempotent; later callers wait)."""
        if self._closing:
            await self._closed.wait()
            return
        self._closing = True
        log.info("audiosocket call closing", extra={**self._extra, "reason": outcome})
        try:
            self._sink.close()
            self._source.end()
            await self._tasks.aclose()
            await close_writer(self._writer, self._options.close_timeout_s)
        finally:
            self._closed.set()

    def _send(self, message: Hangup | Audio | Error) -> None:
        if not self._writer.is_closing() and not self._hung_up:
            self._writer.write(bytes(message))

    def _remote_ended(self, reason: str) -> None:
        self.end_reason = self.end_reason or reason
        self._source.end()
        try:
            self._signals.put_nowait(RemoteHangup(reason))
        except asyncio.QueueFull:
            log.warning("signal queue full; remote hangup not queued", extra=self._extra)

    def _dispatch(self, messages: list[Message]) -> bool:
        """Handle received messages; True when the far end ended the call."""
        for msg in messages:
            match msg:
                case Audio(pcm=pcm, rate=rate):
                    self.rate = rate
                    self._source.push(pcm, rate)
                case DtmfDigit(digit=digit):
                    try:
                        self._signals.put_nowait(Dtmf(digit))
                    except asyncio.QueueFull:
                        log.warning("signal queue full; DTMF dropped", extra=self._extra)
                case Hangup():
                    self._remote_ended("hangup")
                    return True
                case Error(code=code):
                    log.warning(
                        "the far end sent an error", extra={**self._extra, "code": code.hex()}
                    )
                    self._remote_ended("far-end error")
                    return True
                case CallUuid():
                    log.warning("a second UUID on a call", extra=self._extra)
                    self._send(Error(bytes((ErrorCode.PROTOCOL,))))
                    self._remote_ended("protocol error")
                    return True
        return False

    async def _read_loop(self) -> None:
        try:
            while True:
                data = await self._reader.read(self._options.read_chunk)
                if not data:
                    self._remote_ended("hangup")
                    break
                try:
                    messages = self._framer.feed(data)
                except ValueError as exc:
                    log.warning("bad AudioSocket data", extra={**self._extra, "error": str(exc)})
                    self._send(Error(bytes((ErrorCode.PROTOCOL,))))
                    self._remote_ended("protocol error")
                    break
                if self._dispatch(messages):
                    break
        except (ConnectionError, OSError) as exc:
            log.info("audiosocket connection lost", extra={**self._extra, "error": str(exc)})
            self._remote_ended("connection lost")
        await self.close(self.end_reason)

    async def _send_loop(self) -> None:
        pacer = Pacer(self._clock)
        try:
            while not self._closing and not self._sink.closed:
                if self._sink.idle:
                    await self._sink.wait_queued()
                    pacer.reset()
                    continue
                await pacer.wait_next()
                rate = self.rate
                payload = self._sink.next_payload(rate)
                if payload is not None:
                    self._send(Audio(payload, rate))
                    await self._writer.drain()
        except (ConnectionError, OSError) as exc:
            # The read loop sees the same broken connection and ends the call.
            log.info("audiosocket send failed", extra={**self._extra, "error": str(exc)})


async def close_writer(writer: asyncio.StreamWriter, timeout_s: float) -> None:
    """Close a stream, waiting up to `timeout_s` for it to flush, then aborting it."""
    writer.close()
    try:
        async with asyncio.timeout(timeout_s):
            await writer.wait_closed()
    except TimeoutError:
        writer.transport.abort()
    except (ConnectionError, OSError):
        pass
