"""G.711 mu-law and A-law, vectorised with lookup tables.

Encoding looks every int16 sample up in a 65536-entry table (indexed by the sample's bit pattern
as uint16); decoding looks every code up in a 256-entry table. The tables are built once at
import, bit-exact with the classic Sun Microsystems `g711.c` reference:

- mu-law: `linear2ulaw` on 16-bit input with BIAS 0x84 and CLIP 32635 (sign-magnitude, so
  -x and x encode to codes that differ only in the sign bit); `ulaw2linear`.
- A-law: `linear2alaw` on the top 13 bits (negative values in one's complement, the form ITU-T
  G.191 uses); `alaw2linear`.

Codes are the wire bytes (the even-bit inversion of A-law and the bit inversion of mu-law are
included), ready for an RTP payload of type 0 (PCMU) or 8 (PCMA).
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = ["alaw_decode", "alaw_encode", "ulaw_decode", "ulaw_encode"]

_BIAS: Final = 0x84
_CLIP: Final = 32635


def _all_int16() -> npt.NDArray[np.int32]:
    """Every int16 value, ordered by its bit pattern read as uint16 (the table index)."""
    return np.arange(65536, dtype=np.uint32).astype(np.uint16).view(np.int16).astype(np.int32)


def _exponent(values: npt.NDArray[np.int32]) -> npt.NDArray[np.int32]:
    """floor(log2(v)) + 1 for v > 0, exactly (frexp's exponent)."""
    return np.frexp(values.astype(np.float64))[1].astype(np.int32)


def _ulaw_encode_table() -> npt.NDArray[np.uint8]:
    v = _all_int16()
    mask = np.where(v < 0, 0x7F, 0xFF)
    mag = np.minimum(np.abs(v), _CLIP) + _BIAS  # 132 ..= 32767
    seg = _exponent(mag) - 8  # 0 ..= 7: 0x80..0xFF is segment 0
    mantissa = (mag >> (seg + 3)) & 0x0F
    return (((seg << 4) | mantissa) ^ mask).astype(np.uint8)


def _ulaw_decode_table() -> npt.NDArray[np.int16]:
    code = ~np.arange(256, dtype=np.int32) & 0xFF
    t = (((code & 0x0F) << 3) + _BIAS) << ((code & 0x70) >> 4)
    return np.where(code & 0x80, _BIAS - t, t - _BIAS).astype(np.int16)


def _alaw_encode_table() -> npt.NDArray[np.uint8]:
    v = _all_int16() >> 3  # 13-bit
    mask = np.where(v >= 0, 0xD5, 0x55)
    mag = np.where(v >= 0, v, ~v)  # 0 ..= 4095
    seg = np.where(mag < 0x20, 0, _exponent(np.maximum(mag, 1)) - 5)  # 0 ..= 7
    quant = np.where(seg < 2, mag >> 1, mag >> seg) & 0x0F
    return (((seg << 4) | quant) ^ mask).astype(np.uint8)


def _alaw_decode_table() -> npt.NDArray[np.int16]:
    code = np.arange(256, dtype=np.int32) ^ 0x55
    t = (code & 0x0F) << 4
    seg = (code & 0x70) >> 4
    t = np.where(seg == 0, t + 8, (t + 0x108) << np.maximum(seg - 1, 0))
    return np.where(code & 0x80, t, -t).astype(np.int16)


_ULAW_ENCODE: Final = _ulaw_encode_table()
_ULAW_DECODE: Final = _ulaw_decode_table()
_ALAW_ENCODE: Final = _alaw_encode_table()
_ALAW_DECODE: Final = _alaw_decode_table()
for _table in (_ULAW_ENCODE, _ULAW_DECODE, _ALAW_ENCODE, _ALAW_DECODE):
    _table.flags.writeable = False


def _index(samples: npt.ArrayLike) -> npt.NDArray[np.uint16]:
    arr = np.asarray(samples)
    if arr.dtype.kind != "i" or arr.dtype.itemsize != 2:
        raise ValueError(f"G.711 encodes int16 samples, got dtype {arr.dtype}")
    if arr.ndim != 1:
        raise ValueError(f"G.711 encodes a 1-D array of samples, got shape {arr.shape}")
    return arr.astype(np.int16, copy=False).view(np.uint16)


def _codes(data: bytes | bytearray | memoryview) -> npt.NDArray[np.uint8]:
    return np.frombuffer(data, dtype=np.uint8)


def ulaw_encode(samples: npt.ArrayLike) -> bytes:
    """int16 samples (1-D) -> one mu-law byte per sample."""
    return _ULAW_ENCODE[_index(samples)].tobytes()


def ulaw_decode(data: bytes | bytearray | memoryview) -> npt.NDArray[np.int16]:
    """mu-law bytes -> int16 samples (a new, writable array)."""
    return _ULAW_DECODE[_codes(data)]


def alaw_encode(samples: npt.ArrayLike) -> bytes:
    """int16 samples (1-D) -> one A-law byte per sample."""
    return _ALAW_ENCODE[_index(samples)].tobytes()


def alaw_decode(data: bytes | bytearray | memoryview) -> npt.NDArray[np.int16]:
    """A-law bytes -> int16 samples (a new, writable array)."""
    return _ALAW_DECODE[_codes(data)]
