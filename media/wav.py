"""WAV files in and out: any supported mono WAV in, 16 kHz int16 out.

The RIFF parser is our own (sans-IO: `decode_wav(data)` works on bytes): Python's `wave`
module accepts a file whose data chunk is shorter than its header says, and knows nothing of
float or G.711 WAVs. Accepted encodings: 8-bit unsigned and 16-bit signed PCM, 32- and 64-bit
IEEE float, 8-bit A-law and mu-law, each plain or as WAVE_FORMAT_EXTENSIBLE; mono only, at one
of `SUPPORTED_RATES`. Anything else raises `AudioFormatError` saying what is wrong.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from media.frames import SAMPLE_RATE
from media.g711 import alaw_decode, ulaw_decode
from media.resample import UnsupportedRateError, as_samples, check_rate, resample

__all__ = ["AudioFormatError", "WavFormat", "decode_wav", "encode_wav", "read_wav", "write_wav"]

Samples = npt.NDArray[np.int16]

PCM: Final = 0x0001
IEEE_FLOAT: Final = 0x0003
ALAW: Final = 0x0006
MULAW: Final = 0x0007
EXTENSIBLE: Final = 0xFFFE

_KNOWN_TAGS: Final = {
    0x0002: "Microsoft ADPCM",
    0x0011: "IMA ADPCM",
    0x0031: "GSM 6.10",
    0x0050: "MPEG",
    0x0055: "MP3",
    0x00FF: "AAC",
}
_SUPPORTED: Final = "8/16-bit PCM, 32/64-bit float, 8-bit A-law/mu-law"


class AudioFormatError(ValueError):
    """Audio bytes that are not, or not a supported kind of, WAV."""


@dataclass(frozen=True, slots=True)
class WavFormat:
    """What a WAV's fmt chunk says (the format tag of an extensible WAV is its sub-format)."""

    tag: int
    channels: int
    rate: int
    bits: int
    block_align: int

    @property
    def description(self) -> str:
        match self.tag:
            case 0x0001:
                return f"{self.bits}-bit PCM"
            case 0x0003:
                return f"{self.bits}-bit float"
            case 0x0006:
                return f"{self.bits}-bit A-law"
            case 0x0007:
                return f"{self.bits}-bit mu-law"
            case tag:
                return f"compressed format {_KNOWN_TAGS.get(tag, 'unknown')} (tag 0x{tag:04x})"


def _parse_fmt(body: bytes) -> WavFormat:
    if len(body) < 16:
        raise AudioFormatError(f"malformed WAV: fmt chunk is {len(body)} bytes, expected >= 16")
    tag, channels, rate, _byte_rate, block_align, bits = struct.unpack_from("<HHIIHH", body)
    if tag == EXTENSIBLE:
        if len(body) < 26:
            raise AudioFormatError(
                f"malformed WAV: extensible fmt chunk is {len(body)} bytes, expected 40"
            )
        (tag,) = struct.unpack_from("<H", body, 24)  # first two bytes of the sub-format GUID
    return WavFormat(tag, channels, rate, bits, block_align)


def _chunks(data: bytes) -> tuple[WavFormat, bytes]:
    """The fmt and data chunks of a RIFF/WAVE file, checking every size against the bytes."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        if data[:4] in (b"RIFX", b"RF64"):
            raise AudioFormatError(f"unsupported WAV variant {data[:4].decode()}")
        raise AudioFormatError("not a WAV file: no RIFF/WAVE header")
    fmt: WavFormat | None = None
    pcm: bytes | None = None
    pos = 12
    while pos + 8 <= len(data) and (fmt is None or pcm is None):
        chunk_id = data[pos : pos + 4]
        (size,) = struct.unpack_from("<I", data, pos + 4)
        body = data[pos + 8 : pos + 8 + size]
        if len(body) < size:
            name = chunk_id.decode("latin-1").strip()
            raise AudioFormatError(
                f"truncated WAV: {name!r} chunk declares {size} bytes but only {len(body)} "
                "are present"
            )
        if chunk_id == b"fmt ":
            fmt = _parse_fmt(body)
        elif chunk_id == b"data":
            pcm = body
        pos += 8 + size + (size & 1)
    if fmt is None:
        raise AudioFormatError("truncated or malformed WAV: no fmt chunk")
    if pcm is None:
        raise AudioFormatError("truncated or malformed WAV: no data chunk")
    return fmt, pcm


def _dtype(fmt: WavFormat) -> str | None:
    """numpy dtype of one sample, or None if the encoding is not supported."""
    match (fmt.tag, fmt.bits):
        case (0x0001, 8):
            return "u1"
        case (0x0001, 16):
            return "<i2"
        case (0x0003, 32):
            return "<f4"
        case (0x0003, 64):
            return "<f8"
        case (0x0006, 8) | (0x0007, 8):  # A-law, mu-law
            return "u1"
        case _:
            return None


def decode_wav(data: bytes) -> tuple[Samples, int]:
    """A mono WAV's samples as int16 at the file's own rate, and that rate."""
    fmt, pcm = _chunks(data)
    dtype = _dtype(fmt)
    if dtype is None:
        raise AudioFormatError(f"unsupported WAV sample format: {fmt.description} ({_SUPPORTED})")
    if fmt.channels != 1:
        raise AudioFormatError(f"expected mono, got {fmt.channels} channels")
    try:
        rate = check_rate(fmt.rate)
    except UnsupportedRateError as exc:
        raise AudioFormatError(f"WAV file has an {exc}") from exc
    width = fmt.bits // 8
    if fmt.block_align != width:
        raise AudioFormatError(
            f"malformed WAV: block align {fmt.block_align} for mono {fmt.description}"
        )
    if not pcm:
        raise AudioFormatError("WAV file has no samples")
    if len(pcm) % width:
        raise AudioFormatError(
            f"truncated WAV: data chunk holds {len(pcm)} bytes, not a whole number of "
            f"{width}-byte samples"
        )
    return _to_int16(fmt.tag, np.frombuffer(pcm, dtype=dtype), pcm), rate


def _to_int16(tag: int, raw: npt.NDArray[np.generic], pcm: bytes) -> Samples:
    if tag == ALAW:
        return alaw_decode(pcm)
    if tag == MULAW:
        return ulaw_decode(pcm)
    if tag == IEEE_FLOAT:
        scaled = np.nan_to_num(raw.astype(np.float64), nan=0.0) * 32768.0
        return np.clip(np.rint(scaled), -32768, 32767).astype(np.int16)
    if raw.dtype == np.uint8:  # 8-bit PCM is unsigned, centred on 128
        return ((raw.astype(np.int16) - 128) << 8).astype(np.int16)
    return raw.astype(np.int16)


def read_wav(source: str | os.PathLike[str] | bytes | bytearray | memoryview) -> Samples:
    """Read a mono WAV file (a path, or the file's bytes) as 16 kHz int16 samples."""
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
    else:
        data = Path(source).read_bytes()
    samples, rate = decode_wav(data)
    return resample(samples, rate, SAMPLE_RATE) if rate != SAMPLE_RATE else samples


def encode_wav(samples: npt.ArrayLike, rate: int = SAMPLE_RATE) -> bytes:
    """A 16-bit PCM mono WAV file of int16 `samples` at `rate` (one of `SUPPORTED_RATES`)."""
    pcm = as_samples(samples).astype("<i2").tobytes()
    try:
        rate = check_rate(rate)
    except UnsupportedRateError as exc:
        raise AudioFormatError(f"cannot write a WAV file at an {exc}") from exc
    fmt = struct.pack("<HHIIHH", PCM, 1, rate, rate * 2, 2, 16)
    chunks = [
        b"fmt " + struct.pack("<I", len(fmt)) + fmt,
        b"data" + struct.pack("<I", len(pcm)) + pcm,
    ]
    body = b"WAVE" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def write_wav(
    path: str | os.PathLike[str], samples: npt.ArrayLike, rate: int = SAMPLE_RATE
) -> None:
    """Write int16 `samples` as a 16-bit PCM mono WAV file at `rate`."""
    Path(path).write_bytes(encode_wav(samples, rate))
