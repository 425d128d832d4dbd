"""Two-channel call recording, sans-IO: the caller and the agent on one timeline.

`StereoTimeline` is fed each channel's 20 ms frames with their media time (seconds on one
clock for both channels) and gives back interleaved stereo int16 PCM (left: the caller, right:
the agent) at 16 kHz. A frame lands at the slot its time names, so the channels stay aligned
whatever order and rate they arrive in; a slot a channel did not fill (the agent silent, a
packet lost) is silence. Output waits `lag_frames` behind the newest frame either channel has
given, so that the slower channel's frames of the same moment still make it; a frame that comes
later than that (its slot already written) is dropped and counted in `late_frames`.

Pause and resume mute both channels from the pause's media time to the resume's: the slots
are written as silence, so the timeline keeps its length, and the spans are kept as metadata
(`pauses`). A pause only mutes slots not yet written: one that names a time already written
takes effect from the first slot still pending.

`wav_header` is the 44-byte header of a stereo 16-bit 16 kHz WAV holding `data_bytes` of
samples; a file written while the call runs rewrites it on each flush (`media/recording_file.py`).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Final, Literal

import msgspec
import numpy as np

from media.frames import FRAME_BYTES, FRAME_MS, FRAME_SAMPLES, SAMPLE_RATE

__all__ = [
    "CHANNELS",
    "CHUNK_FRAMES",
    "STEREO_FRAME_BYTES",
    "Channel",
    "PauseSpan",
    "StereoTimeline",
    "wav_header",
]

Channel = Literal["caller", "agent"]
CHANNELS: Final[tuple[Channel, Channel]] = ("caller", "agent")
"""The channels in the file's order: left, right."""
FRAME_S: Final = FRAME_MS / 1000
STEREO_FRAME_BYTES: Final = FRAME_BYTES * 2
CHUNK_FRAMES: Final = 50
"""Slots per chunk `drain` yields (1 s): a long gap is written a second at a time."""
WAV_HEADER_BYTES: Final = 44
WAV_MAX_DATA_BYTES: Final = 0xFFFFFFFF - 36


class PauseSpan(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A muted stretch, in seconds from the start of the recording; `end_s` None: still on."""

    start_s: float
    end_s: float | None = None


class StereoTimeline:
    """Aligns the caller's and the agent's frames into stereo PCM (see the module docstring)."""

    def __init__(self, *, start_s: float, lag_frames: int = 10) -> None:
        if lag_frames < 0:
            raise ValueError(f"lag_frames must be >= 0, got {lag_frames}")
        self._start_s = start_s
        self._lag = lag_frames
        self._next = 0
        """The next slot to write."""
        self._head = -1
        """The newest slot either channel has filled."""
        self._pending: dict[Channel, dict[int, bytes]] = {"caller": {}, "agent": {}}
        self._pauses: list[PauseSpan] = []
        self.late_frames = 0
        """Frames dropped because their slot had already been written."""

    @property
    def written_s(self) -> float:
        """Media time written so far (seconds from the start)."""
        return self._next * FRAME_S

    @property
    def pauses(self) -> tuple[PauseSpan, ...]:
        return tuple(self._pauses)

    @property
    def paused(self) -> bool:
        return bool(self._pauses) and self._pauses[-1].end_s is None

    def feed(self, channel: Channel, at_s: float, pcm: bytes) -> None:
        """One 20 ms frame of `channel` that starts at media time `at_s`."""
        if len(pcm) != FRAME_BYTES:
            raise ValueError(f"a frame holds {FRAME_BYTES} bytes, got {len(pcm)}")
        slot = round((at_s - self._start_s) / FRAME_S)
        if slot < self._next:
            self.late_frames += 1
            return
        self._pending[channel][slot] = pcm
        self._head = max(self._head, slot)

    def retract(self, channel: Channel, from_s: float) -> int:
        """Take back `channel`'s frames from media time `from_s` on that are not written yet
        (agent audio dropped before it was played, at a barge-in); how many."""
        first = max(round((from_s - self._start_s) / FRAME_S), self._next)
        gone = [slot for slot in self._pending[channel] if slot >= first]
        for slot in gone:
            del self._pending[channel][slot]
        return len(gone)

    def pause(self, at_s: float) -> bool:
        """Mute from `at_s` on; False if already paused."""
        if self.paused:
            return False
        start = max(at_s - self._start_s, self.written_s)
        self._pauses.append(PauseSpan(round(start, 3)))
        return True

    def resume(self, at_s: float) -> bool:
        """Unmute from `at_s` on; False if not paused."""
        if not self.paused:
            return False
        last = self._pauses[-1]
        end = max(at_s - self._start_s, self.written_s, last.start_s)
        self._pauses[-1] = PauseSpan(last.start_s, round(end, 3))
        return True

    def drain(self, *, final: bool = False) -> Iterator[bytes]:
        """Stereo PCM ready to write, a chunk at a time: the slots `lag_frames` behind the
        newest, or (`final`) every slot up to the newest."""
        until = self._head + 1 if final else self._head + 1 - self._lag
        while self._next < until:
            end = min(until, self._next + CHUNK_FRAMES)
            yield self._render(self._next, end)
            self._next = end

    def _render(self, first: int, end: int) -> bytes:
        out = np.zeros((end - first, FRAME_SAMPLES, 2), dtype="<i2")
        for index, channel in enumerate(CHANNELS):
            pending = self._pending[channel]
            for slot in range(first, end):
                pcm = pending.pop(slot, None)
                if pcm is not None and not self._muted(slot):
                    out[slot - first, :, index] = np.frombuffer(pcm, dtype="<i2")
        return out.tobytes()

    def _muted(self, slot: int) -> bool:
        at = slot * FRAME_S
        return any(
            p.start_s <= at + 1e-9 and (p.end_s is None or at < p.end_s - 1e-9)
            for p in self._pauses
        )


def wav_header(data_bytes: int) -> bytes:
    """The header of a stereo 16-bit PCM WAV at 16 kHz with `data_bytes` of samples."""
    if not 0 <= data_bytes <= WAV_MAX_DATA_BYTES:
        raise ValueError(f"a WAV holds 0 to {WAV_MAX_DATA_BYTES} bytes of data, not {data_bytes}")
    channels, width = 2, 2
    fmt = struct.pack(
        "<HHIIHH", 1, channels, SAMPLE_RATE, SAMPLE_RATE * channels * width, channels * width, 16
    )
    return (
        b"RIFF"
        + struct.pack("<I", 36 + data_bytes)
        + b"WAVEfmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"data"
        + struct.pack("<I", data_bytes)
    )
