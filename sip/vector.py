"""A fast path for the conference bridge's callbacks into Python: `MediaFrame` access.

The SWIG wrappers are slow for audio: iterating a `ByteVector` costs about 0.6 us per byte
(400 us per 20 ms frame), building one from `bytes` about 32 us, and each attribute set a few
microseconds. libstdc++ lays a `MediaFrame` out as `{int type; vector<uint8_t> buf (begin,
end, capacity pointers); unsigned size}`, so with ctypes a frame is read with one
`string_at` and written by giving `buf` a 640-byte vector (one C++ copy-assignment) and
copying the samples into it. The layout is checked once against the SWIG accessors; when it
does not hold, the slow SWIG path is used.

`read_frame(frame)` is the frame's audio (or None when it carries none); `write_frame(frame,
pcm)` makes a requested frame carry `pcm` as audio. A frame pjsua2 hands to
`onFrameRequested` is already "no audio" (type NONE, empty), so silence needs no call.
"""

from __future__ import annotations

import ctypes
import functools
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

FrameReader = Callable[[Any], bytes | None]
FrameWriter = Callable[[Any, bytes], None]


class _MediaFrameLayout(ctypes.Structure):
    _fields_ = [  # noqa: RUF012 (ctypes declares fields as a class attribute)
        ("type", ctypes.c_int),
        ("begin", ctypes.c_void_p),
        ("end", ctypes.c_void_p),
        ("capacity", ctypes.c_void_p),
        ("size", ctypes.c_uint),
    ]


class _FastFrames:
    """ctypes access (the layout was checked)."""

    def __init__(self, pj: Any) -> None:
        self._audio = int(pj.PJMEDIA_FRAME_TYPE_AUDIO)
        self._vectors: dict[int, Any] = {}
        self._pj = pj

    def read(self, frame: Any) -> bytes | None:
        f = _MediaFrameLayout.from_address(int(frame.this))
        if f.type != self._audio:
            return None
        begin, end = f.begin or 0, f.end or 0
        return ctypes.string_at(begin, end - begin) if end > begin else b""

    def write(self, frame: Any, pcm: bytes) -> None:
        blank = self._vectors.get(len(pcm))
        if blank is None:
            blank = self._vectors[len(pcm)] = self._pj.ByteVector(bytes(len(pcm)))
        frame.buf = blank  # C++ copy-assignment: the frame owns a buffer of the right size
        f = _MediaFrameLayout.from_address(int(frame.this))
        if pcm:
            ctypes.memmove(f.begin, pcm, len(pcm))
        f.type = self._audio
        f.size = len(pcm)


class _SlowFrames:
    """The SWIG accessors."""

    def __init__(self, pj: Any) -> None:
        self._pj = pj

    def read(self, frame: Any) -> bytes | None:
        if frame.type != self._pj.PJMEDIA_FRAME_TYPE_AUDIO:
            return None
        return bytes(frame.buf)

    def write(self, frame: Any, pcm: bytes) -> None:
        frame.type = self._pj.PJMEDIA_FRAME_TYPE_AUDIO
        frame.buf = self._pj.ByteVector(pcm)
        frame.size = len(pcm)


def _layout_holds(pj: Any) -> bool:
    """Whether ctypes sees what the SWIG accessors see, both ways."""
    probe = bytes(range(256)) * 3
    frame = pj.MediaFrame()
    frame.type = pj.PJMEDIA_FRAME_TYPE_AUDIO
    frame.buf = pj.ByteVector(probe)
    frame.size = 123
    view = _MediaFrameLayout.from_address(int(frame.this))
    if view.type != pj.PJMEDIA_FRAME_TYPE_AUDIO or view.size != 123:
        return False
    if ctypes.string_at(view.begin, (view.end or 0) - (view.begin or 0)) != probe:
        return False
    fast = _FastFrames(pj)
    blank = pj.MediaFrame()
    if blank.type != pj.PJMEDIA_FRAME_TYPE_NONE or fast.read(blank) is not None:
        return False  # a requested frame is not "no audio" unless it is written
    data = bytes(reversed(range(256))) * 2 + bytes(range(128))
    fast.write(blank, data)
    return (
        blank.type == pj.PJMEDIA_FRAME_TYPE_AUDIO
        and blank.size == len(data)
        and bytes(blank.buf) == data
        and fast.read(blank) == data
    )


@functools.cache
def _frames() -> _FastFrames | _SlowFrames:
    import pjsua2

    try:
        if _layout_holds(pjsua2):
            return _FastFrames(pjsua2)
    except (ValueError, TypeError, OSError, AttributeError):
        pass
    return _SlowFrames(pjsua2)


def frame_access() -> tuple[FrameReader, FrameWriter]:
    """(read_frame, write_frame) for this pjsua2 build: the ctypes path when its layout holds."""
    frames = _frames()
    return frames.read, frames.write


def fast_access() -> bool:
    """Whether the ctypes path is in use."""
    return isinstance(_frames(), _FastFrames)


def read_frame(frame: Any) -> bytes | None:
    """The audio a `MediaFrame` carries (a copy), or None when its type is not audio."""
    return _frames().read(frame)


def write_frame(frame: Any, pcm: bytes) -> None:
    """Make a requested `MediaFrame` carry `pcm` as audio."""
    _frames().write(frame, pcm)
