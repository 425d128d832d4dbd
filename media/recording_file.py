"""A call's recording written to a file while the call runs.

`CallRecorder` feeds a `StereoTimeline` (`media/recording.py`) and appends what it gives to a
file in the chosen format, flushing every `flush_every_s` of media time, so that a crash of the
process loses at most that much (plus the timeline's lag) of what the OS had been handed:

- `wav`: stereo 16-bit PCM at 16 kHz. The header's sizes are rewritten on each flush, so the
  file on disk is a whole, readable WAV after every flush.
- `ogg`: Opus in Ogg (PyAV's libopus, 16 kHz stereo). Ogg pages stand alone: a file cut
  anywhere decodes up to its last whole page; pages are at most `OGG_PAGE_S` long and the
  muxer hands each packet to the file as it comes (`flush_packets`).

The recorder does blocking file I/O in small pieces (a second of audio at a time); `close`
writes what is left and returns the `RecordingInfo`. Audio is never logged.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, BinaryIO, Final, Literal, Protocol

import av
import msgspec
import numpy as np

from media.frames import SAMPLE_RATE
from media.recording import Channel, PauseSpan, StereoTimeline, wav_header

__all__ = ["OGG_PAGE_S", "CallRecorder", "RecordingFormat", "RecordingInfo", "open_sink"]

RecordingFormat = Literal["wav", "ogg"]
OGG_PAGE_S: Final = 0.2
SUFFIX: Final[dict[str, str]] = {"wav": ".wav", "ogg": ".ogg"}


class RecordingInfo(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What a finished recording holds."""

    format: RecordingFormat
    duration_s: float
    bytes: int
    pauses: tuple[PauseSpan, ...] = ()
    late_frames: int = 0


class RecordingSink(Protocol):
    """Where stereo PCM goes: appended, flushed to the OS, closed once."""

    def write(self, pcm: bytes) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


class WavSink:
    """A stereo WAV whose header is patched on every flush."""

    def __init__(self, path: Path) -> None:
        self._file: BinaryIO = path.open("xb")
        self._data = 0
        self._file.write(wav_header(0))

    def write(self, pcm: bytes) -> None:
        self._file.write(pcm)
        self._data += len(pcm)

    def flush(self) -> None:
        self._file.seek(0)
        self._file.write(wav_header(self._data))
        self._file.seek(0, os.SEEK_END)
        self._file.flush()

    def close(self) -> None:
        if self._file.closed:
            return
        try:
            self.flush()
        finally:
            self._file.close()


class OggOpusSink:
    """Opus in Ogg through PyAV (libopus), each packet handed to the file as it is muxed."""

    def __init__(self, path: Path, bitrate: int = 32_000) -> None:
        options = {"flush_packets": "1", "page_duration": str(int(OGG_PAGE_S * 1_000_000))}
        path.touch(exist_ok=False)
        self._container: Any = av.open(str(path), "w", format="ogg", container_options=options)
        self._stream: Any = self._container.add_stream("libopus", rate=SAMPLE_RATE)
        self._stream.layout = "stereo"
        self._stream.bit_rate = bitrate
        self._pts = 0
        self._closed = False

    def write(self, pcm: bytes) -> None:
        samples = np.frombuffer(pcm, dtype="<i2").reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="stereo")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self._pts
        self._pts += samples.shape[1] // 2
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def flush(self) -> None:
        """Nothing to do: the muxer flushes each packet (`flush_packets`)."""

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
        finally:
            self._container.close()


def open_sink(path: Path, fmt: RecordingFormat) -> RecordingSink:
    """A new file at `path` (refused if one is there) for `fmt`."""
    if fmt == "wav":
        return WavSink(path)
    return OggOpusSink(path)


class CallRecorder:
    """A call's two channels into one file as the call runs (see the module docstring)."""

    def __init__(
        self,
        path: Path,
        fmt: RecordingFormat,
        *,
        start_s: float,
        flush_every_s: float = 2.0,
        lag_frames: int = 10,
    ) -> None:
        self.path = path
        self.format: RecordingFormat = fmt
        self._start_s = start_s
        self._timeline = StereoTimeline(start_s=start_s, lag_frames=lag_frames)
        self._sink = open_sink(path, fmt)
        self._flush_every_s = flush_every_s
        self._flushed_s = 0.0
        self._info: RecordingInfo | None = None

    @property
    def timeline(self) -> StereoTimeline:
        return self._timeline

    @property
    def closed(self) -> bool:
        return self._info is not None

    def feed(self, channel: Channel, at_s: float, pcm: bytes) -> None:
        """One 20 ms frame of `channel` starting at media time `at_s`; ignored once closed."""
        if self._info is not None:
            return
        self._timeline.feed(channel, at_s, pcm)
        self._write(final=False)

    def retract(self, channel: Channel, from_s: float) -> int:
        """`channel`'s frames from `from_s` on, not yet written, taken back (see the timeline)."""
        return 0 if self._info is not None else self._timeline.retract(channel, from_s)

    def pause(self, at_s: float) -> bool:
        return self._info is None and self._timeline.pause(at_s)

    def resume(self, at_s: float) -> bool:
        return self._info is None and self._timeline.resume(at_s)

    def close(self) -> RecordingInfo:
        """Write what is left, close the file; idempotent."""
        if self._info is not None:
            return self._info
        try:
            self._write(final=True)
        finally:
            self._sink.close()
        timeline = self._timeline
        if timeline.paused:  # a pause still on ends with the recording
            timeline.resume(self._start_s + timeline.written_s)
        self._info = RecordingInfo(
            format=self.format,
            duration_s=round(timeline.written_s, 3),
            bytes=self.path.stat().st_size,
            pauses=timeline.pauses,
            late_frames=timeline.late_frames,
        )
        return self._info

    def _write(self, *, final: bool) -> None:
        for chunk in self._timeline.drain(final=final):
            self._sink.write(chunk)
        if final or self._timeline.written_s - self._flushed_s >= self._flush_every_s:
            self._sink.flush()
            self._flushed_s = self._timeline.written_s
