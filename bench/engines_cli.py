"""`voicenode-bench engines`: its arguments and its run (`bench.engines`, its report)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path


def stream_counts(text: str) -> list[int]:
    """`8` or a sweep `1,2,4,8`: positive, distinct, in increasing order."""
    try:
        counts = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N or N,N,..., got {text!r}") from None
    if any(n < 1 for n in counts):
        raise argparse.ArgumentTypeError(f"stream counts must be at least 1, got {text!r}")
    return sorted(set(counts))


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {value}")
    return value


def device_label(devices: dict[str, str]) -> str:
    """`stt=cuda tts=cuda vad=cpu`: where each engine ran, for the report's title."""
    return " ".join(f"{engine}={device}" for engine, device in devices.items())


def add_engines_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    p = sub.add_parser(
        "engines",
        parents=[common],
        help="the engines alone (STT, TTS, VAD) under N synthetic talking streams, per device",
        description=(
            "Drive the node's engines in process with N streams of real speech in real time "
            "(VAD per frame, STT partials and finals, a fresh TTS reply per turn) and report "
            "latency, VAD cost, batch sizes and streams per device."
        ),
    )
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="default: cpu")
    for engine in ("stt", "tts", "vad"):
        p.add_argument(
            f"--{engine}-device",
            choices=["cpu", "cuda"],
            default=None,
            help=f"{engine.upper()} on this device instead of --device",
        )
    p.add_argument(
        "--streams",
        type=stream_counts,
        default=[1, 2, 4, 8],
        metavar="N[,N...]",
        help="stream counts to run, one step each (default 1,2,4,8)",
    )
    p.add_argument(
        "--seconds",
        type=_positive_float,
        default=30.0,
        metavar="S",
        help="seconds of talking per step (default 30)",
    )
    p.add_argument(
        "--slo-ms",
        type=_positive_float,
        default=800.0,
        metavar="MS",
        help="STT final p95 + first audio p95 a step must meet (default 800)",
    )
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="report directory")


def engines_cli(args: argparse.Namespace, fail: Callable[[str], int]) -> int:
    from bench.engines import run_engines
    from bench.engines_report import build_report, render_markdown, write_report
    from config import ConfigError, load_settings
    from pipeline.devices import DeviceError

    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        return fail(f"configuration error: {exc}")
    if args.out.exists() and not args.out.is_dir():
        return fail(f"{args.out}: --out must be a directory")
    devices = {e: getattr(args, f"{e}_device") or args.device for e in ("stt", "tts", "vad")}
    try:
        results = run_engines(settings, devices, args.streams, args.seconds)
    except DeviceError as exc:
        return fail(str(exc))
    label = devices["stt"] if len(set(devices.values())) == 1 else device_label(devices)
    report = build_report(results, device=label, slo_ms=args.slo_ms, seconds=args.seconds)
    paths = write_report(report, args.out)
    print(render_markdown(report), end="")
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0 if any(s["turns"] for s in report["steps"]) else 1
