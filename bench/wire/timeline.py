"""What one bench call looked like on the wire: the caller's lines as sent, the agent's packets
as received, with times on one monotonic clock. Recorded by the caller loop, read by
`bench.wire.measure`."""

from __future__ import annotations

import msgspec


class SentLine(msgspec.Struct, frozen=True, kw_only=True):
    """One caller line as it went out.

    `start` is the send time of the line's first frame; `speech_onset` / `speech_end` the
    instants of its first and last speech sample (send time of the frame holding the sample
    plus the sample's offset in it: the frame's samples are due at 16 kHz from its send time).
    """

    index: int
    text: str
    start: float
    speech_onset: float
    speech_end: float
    end: float
    """Send time of the line's last frame plus 20 ms."""
    barge_in: bool = False
    expect: str = ""


class Packet(msgspec.Struct, frozen=True, array_like=True):
    """One received packet of agent audio: arrival time and 16 kHz int16 PCM."""

    at: float
    pcm: bytes


class NodeTurn(msgspec.Struct, frozen=True, kw_only=True):
    """The node's own view of one turn (a `turn.metrics` event): marks in seconds relative to
    the turn's speech end."""

    turn: int
    marks: dict[str, float]
    voice_to_voice_ms: float | None = None


class NodeTranscript(msgspec.Struct, frozen=True, kw_only=True):
    role: str
    text: str
    turn: int = 0
    interrupted: bool = False


class CallTimeline(msgspec.Struct, kw_only=True):
    """Everything the bench recorded about one call."""

    call: int
    """The bench's number for the call (0, 1, ... within a step)."""
    call_id: str | None = None
    started: float = 0.0
    """When the bench began to open the leg."""
    answered: float | None = None
    """When the leg was open (the call answered); None if it never was."""
    ended: float | None = None
    ended_by: str = ""
    """caller (all lines spoken, hung up) | agent (the node ended the call) | timeout | error"""
    error: str = ""
    frames_sent: int = 0
    late_frames: int = 0
    """Frames the pacer sent after their slot (the bench itself fell behind)."""
    lines: list[SentLine] = msgspec.field(default_factory=list)
    packets: list[Packet] = msgspec.field(default_factory=list)
    transcripts: list[NodeTranscript] = msgspec.field(default_factory=list)
    """The node's final transcripts of this call, in order (from its events)."""
    node_turns: list[NodeTurn] = msgspec.field(default_factory=list)
    expect_greeting: str = ""
