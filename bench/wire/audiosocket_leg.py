"""The bench's AudioSocket leg: calls a node's AudioSocket listener the way Asterisk does.

The leg connects over TCP, sends the call's UUID (`audiosocket_uuid_prefix` + random hex; the
node routes it to an agent), then signed-linear audio at `audiosocket_rate` (8 kHz kind 0x10 by
default, like `AudioSocket()`; or 16 kHz kind 0x12) and reads the agent's audio back.

Rate conversion is zero-delay so it cannot bias the measurement: 16 -> 8 kHz averages sample
pairs (a two-tap low-pass; scenario audio that went through the phone line has nothing above
4 kHz anyway), 8 -> 16 kHz interpolates linearly within each packet. The call counts as
answered once the UUID is sent (Asterisk answers the channel before AudioSocket starts).
The caller's frames are pre-rendered once per run, so each distinct frame is narrowed to 8 kHz
once (`narrow_frame`, a bounded cache keyed by the frame's bytes) rather than on every send.
The node's call id is the UUID's hex. A node that refuses the call sends the error kind:
`error` says so and `closed` is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import numpy as np
import numpy.typing as npt

from bench.wire.audiosocket_client import ERROR, HANGUP, RATE_OF_KIND, AudioSocketClient, message
from bench.wire.leg import FRAME_BYTES, LegError, LegTarget, OnAudio
from media.clock import Clock, MonotonicClock

log = logging.getLogger(__name__)

_KIND_OF_RATE = {8000: 0x10, 16000: 0x12}
_NARROWED: dict[bytes, bytes] = {}
_NARROWED_MAX = 16_384
"""About 16 MB at most: a run's pre-rendered lines have a few thousand distinct frames."""


def call_uuid(prefix: str = "") -> uuid.UUID:
    """A random UUID whose hex starts with `prefix`."""
    digits = (prefix.lower() + secrets.token_hex(16))[:32]
    return uuid.UUID(hex=digits)


def downsample_2x(samples: npt.NDArray[np.int16]) -> npt.NDArray[np.int16]:
    """16 -> 8 kHz with no delay: the mean of each sample pair."""
    x = samples[: len(samples) // 2 * 2].astype(np.int32)
    out: npt.NDArray[np.int16] = ((x[0::2] + x[1::2]) // 2).astype(np.int16)
    return out


def upsample_2x(samples: npt.NDArray[np.int16]) -> npt.NDArray[np.int16]:
    """8 -> 16 kHz with no look-ahead beyond the packet: each sample, then the midpoint to the
    next one (the packet's last sample is repeated)."""
    if len(samples) == 0:
        return np.zeros(0, dtype=np.int16)
    x = samples.astype(np.int32)
    nxt = np.concatenate([x[1:], x[-1:]])
    out = np.empty(2 * len(x), dtype=np.int32)
    out[0::2] = x
    out[1::2] = (x + nxt) // 2
    result: npt.NDArray[np.int16] = out.astype(np.int16)
    return result


def narrow_frame(pcm: bytes) -> bytes:
    """A 16 kHz frame as 8 kHz PCM, from the cache when this frame was sent before."""
    narrow = _NARROWED.get(pcm)
    if narrow is None:
        samples = downsample_2x(np.frombuffer(pcm, dtype="<i2").astype(np.int16))
        narrow = np.ascontiguousarray(samples, dtype="<i2").tobytes()
        if len(_NARROWED) < _NARROWED_MAX:
            _NARROWED[pcm] = narrow
    return narrow


class AudioSocketLeg:
    """One bench call over AudioSocket (implements `bench.wire.leg.Leg`)."""

    def __init__(self, target: LegTarget, on_audio: OnAudio, *, clock: Clock | None = None) -> None:
        self._target = target
        self._on_audio = on_audio
        self._clock = clock or MonotonicClock()
        self._rate = target.audiosocket_rate
        self._kind = _KIND_OF_RATE[self._rate]
        self._client: AudioSocketClient | None = None
        self._hung_up = False
        self._follow: asyncio.Task[None] | None = None
        self.uuid = call_uuid(target.audiosocket_uuid_prefix)
        self.call_id: str | None = self.uuid.hex
        self.closed = asyncio.Event()
        self.error = ""
        """Why the node ended the call with the error kind ("refused", "unknown call", ...)."""

    async def open(self) -> None:
        t = self._target
        try:
            async with asyncio.timeout(t.connect_timeout_s):
                self._client = await AudioSocketClient.connect(
                    t.audiosocket_port, t.audiosocket_host, on_message=self._message, keep=False
                )
                await self._client.send_uuid(self.uuid)
        except (OSError, TimeoutError) as exc:
            raise LegError(
                f"audiosocket {t.audiosocket_host}:{t.audiosocket_port}: cannot connect: {exc}"
            ) from exc
        closed = self._client.closed

        async def follow() -> None:
            await closed.wait()
            self.closed.set()

        self._follow = asyncio.get_running_loop().create_task(follow(), name="audiosocket-leg")

    def _message(self, kind: int, payload: bytes) -> None:
        at = self._clock.now()
        rate = RATE_OF_KIND.get(kind)
        if rate is not None:
            samples = np.frombuffer(payload, dtype="<i2").astype(np.int16)
            if rate == 8000:
                samples = upsample_2x(samples)
            elif rate != 16000:
                log.warning("unexpected audiosocket rate", extra={"rate": rate})
                return
            self._on_audio(at, np.ascontiguousarray(samples, dtype="<i2").tobytes())
        elif kind == ERROR:
            self.error = _error_name(payload)
        elif kind == HANGUP:
            self.closed.set()

    async def send(self, pcm: bytes) -> None:
        if self._client is None or self.closed.is_set() or self._hung_up:
            return
        if self._rate == 8000:
            if len(pcm) != FRAME_BYTES:
                raise ValueError(f"a frame is {FRAME_BYTES} bytes of 16 kHz audio, got {len(pcm)}")
            pcm = narrow_frame(pcm)
        try:
            await self._client.send(message(self._kind, pcm))
        except (ConnectionError, OSError):
            self.closed.set()

    async def hangup(self) -> None:
        if self._hung_up:
            return
        self._hung_up = True
        client = self._client
        if client is None:
            return
        if not self.closed.is_set():
            with contextlib.suppress(ConnectionError, OSError):
                await client.send_hangup()
        await client.close()
        self.closed.set()
        if self._follow is not None:
            self._follow.cancel()
            await asyncio.gather(self._follow, return_exceptions=True)


def _error_name(payload: bytes) -> str:
    codes = {0x10: "unknown call", 0x11: "refused", 0x12: "protocol", 0x13: "timeout"}
    return codes.get(payload[0], f"error 0x{payload[0]:02x}") if payload else "error"


@asynccontextmanager
async def open_leg(
    target: LegTarget, on_audio: OnAudio, *, clock: Clock | None = None
) -> AsyncIterator[AudioSocketLeg]:
    """An AudioSocket call to `target` (the leg module contract; `clock` stamps arrivals)."""
    leg = AudioSocketLeg(target, on_audio, clock=clock)
    await leg.open()
    try:
        yield leg
    finally:
        await leg.hangup()
