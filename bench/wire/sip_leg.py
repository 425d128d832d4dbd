"""The bench's SIP caller: pjsua2 places the call, the leg's own socket carries its RTP.

Signalling is pjsua2 (`bench.wire.sip_phone`: the process's one Endpoint, on the node's
`SipThread`): INVITE to `sip:{sip_number}@{sip_host}:{sip_port}` offering one codec (PCMU by
default; PCMA or G722), ACK, BYE either way, with retransmissions, Record-Route and the rest
handled as for any SIP peer (so the leg works through Kamailio and RTPEngine too). `call_id` is
the leg's own name, sent in the Request-URI (`LEG_PARAM`) so the node's events can be joined to
the call; `sip_call_id` is the SIP Call-ID. `closed` is set when the call ends (the node's BYE,
or a final refusal).

Media does not go through pjmedia: the SDP offer names the leg's own UDP socket, so
- sending: `send(pcm)` resamples the frame to the codec's rate, encodes it (FFmpeg's G.711 /
  G.722) and sends one RTP packet at once: no jitter buffer, conference bridge or clock tick
  between the pacer and the wire (pjsua2's bridge would hold each frame until its next 20 ms
  tick, 0-20 ms, constant per call);
- receiving: each RTP packet's arrival is the kernel's receive timestamp (`SO_TIMESTAMPNS`,
  see `bench.wire.rtp_socket`), so neither the event loop's delay in reading it nor a jitter
  buffer is in the number (pjsua2 would hand audio over only after pjmedia's adaptive jitter
  buffer, at least one 20 ms frame, and on the bridge's 20 ms clock, which would hide the
  node's own pacing). Packets are decoded and handed to `on_audio` as they come, in arrival
  order (on loopback there is no loss or reordering to smooth); DTMF and comfort-noise payload
  types are skipped. Decoded audio is resampled to 16 kHz with libswresample (at most 2 ms of
  shift, see `bench.wire.resampling`).

`python -m bench.wire.sip_leg` places one call from the command line and prints what it
measured as JSON (see `main`); tests use it to call a node served in their own process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import secrets
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from bench.scenario import SpokenLine
from bench.wire.caller import Caller, CallerOptions
from bench.wire.events import LEG_PARAM
from bench.wire.leg import (
    SAMPLE_RATE,
    LegError,
    LegRefused,
    LegTarget,
    OnAudio,
    OpenLeg,
)
from bench.wire.measure import greeting_s, line_latencies, packet_gaps
from bench.wire.rtp_socket import RtpSocket
from bench.wire.sip_phone import SipPhone, shared_phone
from bench.wire.sip_rtp import (
    CODECS,
    RtpDecoder,
    RtpEncoder,
    RtpPacket,
    codec_named,
    split_address,
)
from media.clock import MonotonicClock
from media.wav import read_wav, write_wav

log = logging.getLogger(__name__)

REFUSED_STATUSES: Final = frozenset({429, 480, 486, 503, 600, 603})
"""Final answers that mean "not now" (over capacity, quota, busy, draining)."""
HANGUP_TIMEOUT_S: Final = 5.0


class SipLeg:
    """One SIP call from the bench's side (see the module docstring for its timing)."""

    def __init__(self, on_audio: OnAudio, codec: str = "PCMU") -> None:
        self.codec = codec_named(codec)
        self.call_id: str | None = secrets.token_hex(16)
        """The leg's own name, sent as the Request-URI parameter `LEG_PARAM`: the node's
        `call.started` event carries the Request-URI as `to_uri`, so the bench files the node's
        events for the call under it (`bench.wire.events`)."""
        self.sip_call_id: str | None = None
        self.closed = asyncio.Event()
        self.end_status: int | None = None
        self.end_reason = ""
        self.packets_received = 0
        self.packets_dropped = 0
        """Datagrams that were not RTP of the call's codec (malformed, DTMF, comfort noise)."""
        self._on_audio = on_audio
        self._encoder = RtpEncoder(
            self.codec,
            ssrc=secrets.randbits(32),
            sequence=secrets.randbits(16),
            timestamp=secrets.randbits(32),
        )
        self._decoder = RtpDecoder(self.codec)
        self._remote: tuple[str, int] | None = None
        self._answered = asyncio.Event()
        self._media = asyncio.Event()
        self._hung_up = False
        self._phone: SipPhone | None = None
        self._key = 0
        self._extra: dict[str, object] = {}
        self._rtp: RtpSocket | None = None

    # -- Leg ------------------------------------------------------------------------------
    async def send(self, pcm: bytes) -> None:
        if self._rtp is not None and self._remote is not None and not self.closed.is_set():
            self._rtp.sendto(self._encoder.encode(pcm), self._remote)

    async def hangup(self) -> None:
        if self._hung_up:
            return
        self._hung_up = True
        if self._phone is not None and self._key and not self.closed.is_set():
            await self._phone.hangup(self._key)
            try:
                async with asyncio.timeout(HANGUP_TIMEOUT_S):
                    await self.closed.wait()
            except TimeoutError:
                log.warning("the call did not end after BYE", extra=self._extra)
        self.closed.set()
        if self._rtp is not None:
            self._rtp.close()

    # -- setup ----------------------------------------------------------------------------
    async def dial(self, phone: SipPhone, target: LegTarget) -> None:
        """Call the target's number; return once it answered and its media address is known."""
        self._rtp = RtpSocket(phone.host, self._on_datagram)
        self._phone = phone
        uri = (
            f"sip:{target.sip_number}@{_uri_host(target.sip_host)}:{target.sip_port}"
            f";{LEG_PARAM}={self.call_id}"
        )
        try:
            self._key, self.sip_call_id = await phone.dial(
                uri, self.codec.name, self._rtp.address, self
            )
        except ValueError as exc:
            raise LegError(str(exc)) from exc
        self._extra = {"call_id": self.call_id, "sip_call_id": self.sip_call_id}
        try:
            async with asyncio.timeout(target.connect_timeout_s):
                await self._answered.wait()
                if not self.closed.is_set():
                    await self._media.wait()
        except TimeoutError as exc:
            raise LegError(f"{uri} did not answer within {target.connect_timeout_s} s") from exc
        if self.closed.is_set():
            status = f"{self.end_status} {self.end_reason}".strip()
            if self.end_status in REFUSED_STATUSES:
                raise LegRefused(f"{uri} refused the call: {status}")
            raise LegError(f"{uri} did not take the call: {status}")
        log.info("sip leg answered", extra={**self._extra, "codec": self.codec.name})

    @property
    def kernel_stamps(self) -> bool:
        """Whether arrival times are the kernel's receive timestamps (else the read time)."""
        return self._rtp is not None and self._rtp.kernel_stamps

    # -- CallWatcher (in the loop) ----------------------------------------------------------
    def answered(self) -> None:
        self._answered.set()

    def media(self, remote_rtp: str, codec: str) -> None:
        try:
            self._remote = split_address(remote_rtp)
        except ValueError:
            log.warning("no usable remote RTP address", extra={**self._extra, "got": remote_rtp})
            return
        if not codec.upper().startswith(self.codec.name):
            log.warning("the node chose another codec", extra={**self._extra, "codec": codec})
        self._media.set()

    def ended(self, status: int, reason: str) -> None:
        self.end_status, self.end_reason = status, reason
        self.closed.set()
        self._answered.set()  # wakes `dial`, which then sees `closed`
        self._media.set()

    # -- RTP --------------------------------------------------------------------------------
    def _on_datagram(self, at: float, data: bytes, source: tuple[str, int]) -> None:
        try:
            packet = RtpPacket.parse(data)
        except ValueError:
            self.packets_dropped += 1
            return
        if packet.payload_type != self.codec.payload_type or not packet.payload:
            self.packets_dropped += 1
            return
        self.packets_received += 1
        pcm = self._decoder.decode(packet.payload)
        if pcm:
            self._on_audio(at, pcm)


def _uri_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


@asynccontextmanager
async def open_leg(
    target: LegTarget, on_audio: OnAudio, *, codec: str | None = None
) -> AsyncIterator[SipLeg]:
    """An answered SIP call to `target.sip_number`; hung up (BYE) on exit.

    `codec`: PCMU, PCMA or G722 (default: the target's `sip_codec` when it has one, else PCMU).
    At most `sip_phone.MAX_CALLS` SIP legs can be open in one process."""
    leg = SipLeg(on_audio, codec or str(getattr(target, "sip_codec", "PCMU")))
    async with shared_phone(target.sip_local_host) as phone:
        try:
            await leg.dial(phone, target)
            yield leg
        finally:
            await leg.hangup()


if TYPE_CHECKING:  # the transport registry's signature (bench.wire.leg.open_transport)
    _OPENER: OpenLeg = open_leg


# -- one call from the command line -----------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench.wire.sip_leg",
        description=(
            "Place one bench call over SIP: hear the greeting, say each --wav line after the"
            " agent's previous reply, hang up after the last reply. Prints a JSON summary."
        ),
    )
    p.add_argument("--host", default="127.0.0.1", help="the node's SIP address")
    p.add_argument("--port", type=int, default=5060, help="the node's SIP port (UDP)")
    p.add_argument("--number", default="1000", help="the number to dial (request-URI user)")
    p.add_argument("--local-host", default="127.0.0.1", help="address the caller binds to")
    p.add_argument("--codec", default="PCMU", choices=sorted(CODECS), help="the one codec offered")
    p.add_argument("--wav", action="append", default=[], type=Path, help="a caller line (mono WAV)")
    p.add_argument("--out", type=Path, help="write heard.wav (16 kHz) here")
    p.add_argument("--timeout", type=float, default=20.0, help="seconds to wait for the answer")
    p.add_argument("--max-call", type=float, default=120.0, help="hang up after this many seconds")
    p.add_argument(
        "--reply-gap",
        type=float,
        default=CallerOptions.reply_gap_s,
        help="agent silence (seconds) that ends its reply",
    )
    return p


def _stats_ms(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    ms = np.array(values) * 1000.0
    return {f"p{q}": round(float(np.percentile(ms, q)), 3) for q in (50, 95, 99)} | {
        "max": round(float(ms.max()), 3),
        "n": len(values),
    }


async def run_call(args: argparse.Namespace) -> dict[str, Any]:
    """One call as `main` places it; the summary `main` prints."""
    target = LegTarget(
        sip_host=args.host,
        sip_port=args.port,
        sip_number=args.number,
        sip_local_host=args.local_host,
        connect_timeout_s=args.timeout,
    )
    lines = [SpokenLine(samples=read_wav(path), text=path.stem) for path in args.wav]
    clock = MonotonicClock()
    caller = Caller(
        lines, clock, options=CallerOptions(reply_gap_s=args.reply_gap, max_call_s=args.max_call)
    )
    async with open_leg(target, caller.on_audio, codec=args.codec) as leg:
        caller.answered()
        timeline = await caller.run(leg)
        timeline.call_id = leg.call_id
        by_remote = leg.closed.is_set()
    heard = b"".join(p.pcm for p in timeline.packets)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        write_wav(args.out / "heard.wav", np.frombuffer(heard, dtype="<i2"))
    sizes = [len(p.pcm) // 2 for p in timeline.packets]
    greeting = greeting_s(timeline)
    return {
        "call_id": leg.call_id,
        "sip_call_id": leg.sip_call_id,
        "codec": leg.codec.name,
        "ended_by": "agent" if by_remote else timeline.ended_by,
        "end_status": leg.end_status,
        "kernel_stamps": leg.kernel_stamps,
        "packets": len(timeline.packets),
        "packets_dropped": leg.packets_dropped,
        "samples_per_packet": {"min": min(sizes, default=0), "max": max(sizes, default=0)},
        "heard_s": len(heard) / 2 / SAMPLE_RATE,
        "frames_sent": timeline.frames_sent,
        "greeting_ms": None if greeting is None else round(greeting * 1000, 1),
        "v2v_ms": [
            None if t.v2v_s is None else round(t.v2v_s * 1000, 1) for t in line_latencies(timeline)
        ],
        "gap_ms": _stats_ms(packet_gaps(timeline)),
    }


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        summary = asyncio.run(run_call(args))
    except LegError as exc:
        print(json.dumps({"error": str(exc), "refused": isinstance(exc, LegRefused)}))
        return 1
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
