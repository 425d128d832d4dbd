"""Asterisk AudioSocket wire format, sans-IO: typed messages and a framer for a TCP byte stream.

Every message is a 3-byte header (kind: 1 byte; payload length: 2 bytes, big-endian) and the
payload. Kinds (Asterisk's `res_audiosocket.h`, docs.asterisk.org "AudioSocket"):

- 0x00 hangup (no payload), 0x01 the call's UUID (16 raw bytes, sent first by Asterisk),
  0x03 one DTMF digit (ASCII), 0xff an error (optional application-specific code).
- signed-linear 16-bit little-endian mono audio: 0x10 at 8 kHz (what the `AudioSocket()`
  dialplan application always sends) and, in recent Asterisk versions, 0x11 12 kHz,
  0x12 16 kHz, 0x13 24 kHz, 0x14 32 kHz, 0x15 44.1 kHz, 0x16 48 kHz, 0x17 96 kHz, 0x18 192 kHz.

`Framer.feed(data)` takes bytes as they arrive, cut anywhere, and returns the complete messages;
bad input raises `ValueError` naming the problem (the connection should then be closed).
"""

from __future__ import annotations

import enum
import uuid
from typing import Final

import msgspec

__all__ = [
    "AUDIO_KINDS",
    "HEADER_BYTES",
    "MAX_PAYLOAD",
    "Audio",
    "CallUuid",
    "DtmfDigit",
    "Error",
    "ErrorCode",
    "Framer",
    "Hangup",
    "Kind",
    "Message",
    "parse",
]

HEADER_BYTES: Final = 3
MAX_PAYLOAD: Final = 0xFFFF
DTMF_DIGITS: Final = frozenset("0123456789*#ABCD")


class Kind(enum.IntEnum):
    HANGUP = 0x00
    UUID = 0x01
    DTMF = 0x03
    AUDIO_8K = 0x10
    AUDIO_12K = 0x11
    AUDIO_16K = 0x12
    AUDIO_24K = 0x13
    AUDIO_32K = 0x14
    AUDIO_44K = 0x15
    AUDIO_48K = 0x16
    AUDIO_96K = 0x17
    AUDIO_192K = 0x18
    ERROR = 0xFF


AUDIO_KINDS: Final[dict[Kind, int]] = {
    Kind.AUDIO_8K: 8_000,
    Kind.AUDIO_12K: 12_000,
    Kind.AUDIO_16K: 16_000,
    Kind.AUDIO_24K: 24_000,
    Kind.AUDIO_32K: 32_000,
    Kind.AUDIO_44K: 44_100,
    Kind.AUDIO_48K: 48_000,
    Kind.AUDIO_96K: 96_000,
    Kind.AUDIO_192K: 192_000,
}
_KIND_OF_RATE: Final = {rate: kind for kind, rate in AUDIO_KINDS.items()}
_RATE_OF_KIND: Final[dict[int, int]] = {int(kind): rate for kind, rate in AUDIO_KINDS.items()}
_KNOWN_KINDS: Final = frozenset(int(k) for k in Kind)


class ErrorCode(enum.IntEnum):
    """The codes this node puts in the error kind it sends (application-specific)."""

    UNKNOWN_CALL = 0x10
    REFUSED = 0x11
    """Over capacity, draining or still loading models."""
    PROTOCOL = 0x12
    TIMEOUT = 0x13


def _frame(kind: int, payload: bytes) -> bytes:
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"an AudioSocket payload holds at most {MAX_PAYLOAD} bytes")
    return bytes((kind,)) + len(payload).to_bytes(2, "big") + payload


class Hangup(msgspec.Struct, frozen=True, tag="hangup"):
    def __bytes__(self) -> bytes:
        return _frame(Kind.HANGUP, b"")


class CallUuid(msgspec.Struct, frozen=True, tag="uuid"):
    uuid: uuid.UUID

    def __bytes__(self) -> bytes:
        return _frame(Kind.UUID, self.uuid.bytes)


class DtmfDigit(msgspec.Struct, frozen=True, tag="dtmf"):
    digit: str

    def __post_init__(self) -> None:
        if self.digit not in DTMF_DIGITS:
            raise ValueError(f"not a DTMF digit: {self.digit!r}")

    def __bytes__(self) -> bytes:
        return _frame(Kind.DTMF, self.digit.encode("ascii"))


class Audio(msgspec.Struct, frozen=True, tag="audio"):
    """Signed 16-bit little-endian mono samples at `rate` Hz."""

    pcm: bytes
    rate: int = 8_000

    def __post_init__(self) -> None:
        if self.rate not in _KIND_OF_RATE:
            raise ValueError(f"AudioSocket carries no {self.rate} Hz audio")
        if len(self.pcm) % 2:
            raise ValueError(f"16-bit audio has an even number of bytes, got {len(self.pcm)}")

    @property
    def kind(self) -> Kind:
        return _KIND_OF_RATE[self.rate]

    def __bytes__(self) -> bytes:
        return _frame(self.kind, self.pcm)


class Error(msgspec.Struct, frozen=True, tag="error"):
    """The far end reports an error; `code` is application-specific (Asterisk: one byte)."""

    code: bytes = b""

    def __bytes__(self) -> bytes:
        return _frame(Kind.ERROR, self.code)


Message = Hangup | CallUuid | DtmfDigit | Audio | Error


def parse(kind: int, payload: bytes) -> Message:
    """One message from its kind byte and payload; ValueError when they do not fit."""
    if kind == Kind.HANGUP:
        return Hangup()  # a payload, if any, carries nothing for us
    if kind == Kind.UUID:
        if len(payload) != 16:
            raise ValueError(f"a UUID message carries 16 bytes, got {len(payload)}")
        return CallUuid(uuid.UUID(bytes=payload))
    if kind == Kind.DTMF:
        if len(payload) != 1:
            raise ValueError(f"a DTMF message carries 1 byte, got {len(payload)}")
        digit = chr(payload[0])
        if digit not in DTMF_DIGITS:
            raise ValueError(f"a DTMF message carries a digit, got byte 0x{payload[0]:02x}")
        return DtmfDigit(digit)
    if kind == Kind.ERROR:
        return Error(payload)
    rate = _RATE_OF_KIND.get(kind)
    if rate is None:
        raise ValueError(f"unknown AudioSocket message kind 0x{kind:02x}")
    if len(payload) % 2:
        raise ValueError(f"audio of kind 0x{kind:02x} has an odd length {len(payload)}")
    return Audio(payload, rate)


class Framer:
    """Cuts a byte stream into messages. Holds at most one incomplete message between feeds."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    @property
    def pending(self) -> int:
        """Bytes received that do not yet make a whole message."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Message]:
        """Add received bytes; return every message they complete, in order.

        Raises `ValueError` on a malformed message; the stream cannot be resynchronised then.
        """
        self._buffer += data
        messages: list[Message] = []
        start = 0
        buf = self._buffer
        try:
            while len(buf) - start >= HEADER_BYTES:
                kind = buf[start]
                length = int.from_bytes(buf[start + 1 : start + 3], "big")
                end = start + HEADER_BYTES + length
                if len(buf) < end:
                    if kind not in _KNOWN_KINDS:
                        raise ValueError(f"unknown AudioSocket message kind 0x{kind:02x}")
                    break
                messages.append(parse(kind, bytes(buf[start + HEADER_BYTES : end])))
                start = end
        finally:
            del buf[:start]
        return messages
