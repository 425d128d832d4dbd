"""WAV reading and writing: round trips, every accepted encoding, and every refusal."""

from __future__ import annotations

import io
import struct
import wave
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from media.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from media.resample import SUPPORTED_RATES, resample
from media.wav import AudioFormatError, decode_wav, encode_wav, read_wav, write_wav


def make_wav(
    pcm: bytes,
    *,
    tag: int = 1,
    channels: int = 1,
    rate: int = 16000,
    bits: int = 16,
    block_align: int | None = None,
    extensible: bool = False,
    data_size: int | None = None,
    before_data: bytes = b"",
) -> bytes:
    """A WAV file built by hand, so tests can say exactly what the header claims."""
    align = block_align if block_align is not None else channels * bits // 8
    fmt = struct.pack(
        "<HHIIHH", 0xFFFE if extensible else tag, channels, rate, rate * align, align, bits
    )
    if extensible:
        guid_tail = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
        fmt += struct.pack("<HHI", 22, bits, 0x4) + struct.pack("<H", tag) + guid_tail
    size = len(pcm) if data_size is None else data_size
    body = (
        b"WAVE"
        + b"fmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + before_data
        + b"data"
        + struct.pack("<I", size)
        + pcm
    )
    return b"RIFF" + struct.pack("<I", len(body)) + body


def sine(rate: int, seconds: float = 0.1, amplitude: float = 8000.0) -> np.ndarray:
    t = np.arange(round(rate * seconds)) / rate
    return np.round(amplitude * np.sin(2 * np.pi * 440 * t)).astype(np.int16)


# --- round trips ---------------------------------------------------------------------------


@given(hnp.arrays(np.int16, st.integers(1, 2000)))
def test_round_trip_at_16k_is_exact(samples: np.ndarray) -> None:
    np.testing.assert_array_equal(read_wav(encode_wav(samples)), samples)


def test_write_then_read_from_a_path(tmp_path: Path) -> None:
    samples = sine(16000)
    path = tmp_path / "a.wav"
    write_wav(path, samples)
    np.testing.assert_array_equal(read_wav(path), samples)
    np.testing.assert_array_equal(read_wav(str(path)), samples)
    np.testing.assert_array_equal(read_wav(bytearray(path.read_bytes())), samples)


@pytest.mark.parametrize("rate", SUPPORTED_RATES)
def test_written_files_are_standard_wavs(rate: int) -> None:
    samples = sine(rate)
    with wave.open(io.BytesIO(encode_wav(samples, rate))) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, rate)
        assert w.readframes(w.getnframes()) == samples.astype("<i2").tobytes()
    assert decode_wav(encode_wav(samples, rate))[1] == rate


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 24000, 44100, 48000])
def test_any_supported_rate_is_converted_to_16k(rate: int) -> None:
    samples = sine(rate, seconds=0.5)
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:  # written by the standard library, not by us
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.astype("<i2").tobytes())
    got = read_wav(buf.getvalue())
    assert got.dtype == np.int16
    assert len(got) == 8000
    np.testing.assert_array_equal(got, resample(samples, rate, 16000))
    # still a 440 Hz sine at the same level
    assert 7900 < np.abs(got[800:-800]).max() <= 8001


def test_8_bit_unsigned_pcm() -> None:
    data = make_wav(bytes([0, 64, 128, 192, 255]), bits=8)
    samples, rate = decode_wav(data)
    assert rate == 16000
    assert samples.tolist() == [-32768, -16384, 0, 16384, 32512]


@pytest.mark.parametrize("dtype", ["<f4", "<f8"])
def test_float_pcm_is_scaled_and_clipped(dtype: str) -> None:
    values = np.array([0.0, 0.5, -0.5, 1.0, -1.0, 2.0, -3.0, np.nan], dtype=dtype)
    data = make_wav(values.tobytes(), tag=3, bits=np.dtype(dtype).itemsize * 8)
    samples, _ = decode_wav(data)
    assert samples.tolist() == [0, 16384, -16384, 32767, -32768, 32767, -32768, 0]


def test_g711_wavs() -> None:
    x = sine(8000)
    alaw = make_wav(alaw_encode(x), tag=6, bits=8, rate=8000)
    ulaw = make_wav(ulaw_encode(x), tag=7, bits=8, rate=8000)
    np.testing.assert_array_equal(decode_wav(alaw)[0], alaw_decode(alaw_encode(x)))
    np.testing.assert_array_equal(decode_wav(ulaw)[0], ulaw_decode(ulaw_encode(x)))
    assert len(read_wav(ulaw)) == 2 * len(x)


def test_extensible_format() -> None:
    x = sine(16000)
    data = make_wav(x.astype("<i2").tobytes(), extensible=True)
    np.testing.assert_array_equal(read_wav(data), x)
    floats = (x / 32768.0).astype("<f4")
    data = make_wav(floats.tobytes(), tag=3, bits=32, extensible=True)
    np.testing.assert_array_equal(read_wav(data), x)


def test_other_chunks_are_skipped_including_odd_sized_ones() -> None:
    x = sine(16000, seconds=0.01)
    odd = b"LIST" + struct.pack("<I", 5) + b"hello" + b"\x00"  # padded to even
    data = make_wav(x.astype("<i2").tobytes(), before_data=odd + b"fact" + struct.pack("<II", 4, 7))
    np.testing.assert_array_equal(read_wav(data), x)


# --- refusals ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [b"", b"RIFF", b"hello, this is not a wav file", b"RIFF\x00\x00\x00\x00AVI LIST", b"\x00" * 64],
)
def test_not_a_wav(data: bytes) -> None:
    with pytest.raises(AudioFormatError, match="not a WAV file: no RIFF/WAVE header"):
        read_wav(data)


def test_big_endian_and_rf64_variants() -> None:
    with pytest.raises(AudioFormatError, match="unsupported WAV variant RIFX"):
        read_wav(b"RIFX" + make_wav(b"\x00\x00")[4:])
    with pytest.raises(AudioFormatError, match="unsupported WAV variant RF64"):
        read_wav(b"RF64" + make_wav(b"\x00\x00")[4:])


def test_truncated_data_chunk() -> None:
    data = make_wav(bytes(500), data_size=1000)
    # the standard library reads this without complaint ...
    with wave.open(io.BytesIO(data)) as w:
        assert len(w.readframes(w.getnframes())) == 500
    # ... we do not
    with pytest.raises(
        AudioFormatError,
        match="truncated WAV: 'data' chunk declares 1000 bytes but only 500 are present",
    ):
        read_wav(data)


def test_file_cut_inside_the_header() -> None:
    full = make_wav(sine(16000).astype("<i2").tobytes())
    with pytest.raises(AudioFormatError, match="'fmt' chunk declares 16 bytes but only 6"):
        read_wav(full[:26])
    with pytest.raises(AudioFormatError, match="truncated or malformed WAV: no data chunk"):
        read_wav(full[:36])
    with pytest.raises(AudioFormatError, match="truncated or malformed WAV: no fmt chunk"):
        read_wav(full[:12])


def test_partial_sample() -> None:
    with pytest.raises(AudioFormatError, match="not a whole number of 2-byte samples"):
        read_wav(make_wav(bytes(3)))


def test_empty() -> None:
    with pytest.raises(AudioFormatError, match="WAV file has no samples"):
        read_wav(make_wav(b""))
    with pytest.raises(ValueError, match="no samples"):
        read_wav(encode_wav(np.zeros(0, dtype=np.int16)))


@pytest.mark.parametrize("channels", [2, 6])
def test_multichannel(channels: int) -> None:
    with pytest.raises(AudioFormatError, match=f"expected mono, got {channels} channels"):
        read_wav(make_wav(bytes(4 * channels), channels=channels))


@pytest.mark.parametrize("rate", [11025, 32000, 96000, 0])
def test_unsupported_rate(rate: int) -> None:
    with pytest.raises(AudioFormatError, match=f"unsupported sample rate {rate} Hz"):
        read_wav(make_wav(bytes(4), rate=rate))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"bits": 24}, "unsupported WAV sample format: 24-bit PCM"),
        ({"bits": 32}, "unsupported WAV sample format: 32-bit PCM"),
        ({"tag": 3, "bits": 16}, "unsupported WAV sample format: 16-bit float"),
        ({"tag": 2, "bits": 4}, r"Microsoft ADPCM \(tag 0x0002\)"),
        ({"tag": 0x55, "bits": 0}, r"MP3 \(tag 0x0055\)"),
        ({"tag": 0x1234, "bits": 16}, r"unknown \(tag 0x1234\)"),
        ({"tag": 0x11, "bits": 4, "extensible": True}, r"IMA ADPCM \(tag 0x0011\)"),
    ],
)
def test_unsupported_encodings(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(AudioFormatError, match=message):
        read_wav(make_wav(bytes(12), **kwargs))  # type: ignore[arg-type]


def test_inconsistent_block_align() -> None:
    with pytest.raises(AudioFormatError, match="block align 4 for mono 16-bit PCM"):
        read_wav(make_wav(bytes(8), block_align=4))


def test_short_fmt_chunk() -> None:
    body = (
        b"WAVE"
        + b"fmt "
        + struct.pack("<I", 8)
        + bytes(8)
        + b"data"
        + struct.pack("<I", 2)
        + b"\x00\x00"
    )
    with pytest.raises(AudioFormatError, match="fmt chunk is 8 bytes, expected >= 16"):
        read_wav(b"RIFF" + struct.pack("<I", len(body)) + body)


def test_errors_are_value_errors() -> None:
    assert issubclass(AudioFormatError, ValueError)


def test_write_refuses_bad_input(tmp_path: Path) -> None:
    with pytest.raises(
        AudioFormatError, match="cannot write a WAV file at an unsupported sample rate 11025"
    ):
        write_wav(tmp_path / "x.wav", np.zeros(10, dtype=np.int16), rate=11025)
    with pytest.raises(ValueError, match="expected int16 samples, got dtype float64"):
        write_wav(tmp_path / "x.wav", np.zeros(10))
    assert not (tmp_path / "x.wav").exists()
