"""G.711 against a scalar port of the Sun Microsystems g711.c reference, over every input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from media.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode

# --- scalar reference (Sun Microsystems g711.c, as widely redistributed) ---------------------

SIGN_BIT = 0x80
QUANT_MASK = 0x0F
SEG_SHIFT = 4
SEG_MASK = 0x70
BIAS = 0x84
CLIP = 32635
SEG_END = (0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF, 0x3FFF, 0x7FFF)
SEG_AEND = (0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF)


def search(val: int, table: tuple[int, ...]) -> int:
    for i, end in enumerate(table):
        if val <= end:
            return i
    return len(table)


def ref_linear2ulaw(pcm_val: int) -> int:
    if pcm_val < 0:
        pcm_val = -pcm_val
        mask = 0x7F
    else:
        mask = 0xFF
    if pcm_val > CLIP:
        pcm_val = CLIP
    pcm_val += BIAS
    seg = search(pcm_val, SEG_END)
    if seg >= 8:
        return 0x7F ^ mask
    uval = (seg << 4) | ((pcm_val >> (seg + 3)) & 0x0F)
    return uval ^ mask


def ref_ulaw2linear(u_val: int) -> int:
    u_val = ~u_val & 0xFF
    t = ((u_val & QUANT_MASK) << 3) + BIAS
    t <<= (u_val & SEG_MASK) >> SEG_SHIFT
    return BIAS - t if u_val & SIGN_BIT else t - BIAS


def ref_linear2alaw(pcm_val: int) -> int:
    pcm_val = pcm_val >> 3
    if pcm_val >= 0:
        mask = 0xD5
    else:
        mask = 0x55
        pcm_val = -pcm_val - 1
    seg = search(pcm_val, SEG_AEND)
    if seg >= 8:
        return 0x7F ^ mask
    aval = seg << SEG_SHIFT
    if seg < 2:
        aval |= (pcm_val >> 1) & QUANT_MASK
    else:
        aval |= (pcm_val >> seg) & QUANT_MASK
    return aval ^ mask


def ref_alaw2linear(a_val: int) -> int:
    a_val ^= 0x55
    t = (a_val & QUANT_MASK) << 4
    seg = (a_val & SEG_MASK) >> SEG_SHIFT
    if seg == 0:
        t += 8
    elif seg == 1:
        t += 0x108
    else:
        t += 0x108
        t <<= seg - 1
    return t if a_val & SIGN_BIT else -t


def ref_g191_alaw_compress(lin: int) -> int:
    """ITU-T G.191 (STL) alaw_compress, to show the Sun A-law port is the ITU one."""
    ix = (~lin if lin < 0 else lin) >> 4
    if ix > 15:
        iexp = 1
        while ix > 16 + 15:
            ix >>= 1
            iexp += 1
        ix -= 16
        ix += iexp << 4
    if lin >= 0:
        ix |= 0x80
    return ix ^ 0x55


ALL_INT16 = np.arange(-32768, 32768, dtype=np.int32).astype(np.int16)
ALL_CODES = bytes(range(256))


# --- exhaustive comparison ----------------------------------------------------------------


def test_ulaw_encode_matches_reference_for_every_int16() -> None:
    expected = bytes(ref_linear2ulaw(int(v)) for v in ALL_INT16)
    assert ulaw_encode(ALL_INT16) == expected


def test_ulaw_decode_matches_reference_for_every_code() -> None:
    expected = np.array([ref_ulaw2linear(c) for c in ALL_CODES], dtype=np.int16)
    np.testing.assert_array_equal(ulaw_decode(ALL_CODES), expected)


def test_alaw_encode_matches_reference_for_every_int16() -> None:
    expected = bytes(ref_linear2alaw(int(v)) for v in ALL_INT16)
    assert alaw_encode(ALL_INT16) == expected


def test_alaw_reference_is_the_itu_g191_algorithm() -> None:
    assert all(ref_linear2alaw(int(v)) == ref_g191_alaw_compress(int(v)) for v in ALL_INT16)


def test_alaw_decode_matches_reference_for_every_code() -> None:
    expected = np.array([ref_alaw2linear(c) for c in ALL_CODES], dtype=np.int16)
    np.testing.assert_array_equal(alaw_decode(ALL_CODES), expected)


@pytest.mark.parametrize(
    ("sample", "ulaw", "alaw"),
    [(0, 0xFF, 0xD5), (32767, 0x80, 0xAA), (-32768, 0x00, 0x2A), (-1, 0x7F, 0x55)],
)
def test_well_known_codes(sample: int, ulaw: int, alaw: int) -> None:
    samples = np.array([sample], dtype=np.int16)
    assert ulaw_encode(samples) == bytes([ulaw])
    assert alaw_encode(samples) == bytes([alaw])


def test_well_known_levels() -> None:
    assert ulaw_decode(b"\x80\x00\xff\x7f").tolist() == [32124, -32124, 0, 0]
    assert alaw_decode(b"\xaa\x2a\xd5\x55").tolist() == [32256, -32256, 8, -8]


# --- properties ---------------------------------------------------------------------------


def test_every_code_survives_decode_then_encode() -> None:
    assert alaw_encode(alaw_decode(ALL_CODES)) == ALL_CODES
    # mu-law has two zeros: 0x7F ("-0") decodes to 0, which encodes as 0xFF ("+0").
    expected = bytearray(ALL_CODES)
    expected[0x7F] = 0xFF
    assert ulaw_encode(ulaw_decode(ALL_CODES)) == bytes(expected)


@given(hnp.arrays(np.int16, st.integers(0, 400)))
def test_round_trip_error_is_within_half_a_quantisation_step(samples: np.ndarray) -> None:
    x = samples.astype(np.int32)
    for encode, decode in ((ulaw_encode, ulaw_decode), (alaw_encode, alaw_decode)):
        y = decode(encode(samples)).astype(np.int32)
        assert y.shape == x.shape
        err = np.abs(y - x)
        # the step doubles with each segment: half a step is about 3 % of the level ...
        unclipped = np.abs(x) < 32000
        assert np.all(err[unclipped] <= np.abs(x[unclipped]) / 32 + 8)
        # ... and the loudest codes sit a little below full scale
        assert np.all(err <= 644)
        assert np.all((np.sign(y) == np.sign(x)) | (np.abs(x) < 16))


def test_encode_is_monotonic() -> None:
    decoded = ulaw_decode(ulaw_encode(ALL_INT16)).astype(np.int32)
    assert np.all(np.diff(decoded) >= 0)
    decoded = alaw_decode(alaw_encode(ALL_INT16)).astype(np.int32)
    assert np.all(np.diff(decoded) >= 0)


def test_decode_accepts_bytearray_and_memoryview() -> None:
    data = bytes(range(0, 256, 7))
    expected = ulaw_decode(data)
    np.testing.assert_array_equal(ulaw_decode(bytearray(data)), expected)
    np.testing.assert_array_equal(ulaw_decode(memoryview(data)), expected)
    assert ulaw_decode(b"").dtype == np.int16
    assert ulaw_decode(b"").size == 0


def test_decoded_arrays_are_writable_copies() -> None:
    out = alaw_decode(b"\xd5\xd5")
    out[0] = 1
    assert alaw_decode(b"\xd5\xd5").tolist() == [8, 8]


def test_encode_accepts_non_native_byte_order_and_lists() -> None:
    samples = np.array([1000, -1000, 32000], dtype=">i2")
    assert ulaw_encode(samples) == ulaw_encode(samples.astype(np.int16))
    assert alaw_encode(np.array([5, -5], dtype=np.int16)) == alaw_encode(
        np.asarray([5, -5], dtype=np.int16)
    )


@pytest.mark.parametrize("encode", [ulaw_encode, alaw_encode])
def test_encode_rejects_other_dtypes_and_shapes(encode: object) -> None:
    assert callable(encode)
    with pytest.raises(ValueError, match="int16 samples, got dtype float32"):
        encode(np.zeros(4, dtype=np.float32))
    with pytest.raises(ValueError, match="int16 samples, got dtype int32"):
        encode(np.zeros(4, dtype=np.int32))
    with pytest.raises(ValueError, match=r"1-D array of samples, got shape \(2, 2\)"):
        encode(np.zeros((2, 2), dtype=np.int16))
