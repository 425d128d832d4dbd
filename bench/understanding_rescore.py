"""Re-run the flow matcher on the transcripts a `voicenode-bench understanding` report saved.

Recognition is the slow part of the bench (minutes); the matcher takes milliseconds. This
takes each utterance's transcript of one condition (`after` by default) from `report.json`,
routes it again through fresh flow agents with today's matcher, vocabulary and normaliser,
and prints the summary then and now, the utterances whose intent changed and the ones still
missed. The transcripts stay the recogniser's: a change here is the matcher's alone.

    python -m bench.understanding_rescore [REPORT] [--lines FILE] [--condition after]
        [--add REPORT ...] [--write FILE]

`--add`: the records of other runs (e.g. a run of the bench on only a new group's lines,
`voicenode-bench understanding --lines NEW.toml`) join the report's, so that only new lines
need recognising. `--write`: every condition and the written lines are routed again and the
whole report (summaries, per set and voice) is written to FILE, for `bench/reports/`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from bench.understanding import (
    LineSpec,
    build_report,
    condition_result,
    default_lines_path,
    load_lines,
    understand,
)
from bench.understanding_score import CONDITIONS, summary_row

DEFAULT_REPORT = Path(__file__).parent / "reports" / "understanding" / "report.json"
IMPROVED = ("after", "after_beam5")
"""Conditions measured with vocabulary snapping and the digits normaliser on."""


async def rescore(
    records: Sequence[dict[str, Any]], lines_path: Path, condition: str = "after"
) -> list[dict[str, Any]]:
    """`records` with `condition` recomputed from its saved transcript (a copy each)."""
    specs, _ = load_lines(lines_path)
    out: list[dict[str, Any]] = []
    async with httpx.AsyncClient() as http:
        for record in records:
            line = LineSpec(
                domain=record["domain"],
                text=record["text"],
                intent=record["intent"],
                digits=record["digits"],
                held_out=record.get("held_out", False),
                held_out_group=record.get("held_out_group", ""),
            )
            hyp = record[condition]["hyp"]
            again = await condition_result(
                line, specs[line.domain], hyp, http, improved=condition in IMPROVED
            )
            out.append({**record, condition: again})
    return out


async def rescore_all(records: Sequence[dict[str, Any]], lines_path: Path) -> list[dict[str, Any]]:
    """`records` with every condition and the written line's intent routed again."""
    specs, _ = load_lines(lines_path)
    out = list(records)
    for condition in [c for c in CONDITIONS if records and c in records[0]]:
        out = await rescore(out, lines_path, condition)
    async with httpx.AsyncClient() as http:
        return [
            {**r, "text_intent": (await understand(specs[r["domain"]], r["text"], http))["intent"]}
            for r in out
        ]


def _row(records: Sequence[dict[str, Any]], condition: str) -> str:
    row = summary_row(records, condition)
    wer = "-" if row["wer"] is None else f"{100 * row['wer']:.1f} %"
    return (
        f"intent {100 * row['intent_accuracy']:.1f} % ({row['utterances']}), WER {wer}, "
        f"wrong irreversible {row['wrong_irreversible']}, taken {row['irreversible_taken']}"
    )


def _utterance(record: dict[str, Any], condition: str) -> str:
    got = record[condition]
    action = f" -> {got['action']}" if got["action"] else ""
    return (
        f"[{record['voice']}] {record['text']!r} heard {got['hyp']!r}: "
        f"want {record['intent']}, got {got['intent']}{action}"
    )


def compare(
    old: Sequence[dict[str, Any]], new: Sequence[dict[str, Any]], condition: str = "after"
) -> list[str]:
    """The summary then and now (all, per voice), the changed intents and the misses left."""
    out: list[str] = []
    for voice in [None, *sorted({r["voice"] for r in old})]:
        pick = [i for i, r in enumerate(old) if voice is None or r["voice"] == voice]
        name = voice or "all"
        out.append(f"{name} saved: {_row([old[i] for i in pick], condition)}")
        out.append(f"{name} now:   {_row([new[i] for i in pick], condition)}")
    out.append("changed:")
    for before, after in zip(old, new, strict=True):
        if before[condition]["intent"] != after[condition]["intent"]:
            mark = "fixed" if after[condition]["intent"] == after["intent"] else "CHANGED"
            was = before[condition]["intent"]
            out.append(f"  {mark} (was {was}) {_utterance(after, condition)}")
    out.append("missed:")
    out += [
        f"  {_utterance(r, condition)}"
        for r in new
        if r[condition]["intent"] != r["intent"] or r[condition]["wrong_irreversible"]
    ]
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.understanding_rescore")
    parser.add_argument("report", nargs="?", type=Path, default=DEFAULT_REPORT)
    parser.add_argument("--lines", type=Path, default=default_lines_path())
    parser.add_argument("--condition", default="after")
    parser.add_argument("--add", type=Path, action="append", default=[], metavar="REPORT")
    parser.add_argument("--write", type=Path, default=None, metavar="FILE")
    args = parser.parse_args(argv)
    saved = json.loads(args.report.read_text())
    records, seconds = saved["records"], saved.get("seconds", 0.0)
    for extra in (json.loads(path.read_text()) for path in args.add):
        records, seconds = records + extra["records"], seconds + extra.get("seconds", 0.0)
    if not records or args.condition not in records[0]:
        print(f"{args.report}: no records with condition {args.condition!r}", file=sys.stderr)
        return 2
    new = asyncio.run(rescore(records, args.lines, args.condition))
    print("\n".join(compare(records, new, args.condition)))
    if args.write is not None:
        again = asyncio.run(rescore_all(records, args.lines))
        model = saved.get("stt_model", "")
        report = build_report(again, stt_model=model, source=str(args.lines), seconds=seconds)
        args.write.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
