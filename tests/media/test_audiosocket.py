"""The AudioSocket wire format: exact bytes, parsing, and a framer fed arbitrary fragments."""

from __future__ import annotations

import struct
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from media.audiosocket import (
    MAX_PAYLOAD,
    Audio,
    CallUuid,
    DtmfDigit,
    Error,
    Framer,
    Hangup,
    Kind,
    Message,
    parse,
)

U = uuid.UUID("40325ec2-5efd-4bd3-805f-53576e581d13")


def test_bytes_on_the_wire_match_the_protocol() -> None:
    assert bytes(Hangup()) == b"\x00\x00\x00"
    assert bytes(CallUuid(U)) == b"\x01\x00\x10" + U.bytes
    assert bytes(DtmfDigit("#")) == b"\x03\x00\x01#"
    assert bytes(Audio(b"\x01\x02" * 160)) == b"\x10\x01\x40" + b"\x01\x02" * 160
    assert bytes(Error(b"\x01")) == b"\xff\x00\x01\x01"
    # The higher-rate kinds of recent Asterisk versions (docs.asterisk.org, AudioSocket).
    rates = {8000: 0x10, 12000: 0x11, 16000: 0x12, 24000: 0x13, 32000: 0x14}
    rates |= {44100: 0x15, 48000: 0x16, 96000: 0x17, 192000: 0x18}
    for rate, kind in rates.items():
        assert bytes(Audio(b"\0\0", rate))[:3] == bytes((kind, 0, 2))
        assert parse(kind, b"\0\0") == Audio(b"\0\0", rate)


def test_parse_rejects_what_does_not_fit_with_a_specific_message() -> None:
    with pytest.raises(ValueError, match="UUID message carries 16 bytes, got 15"):
        parse(Kind.UUID, bytes(15))
    with pytest.raises(ValueError, match="DTMF message carries 1 byte, got 2"):
        parse(Kind.DTMF, b"12")
    with pytest.raises(ValueError, match="carries a digit, got byte 0x78"):
        parse(Kind.DTMF, b"x")
    with pytest.raises(ValueError, match="kind 0x10 has an odd length 3"):
        parse(Kind.AUDIO_8K, b"abc")
    with pytest.raises(ValueError, match="unknown AudioSocket message kind 0x02"):
        parse(0x02, b"")
    with pytest.raises(ValueError, match="no 11025 Hz audio"):
        Audio(b"", 11025)
    with pytest.raises(ValueError, match="at most 65535 bytes"):
        bytes(Audio(bytes(MAX_PAYLOAD + 1)))


def test_zero_and_maximal_lengths() -> None:
    framer = Framer()
    data = b"\x00\x00\x00" + b"\xff\x00\x00" + b"\x10\x00\x00"
    data += b"\xff\xff\xff" + bytes(range(256)) * 255 + bytes(255)
    data += b"\x10\xff\xfe" + bytes(MAX_PAYLOAD - 1)
    got = framer.feed(data)
    assert got == [
        Hangup(),
        Error(b""),
        Audio(b""),
        Error(bytes(range(256)) * 255 + bytes(255)),
        Audio(bytes(MAX_PAYLOAD - 1)),
    ]
    assert framer.pending == 0
    with pytest.raises(ValueError, match="odd length 65535"):
        Framer().feed(b"\x10\xff\xff" + bytes(MAX_PAYLOAD))


def test_an_unknown_kind_is_refused_from_its_header_alone() -> None:
    framer = Framer()
    assert framer.feed(b"\x10\x00") == []
    with pytest.raises(ValueError, match="unknown AudioSocket message kind 0x42"):
        Framer().feed(b"\x42\xff\xff")  # no waiting for 64 KiB that will never make sense


def _messages() -> st.SearchStrategy[Message]:
    rates = st.sampled_from([8000, 12000, 16000, 24000, 32000, 44100, 48000, 96000, 192000])
    pcm = st.binary(max_size=1200).map(lambda b: b[: len(b) // 2 * 2])
    return st.one_of(
        st.just(Hangup()),
        st.uuids().map(CallUuid),
        st.sampled_from("0123456789*#ABCD").map(DtmfDigit),
        st.builds(Audio, pcm, rates),
        st.binary(max_size=8).map(Error),
    )


@given(st.lists(_messages(), max_size=20), st.data())
def test_any_fragmentation_gives_back_the_same_messages(
    msgs: list[Message], data: st.DataObject
) -> None:
    stream = b"".join(bytes(m) for m in msgs)
    framer = Framer()
    got: list[Message] = []
    at = 0
    while at < len(stream):
        size = data.draw(st.integers(1, max(1, len(stream) - at)), label="fragment")
        got += framer.feed(stream[at : at + size])
        at += size
    assert got == msgs
    assert framer.pending == 0


@given(st.lists(_messages(), min_size=1, max_size=10))
def test_byte_by_byte(msgs: list[Message]) -> None:
    stream = b"".join(bytes(m) for m in msgs)
    framer = Framer()
    got = [m for i in range(len(stream)) for m in framer.feed(stream[i : i + 1])]
    assert got == msgs


@given(st.integers(0, 255).filter(lambda k: k not in {int(x) for x in Kind}), st.binary(max_size=4))
def test_unknown_kinds_raise(kind: int, tail: bytes) -> None:
    with pytest.raises(ValueError, match=f"unknown AudioSocket message kind 0x{kind:02x}"):
        Framer().feed(struct.pack(">BH", kind, len(tail)) + tail)
