"""Turn-taking of one simulated call, line by line: cut-ins, barge-ins, backchannels, latency.

Pure functions over what `voicenode.simulate` records (the call's state changes and turn
metrics with the clock time each was emitted, and each caller line's send span) and the lines
as spoken (where their voiced audio starts and ends). A line's real start and end are its
first and last voiced sample on the call's clock (`SpokenLine.voiced` from its first frame).

- premature cut-in (a line the caller says as a turn, or a barge-in): before the line's end
  the node ended the turn (the state went from `user_speaking` to `thinking`) or started
  speaking (`agent_speaking`);
- missed barge-in: a barge-in line said over the agent's reply that never stopped it (no
  change from `agent_speaking` to `user_speaking`/`thinking` by the line's end plus
  `STOP_GRACE_S`);
- false barge-in: a backchannel ("mhm") said over the reply that did stop it, however late
  (the session may decide on the line's final transcript, after `STOP_GRACE_S`; the caller
  says nothing more until the reply is over, so the reply's next change is the line's doing);
- voice to voice: the line's end to the first frame of the reply to it (`TurnMetrics`);
  `node_v2v_ms` is the node's own (from the VAD's end of speech).

A barge-in or backchannel line that started when the agent was not speaking (its reply was
over, or ended within `ONSET_S` of the caller starting) is `over_speech = False` and counts in
neither missed nor false barge-ins.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench.scenario import SpokenLine

STOP_GRACE_S = 0.5
"""How long after a line's end the session may still stop the agent's reply for it."""
ONSET_S = 0.25
"""A reply that ends this soon after the caller starts was not talked over."""

_STOPPED = ("user_speaking", "thinking")
"""What the agent's reply gives way to when the caller's speech stops it."""

Transition = tuple[float, str, str]
"""(clock time, state before, state after)."""


Reply = tuple[float, float, float | None]
"""An answered turn on the call's clock: (speech end, first frame out, the node's voice to
voice in ms)."""


@dataclass(frozen=True)
class Timeline:
    """What one call recorded, on its clock: every state change (time, new state), every
    answered turn (`Reply`), and each line's send span (first frame sent, frame after the
    last). `bench.turns.timeline_of` reads one from a `SimulationResult`."""

    states: Sequence[tuple[float, str]]
    replies: Sequence[Reply]
    spans: Sequence[tuple[float, float]]
    agent_frames: Sequence[float] = ()
    """When each agent frame went out: a gap is the reply paused or stopped, as heard."""

    def transitions(self) -> list[Transition]:
        out: list[Transition] = []
        state = "listening"
        for t, new in self.states:
            if new != state:
                out.append((t, state, new))
                state = new
        return out


def reply_of(emitted_at: float, marks: Mapping[str, float], v2v_ms: float | None) -> Reply | None:
    """The `Reply` of a `TurnMetrics` emitted at `emitted_at` (its first frame out); None
    without both marks. Its marks count from the call's start, so only their difference is
    used."""
    if "speech_end" not in marks or "first_frame_out" not in marks:
        return None
    span = marks["first_frame_out"] - marks["speech_end"]
    return (emitted_at - span, emitted_at, v2v_ms)


@dataclass
class LineOutcome:
    """One caller line of one call, classified."""

    scenario: str
    voice: str
    line: int
    """1-based, in the scenario."""
    category: str
    kind: str
    """turn | barge_in | backchannel"""
    text: str
    spoken: bool = False
    """The script got to it (a call that ended early leaves the rest unspoken)."""
    premature: bool | None = None
    cut_in_ms: float | None = None
    """How long before the line's end the node ended the turn or spoke."""
    over_speech: bool | None = None
    stopped: bool | None = None
    """The agent's reply stopped for this line (barge-in and backchannel lines over speech)."""
    stop_ms: float | None = None
    """The caller's first voiced sample to the session's barge-in (playout pauses earlier)."""
    heard_stop_ms: float | None = None
    """The caller's first voiced sample to the agent's last frame before it went quiet for
    them (playout paused at speech onset): the stop the caller hears."""
    v2v_ms: float | None = None
    node_v2v_ms: float | None = None

    @property
    def missed_barge_in(self) -> bool:
        return self.kind == "barge_in" and bool(self.over_speech) and self.stopped is False

    @property
    def false_barge_in(self) -> bool:
        return self.kind == "backchannel" and bool(self.over_speech) and self.stopped is True

    def as_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["missed_barge_in"] = self.missed_barge_in
        doc["false_barge_in"] = self.false_barge_in
        return doc


def line_kind(line: SpokenLine) -> str:
    if line.backchannel:
        return "backchannel"
    return "barge_in" if line.barge_in_ms is not None else "turn"


def classify(
    timeline: Timeline, lines: Sequence[SpokenLine], *, scenario: str, voice: str
) -> list[LineOutcome]:
    """Every line of the call, classified (unspoken lines with `spoken=False` only)."""
    transitions = timeline.transitions()
    replies = timeline.replies
    out: list[LineOutcome] = []
    for i, line in enumerate(lines):
        o = LineOutcome(
            scenario=scenario,
            voice=line.voice or voice,
            line=i + 1,
            category=line.category or "uncategorised",
            kind=line_kind(line),
            text=line.text,
        )
        out.append(o)
        if i >= len(timeline.spans):
            continue
        o.spoken = True
        sent = timeline.spans[i][0]
        start, end = sent + line.voiced[0], sent + line.voiced[1]
        following = timeline.spans[i + 1][0] if i + 1 < len(timeline.spans) else math.inf
        if o.kind != "turn":
            _barge(o, transitions, start, end)
            if o.stopped:
                o.heard_stop_ms = heard_stop_ms(timeline.agent_frames, start)
        if o.kind != "backchannel":
            _cut_in(o, transitions, start, end)
            _latency(o, replies, start, end, following)
    return out


FRAME_S = 0.02
QUIET_S = 0.06
"""No agent frame for this long: the reply has gone quiet for the caller (3 frames)."""


def heard_stop_ms(frames: Sequence[float], start: float) -> float | None:
    """From `start` to the end of the last agent frame before the first gap of `QUIET_S`
    that ends after it (None: no frame went out after `start`, or no gap). The gap may have
    begun before `start`: the VAD's onset comes on the frame that holds the first voiced
    sample, so playout can pause a few ms before that sample; the stop then reads 0 (it was
    quiet when the line began), not the first gap of the reply to the line."""
    i = bisect.bisect_left(frames, start)
    if i >= len(frames):
        return None
    for a, b in zip(frames[max(i - 1, 0) :], frames[max(i, 1) :], strict=False):
        if b - a - FRAME_S >= QUIET_S - 1e-9:  # silence between the two frames
            return max(0.0, _ms(a + FRAME_S - start))
    return None


def state_at(transitions: Sequence[Transition], t: float) -> str:
    state = "listening"
    for at, _, after in transitions:
        if at > t:
            break
        state = after
    return state


def _cut_in(o: LineOutcome, transitions: Sequence[Transition], start: float, end: float) -> None:
    for at, before, after in transitions:
        if start < at < end and (
            (before == "user_speaking" and after == "thinking") or after == "agent_speaking"
        ):
            o.premature, o.cut_in_ms = True, _ms(end - at)
            return
    o.premature = False


def _barge(o: LineOutcome, transitions: Sequence[Transition], start: float, end: float) -> None:
    if state_at(transitions, start) != "agent_speaking":
        o.over_speech = False
        return
    exit_ = next(((at, after) for at, before, after in transitions if at > start), None)
    if exit_ is not None and exit_[1] == "listening" and exit_[0] < start + ONSET_S:
        o.over_speech = False  # the reply was ending by itself
        return
    o.over_speech = True
    o.stopped = False
    grace = math.inf if o.kind == "backchannel" else STOP_GRACE_S
    if exit_ is not None and exit_[0] <= end + grace and exit_[1] in _STOPPED:
        o.stopped, o.stop_ms = True, _ms(exit_[0] - start)


def _latency(
    o: LineOutcome,
    replies: Sequence[Reply],
    start: float,
    end: float,
    following: float,
) -> None:
    """The reply to this line: the last turn whose speech ended within the line's time (a
    turn taken back and ended again is measured at its last end)."""
    mine = [r for r in replies if start <= r[0] < following]
    if mine:
        _, first_frame, node = mine[-1]
        o.v2v_ms, o.node_v2v_ms = _ms(first_frame - end), node


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 1)
