"""The `voicenode-bench engines` report: per stream count, from `bench.engines.StepResult`s.

report.json (the numbers), report.md (a table) and engines.png (latency p95 and batch sizes
against streams, the SLO line): streams per device is the largest count whose STT final p95
plus first-TTS-audio p95 is within `slo_ms` (None: not even the smallest).
"""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.engines import StepResult


def _pcts(values: Sequence[float]) -> dict[str, float | None]:
    if not values:
        return {"n": 0, "p50": None, "p95": None, "max": None}
    ms = np.asarray(values, dtype=np.float64) * 1000
    return {
        "n": len(values),
        "p50": round(float(np.percentile(ms, 50)), 1),
        "p95": round(float(np.percentile(ms, 95)), 1),
        "max": round(float(ms.max()), 1),
    }


def step_row(r: StepResult, slo_ms: float) -> dict[str, Any]:
    stt, tts = _pcts(r.finals_s), _pcts(r.first_audio_s)
    calls = sum(r.stt_batches.values())
    decodes = sum(size * n for size, n in r.stt_batches.items())
    engine_ms = None if stt["p95"] is None or tts["p95"] is None else stt["p95"] + tts["p95"]
    stream_s = r.streams * r.seconds
    return {
        "streams": r.streams,
        "turns": len(r.finals_s),
        "stt_final_ms": stt,
        "tts_first_audio_ms": tts,
        "engine_p95_ms": engine_ms,
        "meets_slo": engine_ms is not None and engine_ms <= slo_ms and not r.errors,
        "vad": {
            "ms_per_stream_s": round(r.vad_s * 1000 / stream_s, 3),
            "runs": r.vad_runs,
            "windows_per_run": round(r.vad_windows / r.vad_runs, 2) if r.vad_runs else 0.0,
        },
        "stt_batches": {
            "sizes": {str(k): v for k, v in r.stt_batches.items()},
            "mean": round(decodes / calls, 2) if calls else 0.0,
        },
        "partials": r.partials,
        "partials_skipped": r.partials_skipped,
        "cpu_cores": round(r.cpu_s / r.seconds, 2),
        "errors": r.errors[:10],
    }


def build_report(
    results: Sequence[StepResult], *, device: str, slo_ms: float, seconds: float
) -> dict[str, Any]:
    steps = [step_row(r, slo_ms) for r in results]
    meeting = [s["streams"] for s in steps if s["meets_slo"]]
    return {
        "bench": "engines",
        "device": device,
        "seconds_per_step": seconds,
        "slo_ms": slo_ms,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "steps": steps,
        "streams_per_device": max(meeting) if meeting else None,
    }


def render_markdown(report: Mapping[str, Any]) -> str:
    lines = [
        f"# Engines alone on {report['device']}: {report['seconds_per_step']} s per step",
        "",
        f"Streams per device (STT final p95 + first audio p95 <= {report['slo_ms']} ms): "
        f"**{report['streams_per_device']}**",
        "",
        "| streams | turns | STT final p50/p95 ms | first audio p50/p95 ms | VAD ms per stream-s"
        " | VAD windows/run | STT batch mean | partials (skipped) | CPU cores | SLO |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in report["steps"]:
        stt, tts = s["stt_final_ms"], s["tts_first_audio_ms"]
        lines.append(
            f"| {s['streams']} | {s['turns']} | {stt['p50']} / {stt['p95']} | {tts['p50']} / "
            f"{tts['p95']} | {s['vad']['ms_per_stream_s']} | {s['vad']['windows_per_run']} | "
            f"{s['stt_batches']['mean']} | {s['partials']} ({s['partials_skipped']}) | "
            f"{s['cpu_cores']} | {'yes' if s['meets_slo'] else 'no'} |"
        )
    return "\n".join(lines) + "\n"


def plot(report: Mapping[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = report["steps"]
    n = [s["streams"] for s in steps]
    fig, (lat, batch) = plt.subplots(1, 2, figsize=(11, 4))
    for key, label in (
        ("stt_final_ms", "STT final p95"),
        ("tts_first_audio_ms", "first audio p95"),
    ):
        lat.plot(n, [s[key]["p95"] for s in steps], marker="o", label=label)
    lat.plot(n, [s["engine_p95_ms"] for s in steps], marker="s", label="sum")
    lat.axhline(report["slo_ms"], color="red", linestyle="--", label="SLO")
    lat.set(xlabel="streams", ylabel="ms", title=f"engine latency ({report['device']})")
    lat.legend()
    batch.plot(n, [s["stt_batches"]["mean"] for s in steps], marker="o", label="STT batch mean")
    batch.plot(n, [s["vad"]["windows_per_run"] for s in steps], marker="o", label="VAD windows/run")
    batch.plot(n, [s["cpu_cores"] for s in steps], marker="^", label="CPU cores")
    batch.set(xlabel="streams", title="batching and CPU")
    batch.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_report(report: Mapping[str, Any], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / "report.json", out / "report.md"
    json_path.write_text(json.dumps(report, indent=1) + "\n")
    md_path.write_text(render_markdown(report))
    return [json_path, md_path, plot(report, out / "engines.png")]
