"""One call's measurements in the wire bench's report.json (`bench.wire.report`)."""

from __future__ import annotations

from typing import Any

from bench.wire.measure import call_minutes, caller_wer, check_expected, greeting_s, line_latencies
from bench.wire.timeline import CallTimeline, SentLine


def call_summary(tl: CallTimeline) -> dict[str, Any]:
    """One call's measurements (report.json `steps[].call_details[]`)."""
    lat = line_latencies(tl)
    g = greeting_s(tl)
    words = caller_wer([x.text for x in tl.lines], tl.transcripts)
    expected = check_expected(tl)
    return {
        "call": tl.call,
        "call_id": tl.call_id,
        "ended_by": tl.ended_by,
        "error": tl.error,
        "duration_s": round(call_minutes(tl) * 60.0, 3),
        "lines_spoken": len(tl.lines),
        "packets_received": len(tl.packets),
        "frames_sent": tl.frames_sent,
        "late_frames_sent": tl.late_frames,
        "greeting_ms": None if g is None else round(g * 1000.0, 1),
        "v2v_ms": [None if t.v2v_s is None else round(t.v2v_s * 1000.0, 1) for t in lat],
        "barge_in_stop_ms": [
            None if t.barge_in_stop_s is None else round(t.barge_in_stop_s * 1000.0, 1)
            for t in lat
            if any(x.index == t.line and x.barge_in for x in tl.lines)
        ],
        "caller_wer": None if words.wer is None else round(words.wer, 4),
        "lines": [_line_times(x, tl.answered) for x in tl.lines],
        "user_transcripts": [t.text for t in tl.transcripts if t.role == "user"],
        "agent_transcripts": [t.text for t in tl.transcripts if t.role == "agent"],
        "expected_replies": [
            {"line": e.line, "expect": e.expect, "ok": e.ok, "heard": e.heard} for e in expected
        ],
    }


def _line_times(line: SentLine, answered: float | None) -> dict[str, Any]:
    """When a line went out, in seconds since the answer (to read against the saved audio)."""
    zero = answered or 0.0
    return {
        "line": line.index,
        "barge_in": line.barge_in,
        "start_s": round(line.start - zero, 3),
        "speech_onset_s": round(line.speech_onset - zero, 3),
        "speech_end_s": round(line.speech_end - zero, 3),
    }
