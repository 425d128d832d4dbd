"""`voicenode-bench turns`: per-turn latency of a scripted conversation on the real pipeline.

A scenario (TOML) lists caller lines. Each run is one call through `voicenode.simulate` (real
VAD, Whisper, agent, Piper, paced playout, in real time); every caller turn the agent answered
contributes its TurnMarks intervals to the report. The turn-taking set (`--scenarios DIR`)
runs its calls here too (`run_turn_taking`), classified by `bench.turn_taking`. Unlike
`bench.wire`, this runs the node's pipeline in this process by design (its engines, agent
specs and `simulate`); the caller's lines are `media.speech`'s voices, as in the wire bench.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bench.report import TurnSample, build_report, machine_info, turn_stages_ms
from bench.scenario import (
    DEFAULT_SCENARIO,
    Render,
    Scenario,
    ScenarioError,
    SpokenLine,
    default_scenario_path,
    load_scenario,
    speak_lines,
)
from bench.turn_taking import LineOutcome, Timeline, classify, reply_of
from media.speech import CallerVoice, espeak

__all__ = [
    "DEFAULT_SCENARIO",
    "RunRecord",
    "Scenario",
    "ScenarioError",
    "default_scenario_path",
    "load_scenario",
    "record_run",
    "run_turns",
    "turns_report",
]

if TYPE_CHECKING:
    from config import Settings
    from pipeline.tts import TtsEngine
    from voicenode.simulate import CallerLine, SimulationResult


@dataclass
class RunRecord:
    """One call of the benchmark: how it ended and which turns were measured."""

    run: int
    ended: str
    wall_s: float
    samples: list[TurnSample] = field(default_factory=list)
    skipped_turns: int = 0
    user_texts: list[str] = field(default_factory=list)
    agent_texts: list[str] = field(default_factory=list)
    tts_cache_hits: int | None = None
    """Agent clauses the TTS engine served from its phrase cache (no synthesis) in this call."""

    def as_json(self) -> dict[str, Any]:
        return {
            "run": self.run,
            "ended": self.ended,
            "wall_s": round(self.wall_s, 2),
            "measured_turns": len(self.samples),
            "skipped_turns": self.skipped_turns,
            "tts_cache_hits": self.tts_cache_hits,
            "user_texts": self.user_texts,
            "agent_texts": self.agent_texts,
        }


def record_run(run: int, result: SimulationResult, wall_s: float) -> RunRecord:
    """The measured turns of one simulated call: agent turns that answered a caller turn with all
    six marks set (the greeting has none; a turn cut short by hang-up may lack some)."""
    rec = RunRecord(
        run=run,
        ended=result.ended.reason if result.ended is not None else "unknown",
        wall_s=wall_s,
        user_texts=[t.text for t in result.turns if t.role == "user"],
        agent_texts=[t.text for t in result.turns if t.role == "agent"],
    )
    seen: set[int] = set()
    for t in result.turns:
        # A reply spoken as several agent transcripts carries its turn's marks on each of them.
        if t.role != "agent" or not t.marks or t.turn in seen:
            continue
        seen.add(t.turn)
        stages = turn_stages_ms(t.marks)
        if stages is None:
            rec.skipped_turns += 1
        else:
            rec.samples.append(TurnSample(run=run, turn=t.turn, stages_ms=stages))
    return rec


def turns_report(
    scenario: Scenario,
    records: Sequence[RunRecord],
    *,
    machine: dict[str, Any],
    runs_requested: int,
    source: str = "",
) -> dict[str, Any]:
    samples = [s for r in records for s in r.samples]
    return build_report(
        samples,
        machine=machine,
        extra={
            "bench": "turns",
            "scenario": {
                "name": scenario.name,
                "agent": scenario.agent,
                "lines": len(scenario.lines),
                "phone_line": scenario.phone_line,
                "file": source,
            },
            "runs_requested": runs_requested,
            "runs": [r.as_json() for r in records],
        },
    )


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def run_turns(
    settings: Settings,
    scenario: Scenario,
    runs: int,
    *,
    progress: Callable[[str], None] = _say,
) -> tuple[list[RunRecord], dict[str, Any]]:
    """Load the engines, render the caller lines once, then simulate `runs` calls in turn.
    Returns the per-run records and the machine description (load measured before and after)."""
    from agents.catalog import load_specs
    from pipeline.engines import Engines
    from pipeline.tts import TtsEngine
    from voicenode.simulate import simulate

    spec = load_specs(settings.agents.dir or None)[scenario.agent]
    machine = machine_info()
    progress(f"loading engines (stt {settings.stt.device}, {settings.stt.cpu_threads} threads)")
    engines = await Engines.load(settings)
    records: list[RunRecord] = []
    try:
        tts = engines.tts
        if not isinstance(tts, TtsEngine):
            raise TypeError("the caller voice needs the embedded Piper TTS engine")
        spoken = speak_lines(scenario, engine_caller_voice(tts))
        lines = [line.samples for line in spoken]
        for run in range(1, runs + 1):
            started = time.perf_counter()
            hits = tts.cache_hits
            result = await simulate(engines, spec, lines)
            rec = record_run(run, result, time.perf_counter() - started)
            rec.tts_cache_hits = tts.cache_hits - hits
            records.append(rec)
            progress(
                f"run {run}/{runs}: ended {rec.ended}, {len(rec.samples)} turn(s) measured"
                f" in {rec.wall_s:.1f} s ({rec.tts_cache_hits} TTS cache hits)"
            )
    finally:
        engines.close()
    machine["load_avg_1m_before"] = machine.pop("load_avg_1m")
    machine["load_avg_1m_after"] = machine_info()["load_avg_1m"]
    machine["stt"] = {
        "model": settings.stt.model or "embedded tiny.en",
        "device": settings.stt.device,
        "compute_type": settings.stt.compute_type,
        "cpu_threads": settings.stt.cpu_threads,
    }
    machine["tts"] = {"voice": settings.tts.voice or "embedded en_US-joe-medium"}
    return records, machine


# ---- the turn-taking set (`--scenarios DIR`): see bench/turn_taking_run.py ----


def timeline_of(result: SimulationResult) -> Timeline:
    """What `bench.turn_taking.classify` reads of one simulated call."""
    replies = [
        reply
        for t, ev in result.turn_metrics()
        if (reply := reply_of(t, ev.marks, ev.voice_to_voice_ms)) is not None
    ]
    return Timeline(
        states=result.state_changes(),
        replies=replies,
        spans=result.line_spans,
        agent_frames=result.agent_frame_times,
    )


def engine_caller_voice(tts: TtsEngine) -> CallerVoice:
    """The caller voice (`media.speech`) on the node engine's own Piper voice."""
    return CallerVoice(tts.voice(tts.default_voice), speaker_id=tts.speaker_id)


def caller_voices(tts: TtsEngine) -> dict[str, Render]:
    """The bench's two caller voices (`media.speech`): Piper (pitched up, deterministic) on the
    engine's voice, and espeak-ng."""
    return {"piper": engine_caller_voice(tts), "espeak": espeak}


def to_caller_lines(spoken: Sequence[SpokenLine]) -> list[CallerLine]:
    """The simulated caller's cues for the scenario's lines."""
    from voicenode.simulate import CallerLine

    return [
        CallerLine(
            line.samples,
            barge_in_after=None if line.barge_in_ms is None else line.barge_in_ms / 1000.0,
            pause_s=line.pause_ms / 1000.0,
            backchannel=line.backchannel,
        )
        for line in spoken
    ]


def agent_names(settings: Settings) -> set[str]:
    """The agents a scenario may name; ScenarioError for agent files that cannot be read."""
    from agents.catalog import SpecError, load_specs

    try:
        return set(load_specs(settings.agents.dir or None))
    except SpecError as exc:
        raise ScenarioError(str(exc)) from exc


Calls = Sequence[tuple[Scenario, str, list[SpokenLine]]]
"""The calls of one run: a scenario, the voice, its lines as spoken."""


async def run_turn_taking(
    settings: Settings,
    calls: Callable[[Mapping[str, Render]], Calls],
    runs: int,
    *,
    progress: Callable[[str], None] = _say,
) -> tuple[list[LineOutcome], list[dict[str, Any]], dict[str, Any]]:
    """Load the engines, render the calls' lines (`calls(voices)`), then per run one simulated
    call each. Returns every line's outcome, a record per call and the machine."""
    from agents.catalog import load_specs
    from pipeline.engines import Engines
    from pipeline.tts import TtsEngine
    from voicenode.simulate import simulate

    specs = load_specs(settings.agents.dir or None)
    machine = machine_info()
    progress(f"loading engines (stt {settings.stt.device}, {settings.stt.cpu_threads} threads)")
    engines = await Engines.load(settings)
    outcomes: list[LineOutcome] = []
    records: list[dict[str, Any]] = []
    try:
        tts = engines.tts
        if not isinstance(tts, TtsEngine):
            raise TypeError("the caller voice needs the embedded Piper TTS engine")
        rendered = calls(caller_voices(tts))
        for run in range(1, runs + 1):
            for scenario, voice, lines in rendered:
                started = time.perf_counter()
                result = await simulate(engines, specs[scenario.agent], to_caller_lines(lines))
                got = classify(timeline_of(result), lines, scenario=scenario.name, voice=voice)
                outcomes += got
                ended = result.ended.reason if result.ended is not None else "unknown"
                records.append(
                    {"run": run, "scenario": scenario.name, "voice": voice, "ended": ended}
                    | {"wall_s": round(time.perf_counter() - started, 2)}
                    | {"lines_spoken": sum(o.spoken for o in got), "lines": len(got)}
                )
                progress(f"run {run}: {scenario.name} ({voice}): ended {ended}")
    finally:
        engines.close()
    machine["load_avg_1m_before"] = machine.pop("load_avg_1m")
    machine["load_avg_1m_after"] = machine_info()["load_avg_1m"]
    return outcomes, records, machine
