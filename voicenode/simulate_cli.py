"""`voicenode simulate`: argument handling around `voicenode.simulate`."""

from __future__ import annotations

import argparse
import asyncio
import sys

import numpy as np
import numpy.typing as npt

from agents.catalog import SpecError, load_specs
from config import Settings
from media.wav import AudioFormatError, read_wav
from pipeline.engines import Engines
from pipeline.tts import TtsEngine
from voicenode.simulate import CallerLine, caller_voice, simulate, write_outputs


def run_simulate(settings: Settings, args: argparse.Namespace) -> int:
    lines: list[tuple[str, str]] = args.lines or []
    if not lines:
        print("voicenode simulate: give at least one --say TEXT or --wav FILE", file=sys.stderr)
        return 2
    try:
        specs = load_specs(settings.agents.dir or None)
    except SpecError as exc:
        print(f"voicenode simulate: {exc}", file=sys.stderr)
        return 2
    name = args.agent or settings.agents.default
    if name not in specs:
        known = ", ".join(sorted(specs)) or "none"
        print(f"voicenode simulate: unknown agent {name!r} (known: {known})", file=sys.stderr)
        return 2
    wavs: dict[str, npt.NDArray[np.int16]] = {}
    for kind, value in lines:
        if kind == "wav":
            try:
                wavs[value] = read_wav(value)
            except (AudioFormatError, OSError) as exc:
                print(f"voicenode simulate: {value}: {exc}", file=sys.stderr)
                return 2
    return asyncio.run(_run(settings, args, specs[name], lines, wavs))


def barging_lines(
    audio: list[npt.NDArray[np.int16]], barge_in_after: float | None
) -> list[CallerLine]:
    """`--barge-in-after S`: every line, the first one too (over the greeting), starts S seconds
    after the agent starts speaking; without it each line waits for the agent to finish."""
    return [CallerLine(samples, barge_in_after=barge_in_after) for samples in audio]


async def _run(settings, args, spec, lines, wavs) -> int:  # type: ignore[no-untyped-def]
    engines = await Engines.load(settings)
    try:
        tts = engines.tts
        assert isinstance(tts, TtsEngine)
        audio = [
            wavs[value] if kind == "wav" else caller_voice(tts, value) for kind, value in lines
        ]
        result = await simulate(engines, spec, barging_lines(audio, args.barge_in_after))
    finally:
        engines.close()
    write_outputs(result, args.out)
    for turn in result.turns:
        flag = " (interrupted)" if turn.interrupted else ""
        print(f"{turn.role:>5}: {turn.text}{flag}")
    reason = result.ended.reason if result.ended else "unknown"
    print(
        f"call ended: {reason}; wrote {args.out / 'agent.wav'} and {args.out / 'conversation.json'}"
    )
    return 0
