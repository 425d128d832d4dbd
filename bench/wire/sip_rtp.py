"""Sans-IO pieces of the bench's SIP caller: RTP packets, the audio codecs it speaks, and the
edit that points the caller's SDP offer at its own RTP socket."""

from __future__ import annotations

import struct
from typing import Final, Literal, cast

import av
import msgspec
from av.audio.codeccontext import AudioCodecContext

from bench.wire.leg import FRAME_BYTES, FRAME_MS, SAMPLE_RATE
from bench.wire.resampling import FrameResampler, MonoResampler, pcm_frame

RTP_VERSION: Final = 2
_HEADER: Final = struct.Struct("!BBHII")
_SEQ_MASK: Final = 0xFFFF
_TS_MASK: Final = 0xFFFFFFFF


class RtpPacket(msgspec.Struct, frozen=True, kw_only=True):
    """One RTP packet (RFC 3550) without CSRCs or header extensions of its own."""

    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes
    marker: bool = False

    @classmethod
    def parse(cls, data: bytes) -> RtpPacket:
        """The packet in `data` (CSRCs, extension and padding skipped); ValueError if malformed."""
        if len(data) < _HEADER.size:
            raise ValueError(f"an RTP packet has at least 12 bytes, got {len(data)}")
        first, second, sequence, timestamp, ssrc = _HEADER.unpack_from(data)
        if first >> 6 != RTP_VERSION:
            raise ValueError(f"RTP version {first >> 6}, expected 2")
        start = _HEADER.size + 4 * (first & 0x0F)
        if first & 0x10:  # header extension: 16-bit profile, 16-bit length in words
            if len(data) < start + 4:
                raise ValueError("the RTP header extension is cut short")
            start += 4 + 4 * struct.unpack_from("!H", data, start + 2)[0]
        end = len(data)
        if first & 0x20:
            end -= data[-1]
        if start > end:
            raise ValueError("the RTP header runs past the packet")
        return cls(
            payload_type=second & 0x7F,
            marker=bool(second & 0x80),
            sequence=sequence,
            timestamp=timestamp,
            ssrc=ssrc,
            payload=data[start:end],
        )

    def __bytes__(self) -> bytes:
        second = (0x80 if self.marker else 0) | (self.payload_type & 0x7F)
        head = _HEADER.pack(
            RTP_VERSION << 6,
            second,
            self.sequence & _SEQ_MASK,
            self.timestamp & _TS_MASK,
            self.ssrc,
        )
        return head + self.payload


class RtpCodec(msgspec.Struct, frozen=True):
    """An audio codec as the caller puts it in RTP."""

    name: str
    """As SIP/SDP and the node's `sip.codecs` name it."""
    payload_type: int
    """Its static RTP payload type (RFC 3551)."""
    av_name: str
    """The FFmpeg codec that encodes and decodes it."""
    rate: int
    """The sample rate of its audio (G.722: 16 kHz, though its RTP clock runs at 8 kHz)."""
    rtp_clock: int = 8000

    @property
    def timestamp_step(self) -> int:
        """RTP timestamp units per 20 ms packet."""
        return self.rtp_clock * FRAME_MS // 1000


CODECS: Final = {
    "PCMU": RtpCodec("PCMU", 0, "pcm_mulaw", 8000),
    "PCMA": RtpCodec("PCMA", 8, "pcm_alaw", 8000),
    "G722": RtpCodec("G722", 9, "g722", 16000),
}


def codec_named(name: str) -> RtpCodec:
    codec = CODECS.get(name.upper())
    if codec is None:
        raise ValueError(f"unknown SIP codec {name!r}; expected one of {sorted(CODECS)}")
    return codec


class RtpEncoder:
    """16 kHz caller frames to RTP packets of `codec`, numbered from random-looking origins."""

    def __init__(self, codec: RtpCodec, ssrc: int, sequence: int = 0, timestamp: int = 0) -> None:
        self.codec = codec
        self._ssrc = ssrc
        self._sequence = sequence
        self._timestamp = timestamp
        self._count = 0
        self._resample = FrameResampler(codec.rate)
        self._encoder = _context(codec, "w")

    def encode(self, pcm: bytes) -> bytes:
        """The RTP packet carrying one 20 ms frame (640 bytes of 16 kHz int16)."""
        if len(pcm) != FRAME_BYTES:
            raise ValueError(f"a frame is {FRAME_BYTES} bytes of 16 kHz int16, got {len(pcm)}")
        audio = self._resample.convert(pcm)
        frame = pcm_frame(audio, self.codec.rate, self._count * self._resample.frame_samples)
        payload = b"".join(bytes(p) for p in self._encoder.encode(frame))
        packet = RtpPacket(
            payload_type=self.codec.payload_type,
            marker=self._count == 0,
            sequence=self._sequence + self._count,
            timestamp=self._timestamp + self._count * self.codec.timestamp_step,
            ssrc=self._ssrc,
            payload=payload,
        )
        self._count += 1
        return bytes(packet)


class RtpDecoder:
    """RTP payloads of `codec` to 16 kHz mono int16 PCM."""

    def __init__(self, codec: RtpCodec) -> None:
        self.codec = codec
        self._decoder = _context(codec, "r")
        self._resample = MonoResampler(SAMPLE_RATE)

    def decode(self, payload: bytes) -> bytes:
        frames = self._decoder.decode(av.Packet(payload))
        return b"".join(self._resample.convert(f) for f in frames)


def _context(codec: RtpCodec, mode: Literal["r", "w"]) -> AudioCodecContext:
    context = cast(AudioCodecContext, av.CodecContext.create(codec.av_name, mode))
    context.sample_rate = codec.rate
    context.format = "s16"
    context.layout = "mono"
    return context


def move_audio(sdp: str, host: str, port: int) -> str:
    """`sdp` with its audio sent to `host:port`: every `c=` line's address and the audio
    `m=` line's port replaced, its `a=rtcp` line dropped (RTCP then goes to `port + 1`)."""
    out: list[str] = []
    in_audio = False
    family = "IP6" if ":" in host else "IP4"
    for line in sdp.splitlines():
        if line.startswith("m="):
            in_audio = line.startswith("m=audio ")
            if in_audio:
                fields = line.split(" ")
                fields[1] = str(port)
                line = " ".join(fields)
        elif line.startswith("c=IN "):
            line = f"c=IN {family} {host}"
        elif in_audio and line.startswith("a=rtcp:"):
            continue
        out.append(line)
    return "\r\n".join(out) + "\r\n"


def split_address(address: str) -> tuple[str, int]:
    """`"127.0.0.1:4000"` or `"[::1]:4000"` as (host, port); ValueError otherwise."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ValueError(f"not a host:port address: {address!r}")
    return host.strip("[]"), int(port)
