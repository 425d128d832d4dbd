"""`voicenode-bench amd`: its arguments and its run (`bench.amd`, `bench.amd_report`)."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
from pathlib import Path

STT_MS = 300.0
"""The stream time a greeting transcription is charged (tiny.en on 1-3 s of audio, CPU)."""
TTS_MS = 250.0
"""The stream time a synthesis not served from the cache is charged (a clause, Piper, CPU)."""


def add_amd_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    p = sub.add_parser(
        "amd",
        parents=[common],
        help="answering-machine detection: accuracy, decision time, voicemail after the beep",
    )
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="report directory")
    p.add_argument(
        "--part",
        choices=["tune", "heldout", "all"],
        default="all",
        help="which part of the set to run (default all)",
    )
    p.add_argument("--stt-ms", type=float, default=STT_MS, metavar="MS")
    p.add_argument("--tts-ms", type=float, default=TTS_MS, metavar="MS")


def amd_cli(args: argparse.Namespace, fail: Callable[[str], int]) -> int:
    from bench.amd import run_set, voices
    from bench.amd_report import build_report, render_markdown, write_report
    from bench.amd_set import Part, clips
    from config import ConfigError, load_settings
    from pipeline.engines import Engines

    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        return fail(f"configuration error: {exc}")
    if args.out.exists() and not args.out.is_dir():
        return fail(f"{args.out}: --out must be a directory")
    engines = Engines.load_blocking(settings)
    try:
        parts: tuple[Part, ...] = ("tune", "heldout") if args.part == "all" else (args.part,)
        clip_list = list(clips(voices(engines), parts))
        outcomes, times = asyncio.run(
            run_set(clip_list, engines, stt_ms=args.stt_ms, tts_ms=args.tts_ms)
        )
    finally:
        engines.close()
    meta = {
        "clips": len(clip_list),
        "voices": sorted({c.voice for c in clip_list}),
        "stt_ms": args.stt_ms,
        "tts_ms": args.tts_ms,
        "line": "G.711 mu-law, 8 kHz, line noise -62 dBFS",
    }
    walls = {"stt": times.stt_wall_ms, "tts": times.tts_wall_ms}
    report = build_report(outcomes, meta=meta, walls=walls)
    paths = write_report(report, args.out)
    print(render_markdown(report), end="")
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0 if outcomes else 1
