"""The transport seam: a call's audio in and out, whatever carries it (SIP, WebRTC, AudioSocket).

Inbound is an async iterator of 16 kHz `AudioFrame`s (it ends when the far end hangs up).
Outbound is a sink: `write(frame)` queues a frame for sending at the transport's pace,
`clear()` drops everything not yet sent (barge-in), and `played_until` is the number of
frames written so far that the far end has actually been sent.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator

from media.frames import AudioFrame


class AudioSink(abc.ABC):
    """Where agent audio goes. Each transport converts codec and rate at its edge."""

    @abc.abstractmethod
    async def write(self, frame: AudioFrame) -> None:
        """Queue one frame; may wait while the transport's outbound buffer is full."""

    @abc.abstractmethod
    def clear(self) -> int:
        """Drop every queued, unsent frame at once; return how many were dropped."""

    @property
    @abc.abstractmethod
    def played_until(self) -> int:
        """How many of the frames written so far have been sent to the far end."""

    @property
    def buffered(self) -> int:
        """Frames written but not yet sent."""
        return 0


class AudioSource(abc.ABC):
    """A call's inbound audio."""

    @abc.abstractmethod
    def frames(self) -> AsyncIterator[AudioFrame]:
        """Inbound frames in order; the iterator ends when the far end stops sending."""


class Transport(abc.ABC):
    """One call's audio both ways."""

    source: AudioSource
    sink: AudioSink

    @abc.abstractmethod
    async def close(self) -> None:
        """Release everything the transport holds (idempotent)."""
