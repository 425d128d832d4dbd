"""Measurements from the wire: pure functions over recorded call timelines (no I/O).

Speech in received audio is found by energy: a 5 ms window (80 samples at 16 kHz) whose RMS
is at least `SPEECH_DBFS` is speech. A received packet's samples are taken to play from its
arrival time at 16 kHz, so a speech sample at offset `k` of a packet that arrived at `t` is
at `t + k / 16000`. Agent speech is grouped into spans: speech samples closer than `hold_s`
belong to the same span (pauses between words and clauses do not end it).

- voice to voice: a line's last speech sample sent -> the start of the first agent speech span
  that starts after it;
- greeting: answer -> the start of the first agent speech span;
- barge-in stop: a barge-in line's first speech sample sent, while an agent span is running
  -> the end of that span (its last speech sample received);
- pacing: gaps between consecutive received packets, except gaps overlapping the caller's
  speech (the agent is expected to be quiet then);
- WER: word edit distance between the scenario's lines and the node's user transcripts.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from bench.wire.timeline import CallTimeline, NodeTranscript, Packet, SentLine

SAMPLE_RATE: Final = 16_000
WINDOW: Final = 80
"""Samples per energy window (5 ms)."""
SPEECH_DBFS: Final = -40.0
"""Windows at least this loud (RMS, dB re full scale) are speech."""
HOLD_S: Final = 0.3
"""Agent speech closer than this is one span."""

_FULL_SCALE: Final = 32768.0


def speech_windows(
    samples: npt.NDArray[np.int16], dbfs: float = SPEECH_DBFS
) -> npt.NDArray[np.bool_]:
    """One flag per 5 ms window (the last one partial): is it speech?"""
    n = len(samples)
    if n == 0:
        return np.zeros(0, dtype=np.bool_)
    pad = (-n) % WINDOW
    x = samples.astype(np.float64)
    if pad:
        x = np.concatenate([x, np.zeros(pad)])
    rms = np.sqrt(np.mean(np.square(x.reshape(-1, WINDOW)), axis=1))
    threshold = _FULL_SCALE * 10.0 ** (dbfs / 20.0)
    flags: npt.NDArray[np.bool_] = rms >= threshold
    return flags


def speech_extent(
    samples: npt.NDArray[np.int16], dbfs: float = SPEECH_DBFS
) -> tuple[int, int] | None:
    """(first, end) sample offsets of speech in `samples` (end exclusive), or None."""
    flags = speech_windows(samples, dbfs)
    hits = np.flatnonzero(flags)
    if len(hits) == 0:
        return None
    first = int(hits[0]) * WINDOW
    end = min(len(samples), (int(hits[-1]) + 1) * WINDOW)
    return first, end


def pcm_samples(pcm: bytes) -> npt.NDArray[np.int16]:
    return np.frombuffer(pcm, dtype="<i2").astype(np.int16, copy=False)


@dataclass(frozen=True)
class Span:
    """Agent speech received from `start` to `end` (seconds on the bench clock)."""

    start: float
    end: float


def speech_spans(
    packets: Sequence[Packet], hold_s: float = HOLD_S, dbfs: float = SPEECH_DBFS
) -> list[Span]:
    """Agent speech in received packets, merged into spans (sorted by arrival)."""
    spans: list[Span] = []
    for p in sorted(packets, key=lambda p: p.at):
        extent = speech_extent(pcm_samples(p.pcm), dbfs)
        if extent is None:
            continue
        start = p.at + extent[0] / SAMPLE_RATE
        end = p.at + extent[1] / SAMPLE_RATE
        if spans and start - spans[-1].end <= hold_s:
            last = spans[-1]
            spans[-1] = Span(last.start, max(last.end, end))
        else:
            spans.append(Span(start, end))
    return spans


def first_span_after(spans: Sequence[Span], t: float, until: float = math.inf) -> Span | None:
    """The first span starting at or after `t` (and before `until`)."""
    for s in spans:
        if t <= s.start < until:
            return s
    return None


def span_at(spans: Sequence[Span], t: float) -> Span | None:
    """The span running at `t` (start <= t <= end), if any."""
    for s in spans:
        if s.start <= t <= s.end:
            return s
    return None


# ---- per call ----


@dataclass(frozen=True)
class TurnLatency:
    """One caller line and the agent's answer, measured from the wire."""

    line: int
    v2v_s: float | None
    """None: no agent speech started before the next line (no answer)."""
    barge_in_stop_s: float | None = None
    """Barge-in lines only: caller onset -> agent speech stopped; None if it never stopped
    before the line ended or the agent was not speaking at the onset."""
    barge_in_missed: bool = False
    """A barge-in line spoken while the agent was silent (nothing to interrupt)."""


def line_latencies(timeline: CallTimeline, hold_s: float = HOLD_S) -> list[TurnLatency]:
    spans = speech_spans(timeline.packets, hold_s)
    out: list[TurnLatency] = []
    lines = sorted(timeline.lines, key=lambda x: x.start)
    for i, line in enumerate(lines):
        until = lines[i + 1].speech_onset if i + 1 < len(lines) else math.inf
        reply = first_span_after(spans, line.speech_end, until)
        v2v = None if reply is None else reply.start - line.speech_end
        stop: float | None = None
        missed = False
        if line.barge_in:
            stop, missed = barge_in_stop(spans, line)
        out.append(TurnLatency(line.index, v2v, stop, missed))
    return out


def barge_in_stop(spans: Sequence[Span], line: SentLine) -> tuple[float | None, bool]:
    """(stop latency, missed) of a barge-in line: onset -> end of the agent span it cut into.

    `missed` when no agent span was running at the onset; a span still running when the line
    ended did not stop (latency None)."""
    running = span_at(spans, line.speech_onset)
    if running is None:
        return None, True
    if running.end >= line.speech_end:
        return None, False
    return max(0.0, running.end - line.speech_onset), False


def greeting_s(timeline: CallTimeline, hold_s: float = HOLD_S) -> float | None:
    """Answer -> first agent speech; None if the call was not answered or nothing was said
    before the caller's first line."""
    if timeline.answered is None:
        return None
    until = timeline.lines[0].speech_onset if timeline.lines else math.inf
    spans = speech_spans(timeline.packets, hold_s)
    first = first_span_after(spans, timeline.answered, until)
    return None if first is None else first.start - timeline.answered


def packet_gaps(timeline: CallTimeline) -> list[float]:
    """Seconds between consecutive received packets, leaving out gaps that overlap the
    caller's speech (from a line's first to its last speech sample, plus `HOLD_S` after)."""
    at = sorted(p.at for p in timeline.packets)
    quiet = [(x.speech_onset, x.speech_end + HOLD_S) for x in timeline.lines]
    gaps: list[float] = []
    for a, b in zip(at, at[1:], strict=False):
        if any(a < q1 and q0 < b for q0, q1 in quiet):
            continue
        gaps.append(b - a)
    return gaps


def call_minutes(timeline: CallTimeline) -> float:
    if timeline.answered is None or timeline.ended is None:
        return 0.0
    return max(0.0, timeline.ended - timeline.answered) / 60.0


# ---- transcripts ----

_NUMBERS: Final = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
).split()
_TENS: Final = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_TOKEN: Final = re.compile(r"[a-z0-9']+")


def _number_words(n: int) -> list[str]:
    if n < 20:
        return [_NUMBERS[n]]
    if n < 100:
        tens, ones = divmod(n, 10)
        return [_TENS[tens]] + ([_NUMBERS[ones]] if ones else [])
    return [str(n)]


def normalize_words(text: str) -> list[str]:
    """Words for WER: lower case, no punctuation, a.m./p.m. as am/pm, numbers below 100 as
    words ("2PM" -> two pm), hyphens as spaces."""
    t = text.lower().replace("-", " ")
    t = re.sub(r"\b([ap])\.\s?m\.?", r"\1m", t)
    t = re.sub(r"(\d)([a-z])", r"\1 \2", t)
    out: list[str] = []
    for tok in _TOKEN.findall(t):
        tok = tok.strip("'")
        if not tok:
            continue
        if tok.isdigit() and len(tok) <= 2:
            out.extend(_number_words(int(tok)))
        else:
            out.append(tok)
    return out


def edit_distance(ref: Sequence[str], hyp: Sequence[str]) -> int:
    """Word-level Levenshtein distance (substitutions, insertions, deletions)."""
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, start=1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, start=1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


@dataclass(frozen=True)
class WordErrors:
    errors: int
    ref_words: int

    @property
    def wer(self) -> float | None:
        return None if self.ref_words == 0 else self.errors / self.ref_words


def caller_wer(reference: Sequence[str], transcripts: Sequence[NodeTranscript]) -> WordErrors:
    """The node's user transcripts of a call against the lines the caller spoke (all joined:
    how the node cut the caller's speech into turns does not matter)."""
    ref = [w for text in reference for w in normalize_words(text)]
    hyp = [w for t in transcripts if t.role == "user" for w in normalize_words(t.text)]
    return WordErrors(edit_distance(ref, hyp), len(ref))


def contains_words(text: str, expected: str) -> bool:
    """Whether `expected`'s words occur in `text` in order, next to each other."""
    want = normalize_words(expected)
    have = normalize_words(text)
    if not want:
        return True
    n = len(want)
    return any(have[i : i + n] == want for i in range(len(have) - n + 1))


def agent_replies(transcripts: Sequence[NodeTranscript]) -> tuple[str, list[str]]:
    """(the greeting, the agent's reply after each user transcript), from the node's final
    transcripts in order."""
    greeting: list[str] = []
    replies: list[list[str]] = []
    for t in transcripts:
        if t.role == "user":
            replies.append([])
        elif replies:
            replies[-1].append(t.text)
        else:
            greeting.append(t.text)
    return " ".join(greeting), [" ".join(r) for r in replies]


@dataclass(frozen=True)
class ExpectResult:
    line: int
    """-1: the greeting."""
    expect: str
    heard: str
    ok: bool


def check_expected(timeline: CallTimeline) -> list[ExpectResult]:
    """Each expected reply (greeting and lines) against the agent's transcripts."""
    greeting, replies = agent_replies(timeline.transcripts)
    out: list[ExpectResult] = []
    if timeline.expect_greeting:
        g = timeline.expect_greeting
        out.append(ExpectResult(-1, g, greeting, contains_words(greeting, g)))
    for k, line in enumerate(sorted(timeline.lines, key=lambda x: x.index)):
        if not line.expect:
            continue
        heard = replies[k] if k < len(replies) else ""
        out.append(ExpectResult(line.index, line.expect, heard, contains_words(heard, line.expect)))
    return out


# ---- node CPU ----


def cpu_per_call_minute(cpu_s: float | None, call_minutes_total: float) -> float | None:
    """CPU seconds the node used per minute of call (None when unknown or no call ran)."""
    if cpu_s is None or call_minutes_total <= 0:
        return None
    return cpu_s / call_minutes_total
