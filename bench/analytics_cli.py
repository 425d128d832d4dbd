"""`voicenode-bench analytics`'s arguments and entry (`bench.analytics` runs it; imported only
when the command runs, so that the other commands do not load the node's analytics)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

DEFAULT_CALLS = 10_000
DEFAULT_TURNS = 200_000
DEFAULT_SUMMARY_TURNS = 1_000_000
DEFAULT_SUMMARY_RUNS = 20


def _count(text: str) -> int:
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "analytics",
        help="calls and turns through the ClickHouse sink (rows/s), the summary query's latency",
        description=(
            "Ingest calls and turns through the node's ClickHouse sink into a real ClickHouse "
            "(rows/s), then time the tenant summary query over 30 days (p50/p95). Without "
            "--url it starts its own clickhouse-server; with --url it drops and recreates the "
            "databases voicenode_bench_ingest and voicenode_bench_summary there."
        ),
    )
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="report.json/.md here")
    p.add_argument(
        "--url", default=None, help="a running ClickHouse's HTTP interface (default: start one)"
    )
    for flag, default, what in (
        ("--calls", DEFAULT_CALLS, "calls to ingest"),
        ("--turns", DEFAULT_TURNS, "transcript lines over those calls"),
        ("--summary-turns", DEFAULT_SUMMARY_TURNS, "lines behind the summary query"),
        ("--summary-runs", DEFAULT_SUMMARY_RUNS, "timed runs per tenant and grouping"),
    ):
        p.add_argument(
            flag, type=_count, default=default, metavar="N", help=f"{what} (default {default})"
        )
    p.add_argument(
        "--batch-size",
        type=_count,
        default=None,
        metavar="N",
        help="outbox rows per insert batch, at most 100000 "
        "(default: the node's [analytics.clickhouse] batch_size, 50000)",
    )
    p.add_argument("--seed", type=int, default=23, help="the workload's seed (default 23)")


def run_cli(args: argparse.Namespace) -> int:
    """Run the bench, write DIR/report.json and DIR/report.md; the exit status."""
    from bench.analytics import FAILURES, Options, run
    from bench.analytics_report import render_markdown

    def fail(message: str) -> int:
        print(f"voicenode-bench analytics: {message}", file=sys.stderr)
        return 2

    if args.turns < args.calls:
        return fail(f"--turns ({args.turns}) must be at least --calls ({args.calls})")
    if args.batch_size is not None and args.batch_size > 100_000:
        return fail(f"--batch-size ({args.batch_size}) must be at most 100000")
    if args.out.exists() and not args.out.is_dir():
        return fail(f"{args.out}: --out must be a directory")
    options = Options(
        url=args.url,
        calls=args.calls,
        turns=args.turns,
        summary_turns=args.summary_turns,
        summary_runs=args.summary_runs,
        seed=args.seed,
        batch_size=args.batch_size,
    )
    try:
        report = asyncio.run(run(options, lambda m: print(m, file=sys.stderr, flush=True)))
    except FAILURES as exc:
        return fail(f"clickhouse: {exc}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    markdown = render_markdown(report)
    (args.out / "report.md").write_text(markdown, encoding="utf-8")
    print(markdown, end="")
    print(f"wrote {args.out / 'report.json'} and {args.out / 'report.md'}")
    return 0 if report["rows_match"] else 1
