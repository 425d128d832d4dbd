"""`voicenode-bench turns --scenarios DIR`: every scenario file in DIR, in each caller voice,
through the real pipeline (`bench.turns.run_turn_taking`: `voicenode.simulate`, real time),
classified line by line (`bench.turn_taking`) into the turn-taking report
(`bench.turn_taking_report`).

Each scenario is one call per voice per run: its lines rendered with Piper (the caller voice)
or espeak-ng (`--voice` picks one), lines that name a voice always in that voice, barge-in and
backchannel lines said `barge_in_ms` into the agent's reply.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from bench.scenario import VOICES, Render, Scenario, ScenarioError, load_scenario, speak_lines
from bench.turn_taking_report import build_report, write_report

if TYPE_CHECKING:
    from bench.turns import Calls

Found = list[tuple[Path, Scenario]]


def load_scenario_dir(directory: Path) -> Found:
    """Every `*.toml` in `directory` (sorted by name), loaded and checked."""
    if not directory.is_dir():
        raise ScenarioError(f"{directory}: not a directory")
    paths = sorted(directory.glob("*.toml"))
    if not paths:
        raise ScenarioError(f"{directory}: no scenario files (*.toml)")
    return [(path, load_scenario(path)) for path in paths]


def spoken_calls(found: Found, voices: Sequence[str]) -> Callable[[Mapping[str, Render]], Calls]:
    """The calls of one run, rendered with the bench's voices: each scenario in each voice."""

    def render(renders: Mapping[str, Render]) -> Calls:
        return [
            (scenario, voice, speak_lines(scenario, renders[voice], voices=renders, voice=voice))
            for _, scenario in found
            for voice in voices
        ]

    return render


def turn_taking_cli(args: argparse.Namespace, fail: Callable[[str], int]) -> int:
    """The `--scenarios DIR` form of `voicenode-bench turns`; exit 0 when lines were spoken,
    1 when none were, 2 (through `fail`) on bad arguments."""
    from bench import turns
    from config import ConfigError, load_settings

    try:
        found = load_scenario_dir(args.scenarios)
        settings = load_settings(args.config)
        agents = turns.agent_names(settings)
    except ScenarioError as exc:
        return fail(str(exc))
    except ConfigError as exc:
        return fail(f"configuration error: {exc}")
    for path, scenario in found:
        if scenario.agent not in agents:
            return fail(f"{path}: unknown agent {scenario.agent!r}")
    if args.out.exists() and not args.out.is_dir():
        return fail(f"{args.out}: --out must be a directory")
    voices = [args.voice] if args.voice else list(VOICES)
    outcomes, calls, machine = asyncio.run(
        turns.run_turn_taking(settings, spoken_calls(found, voices), args.runs)
    )
    extra = {
        "scenarios": [str(path) for path, _ in found],
        "voice_names": voices,
        "runs_requested": args.runs,
        "calls": calls,
    }
    report = build_report(outcomes, machine=machine, extra=extra)
    json_path, md_path = write_report(report, args.out)
    print(md_path.read_text(encoding="utf-8"), end="")
    print(f"wrote {json_path} and {md_path}")
    return 0 if report["total"]["spoken"] else 1
