"""The `voicenode-bench` command: latency and load benchmarks of a voice node.

    voicenode-bench turns --out DIR [--runs N] [--scenario FILE | --scenarios DIR
                          [--voice piper|espeak]] [--config FILE]
    voicenode-bench wire --transport audiosocket|webrtc|sip (--spawn [--config FILE] | --target URL)
                         --out DIR [--calls N] [--sweep --target-p95-ms MS] [--scenario FILE]
                         [--arrivals burst|staggered|both] [--soak MINUTES]
                         [--llm-mock --ttft-ms MS --tokens-per-s N [--fixed-reply TEXT]]
    voicenode-bench mock-llm [--port P] [--ttft-ms MS] [--tokens-per-s N]
                             [--fixed-reply TEXT | --reply-seed N]
    voicenode-bench churn [--calls N] [--concurrency C] [--rtp-timeout S] [--mix ...] [--out DIR]
    voicenode-bench understanding --out DIR [--lines FILE] [--limit N] [--config FILE]
    voicenode-bench engines --out DIR [--device cpu|cuda] [--streams N[,N...]] [--seconds S]
                            [--slo-ms MS] [--config FILE]
    voicenode-bench analytics --out DIR [--url URL] [--calls N] [--turns N] [--summary-turns N]
    voicenode-bench amd --out DIR [--part tune|heldout|all] [--config FILE]

`turns` runs a scripted conversation (default: the receptionist booking flow) N times through
the real pipeline and writes DIR/report.json and DIR/report.md with p50/p95/p99 of every
TurnMarks interval, the node's own overhead and the issue 2 speed targets (reported, not
asserted). Exit status: 0 when turns were measured, 1 when none were, 2 on bad arguments.
With `--scenarios DIR` it runs every scenario file in DIR in both caller voices (Piper and
espeak-ng; `--voice` picks one) and reports turn-taking per line category: premature cut-ins,
missed and false barge-ins, voice to voice (`bench.turn_taking_run`).

`wire` calls a node over a real transport the way callers do and measures from the audio on
the wire (`bench.wire`): voice to voice, time to greeting, barge-in stop, packet gaps, caller
WER, node CPU and memory, capacity with `--sweep`. Writes report.json, report.md and PNG
plots into DIR. Exit status: 0 when turns were measured, 1 when none were, 2 on bad
arguments or a node that cannot be started or reached.

`amd` places outbound calls in process (`CallSession` on the node's engines, a virtual clock)
answered by generated answering machines and people in three voices through G.711, and reports
answering-machine detection's accuracy per class, its decision times, the voicemail message's
start after the beep and a person's wait for the greeting, in stream time (`bench.amd`). Exit
status: 0 when clips were measured, 2 on bad arguments.

`mock-llm` serves the bench's OpenAI-compatible streaming mock LLM until interrupted: a new
two-sentence receptionist reply for each request (`--fixed-reply TEXT`: always TEXT).

`churn` places many short SIP calls (a mix with BYE during the greeting, CANCEL before the
answer, callers that vanish without a BYE) on one node process and reports RSS and bridge ports
against calls completed (`bench.sip_churn`).

`understanding` speaks caller lines of two domains in two voices through the telephone band
into the node's STT engine and its flow agents, and reports WER, intent accuracy and wrong
ends/transfers before and after vocabulary biasing and number normalisation
(`bench.understanding`). Exit status: 0 when lines were measured, 2 on bad arguments.

`engines` drives the node's engines alone, in process, with N synthetic talking streams (real
speech and models in real time) on `--device` and reports per N STT final and first-audio
latency, VAD cost, batch sizes and streams per device, with a plot (`bench.engines`). Exit
status: 0 when turns were measured, 1 when none were, 2 on bad arguments or a missing device.

`analytics` sends calls and turns through the node's ClickHouse sink into a real ClickHouse
(its own clickhouse-server, or `--url`) and reports rows/s and the tenant summary query's
p50/p95 over 30 days (`bench.analytics`). Exit status: 0 when the rows in ClickHouse match the
rows sent, 1 when not, 2 on bad arguments or no server.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

PROG = "voicenode-bench"


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _add_turns_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    turns = sub.add_parser(
        "turns",
        parents=[common],
        help="per-turn latency (TurnMarks p50/p95/p99) of a scripted conversation",
        description=(
            "Run a scenario's caller lines through the real pipeline (real models, real time) "
            "RUNS times and report p50/p95/p99 of every TurnMarks interval in milliseconds."
        ),
    )
    turns.add_argument(
        "--out", required=True, type=Path, metavar="DIR", help="directory for report.json/.md"
    )
    turns.add_argument(
        "--runs", type=_positive_int, default=3, metavar="N", help="calls to run (default 3)"
    )
    which = turns.add_mutually_exclusive_group()
    which.add_argument(
        "--scenario",
        type=Path,
        default=None,
        metavar="FILE",
        help="scenario TOML with caller lines (default: the receptionist booking flow)",
    )
    which.add_argument(
        "--scenarios",
        type=Path,
        default=None,
        metavar="DIR",
        help="every scenario TOML in DIR: the turn-taking report (cut-ins, barge-ins, v2v)",
    )
    turns.add_argument(
        "--voice",
        choices=["piper", "espeak"],
        default=None,
        help="with --scenarios: speak the lines in this caller voice only (default: both)",
    )


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config", metavar="FILE", help="node settings file (TOML) over the defaults"
    )
    p = argparse.ArgumentParser(
        prog=PROG, description="Latency and load benchmarks of a voice node."
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_turns_parser(sub, common)
    from bench.wire.cli import add_mock_llm_parser, add_wire_parser

    add_wire_parser(sub, common)
    add_mock_llm_parser(sub)
    from bench.sip_churn import add_arguments as add_churn_arguments

    churn = sub.add_parser(
        "churn", help="many short mixed SIP calls on one node: crashes, leaks, release"
    )
    add_churn_arguments(churn)
    understanding = sub.add_parser(
        "understanding",
        parents=[common],
        help="WER, intent accuracy and wrong hang-ups/transfers on telephone-band caller lines",
    )
    understanding.add_argument(
        "--out", required=True, type=Path, metavar="DIR", help="directory for report.json/.md"
    )
    understanding.add_argument(
        "--lines", type=Path, default=None, metavar="FILE", help="lines file (TOML)"
    )
    understanding.add_argument(
        "--limit", type=_positive_int, default=None, metavar="N", help="only the first N lines"
    )
    from bench.engines_cli import add_engines_parser

    add_engines_parser(sub, common)
    from bench.analytics_cli import add_parser as add_analytics_parser

    add_analytics_parser(sub)
    from bench.amd_cli import add_amd_parser

    add_amd_parser(sub, common)
    return p


def _fail(message: str) -> int:
    print(f"{PROG}: {message}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "turns" and args.scenarios is not None:
        from bench.turn_taking_run import turn_taking_cli

        return turn_taking_cli(args, _fail)
    if args.command == "turns":
        return _turns(args)
    if args.command == "wire":
        from bench.wire.cli import wire

        return wire(args)
    if args.command == "churn":
        from bench.sip_churn import run_cli

        return run_cli(args)
    if args.command == "understanding":
        return _understanding(args)
    if args.command == "engines":
        from bench.engines_cli import engines_cli

        return engines_cli(args, _fail)
    if args.command == "analytics":
        from bench.analytics_cli import run_cli as analytics

        return analytics(args)
    if args.command == "amd":
        from bench.amd_cli import amd_cli

        return amd_cli(args, _fail)
    if args.command == "mock-llm":
        from bench.wire.cli import mock_llm

        return mock_llm(args)
    return 2  # pragma: no cover - argparse requires a known command


def _turns(args: argparse.Namespace) -> int:
    from bench.report import render_table, write_report
    from bench.turns import (
        ScenarioError,
        agent_names,
        default_scenario_path,
        load_scenario,
        run_turns,
        turns_report,
    )
    from config import ConfigError, load_settings

    try:
        scenario = load_scenario(args.scenario)
    except ScenarioError as exc:
        return _fail(str(exc))
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        return _fail(f"configuration error: {exc}")
    try:
        agents = agent_names(settings)
    except ScenarioError as exc:
        return _fail(str(exc))
    if scenario.agent not in agents:
        known = ", ".join(sorted(agents)) or "none"
        return _fail(
            f"scenario {scenario.name!r}: unknown agent {scenario.agent!r} (known: {known})"
        )
    if args.out.exists() and not args.out.is_dir():
        return _fail(f"{args.out}: --out must be a directory")

    records, machine = asyncio.run(run_turns(settings, scenario, args.runs))
    source = str(args.scenario) if args.scenario is not None else str(default_scenario_path())
    report = turns_report(
        scenario, records, machine=machine, runs_requested=args.runs, source=source
    )
    json_path, md_path = write_report(report, args.out)
    print(render_table(report), end="")
    print(f"wrote {json_path} and {md_path}")
    return 0 if report["n_turns"] else 1


def _understanding(args: argparse.Namespace) -> int:
    import json

    from bench.understanding import default_lines_path, run
    from bench.understanding_score import render_markdown
    from config import ConfigError, load_settings

    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        return _fail(f"configuration error: {exc}")
    if args.out.exists() and not args.out.is_dir():
        return _fail(f"{args.out}: --out must be a directory")
    lines = args.lines or default_lines_path()
    try:
        report = run(settings, lines, args.limit, lambda m: print(m, file=sys.stderr))
    except (OSError, ValueError) as exc:  # a bad lines or agent file (SpecError: a ValueError)
        return _fail(f"{lines}: {exc}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    markdown = render_markdown(report)
    (args.out / "README.md").write_text(markdown)
    print(markdown, end="")
    return 0 if report["n_utterances"] else 1
