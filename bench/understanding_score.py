"""Scoring for `voicenode-bench understanding`: word error rate under a stated text
normalisation, and the summary table (pure functions).

Two normalisations of both the reference and the transcript:
- "as written": case and punctuation only (`agents.words.text.normalize`), numbers as the
  recogniser wrote them ("five five five" against "555" is three errors and a substitution);
- "normalised": the same, then numbers as digits (runs of spoken digits joined into one digit
  string, single number words as digits, "10:30" as "1030"), which is how the WER target of
  issue 22 is read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from agents.flow.digits import digits_to_numbers
from agents.words.text import normalize


def words_as_written(text: str) -> list[str]:
    return normalize(text).split()


def words_normalised(text: str) -> list[str]:
    return digits_to_numbers(normalize(text).replace(":", ""), singles=True).split()


def edit_distance(ref: Sequence[str], hyp: Sequence[str]) -> int:
    """Word-level Levenshtein distance (substitutions, insertions, deletions)."""
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1]


def wer(pairs: Iterable[tuple[Sequence[str], Sequence[str]]]) -> float | None:
    """Corpus WER: total edits over total reference words (None without words)."""
    edits = words = 0
    for ref, hyp in pairs:
        edits += edit_distance(ref, hyp)
        words += len(ref)
    return edits / words if words else None


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"


def summary_row(records: Sequence[Mapping[str, Any]], condition: str) -> dict[str, Any]:
    """One condition's numbers over `records` (each line × voice, with its per-condition
    results under `record[condition]`)."""
    pairs = [(r, r[condition]) for r in records]
    digit_lines = [r for r in records if r["digits"]]
    return {
        "utterances": len(pairs),
        "wer_as_written": wer((r["ref_written"], x["hyp_written"]) for r, x in pairs),
        "wer": wer((r["ref_words"], x["hyp_words"]) for r, x in pairs),
        "intent_accuracy": sum(x["intent"] == r["intent"] for r, x in pairs) / max(1, len(pairs)),
        "wrong_irreversible": sum(x["wrong_irreversible"] for _r, x in pairs),
        "irreversible_taken": sum(x["action"] is not None for _r, x in pairs),
        "digits_correct": sum(r[condition]["digits_ok"] for r in digit_lines),
        "digit_lines": len(digit_lines),
    }


CONDITIONS = {
    "before": "no vocabulary, numbers as the number slot read them (today's node)",
    "context_only": "vocabulary as recogniser context; no snapping, no digits normaliser",
    "after": "vocabulary as recogniser context and snapped in the matcher; digits normaliser",
    "linear_upsampling": "as before, but 8 -> 16 kHz by linear interpolation (no filter)",
    "after_beam5": "what-if: as after, the final decoded with beam 5 (the node stays at its "
    "stt.beam_size); its decode time against after's, back to back, is below",
}


def render_markdown(report: Mapping[str, Any]) -> str:
    lines = [
        "# voicenode-bench understanding",
        "",
        f"{report['n_lines']} caller lines ({', '.join(report['domains'])}) × "
        f"{len(report['voices'])} voices ({', '.join(report['voices'])}) = "
        f"{report['n_utterances']} utterances, telephone band (16 kHz → 8 kHz G.711 µ-law → "
        f"16 kHz through the node's inbound resampler), recognised by the node's STT engine "
        f"({report['stt_model']}) and routed through each agent's flow at its first question.",
        "",
        "| condition | WER as written | WER normalised | intent accuracy | wrong irreversible "
        "| ends/transfers taken | digits right |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, row in report["summary"].items():
        lines.append(
            f"| {name} | {_pct(row['wer_as_written'])} | {_pct(row['wer'])} "
            f"| {_pct(row['intent_accuracy'])} | {row['wrong_irreversible']} "
            f"| {row['irreversible_taken']} | {row['digits_correct']}/{row['digit_lines']} |"
        )
    lines += ["", "Conditions:", ""]
    lines += [
        f"- **{name}**: {what}" for name, what in CONDITIONS.items() if name in report["summary"]
    ]
    lines += ["", "Per voice (normalised WER, intent accuracy):", ""]
    lines += ["| voice | condition | WER | intent accuracy | wrong irreversible |"]
    lines += ["| --- | --- | --- | --- | --- |"]
    for voice, rows in report["by_voice"].items():
        for name, row in rows.items():
            lines.append(
                f"| {voice} | {name} | {_pct(row['wer'])} | {_pct(row['intent_accuracy'])} "
                f"| {row['wrong_irreversible']} |"
            )
    lines += _extras(report)
    return "\n".join(lines) + "\n"


def _extras(report: Mapping[str, Any]) -> list[str]:
    """The report's optional parts: decode times, the written lines, the held-out set."""
    lines: list[str] = []
    times = report.get("final_decode_ms", {})
    if times:
        lines += ["", "Final decode time (ms, wall clock, the same audio back to back):", ""]
        lines += ["| condition | n | median | p90 | median of the difference to after |"]
        lines += ["| --- | --- | --- | --- | --- |"]
        for name, t in times.items():
            lines.append(
                f"| {name} | {t['n']} | {t['median']} | {t['p90']} | {t['median_minus_after']} |"
            )
    on_text = {k: v for k, v in report.get("text_intent_accuracy", {}).items() if v is not None}
    if on_text:
        parts = ", ".join(f"{_pct(v)} ({k})" for k, v in on_text.items())
        lines += [
            "",
            f"Intent accuracy on the written lines (the matcher given a perfect transcript, "
            f"vocabulary on): {parts}. A line the matcher routes right when written and wrong "
            f"when heard is the recogniser's miss.",
        ]
    sets = report.get("by_set", {})
    if any(name != "tuned" for name in sets):
        n_held = sum(1 for r in report["records"] if r.get("held_out"))
        lines += ["", f"Tuned and held-out lines apart ({n_held} held-out utterances):", ""]
        lines += ["| set | condition | WER | intent accuracy | wrong irreversible |"]
        lines += ["| --- | --- | --- | --- | --- |"]
        for part, rows in sets.items():
            for name, row in rows.items():
                lines.append(
                    f"| {part} | {name} | {_pct(row['wer'])} "
                    f"| {_pct(row['intent_accuracy'])} | {row['wrong_irreversible']} |"
                )
    return lines
