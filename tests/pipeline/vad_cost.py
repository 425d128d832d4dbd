"""VAD CPU per call: Silero run once per call per window (before) against one batched run per
20 ms tick for all calls (after, `pipeline/vad_batch.py`).

    .venv/bin/python -m tests.pipeline.vad_cost [--calls 1,4,12] [--seconds 60] [--repeat 3]
        [--json PATH]

A measurement, not a test (pytest does not collect it; nothing is asserted). It lives with
the tests, not in `bench/`, because it runs the node's VAD in process (`bench` may reach the
node only over the wire, tests/test_imports.py). `ShippedSilero` is also the reference of
tests/pipeline/test_vad.py.

Each simulated call is a caller talking as on a call: Piper lines in the caller voice with
pauses, and silences of 2-4 s where the agent would speak (webrtcvad's gate skips Silero
there, in both modes). The calls run in lock-step 20 ms ticks as fast as the CPU goes, each
call's frame going through `VadStream.score` from its own task as in the call session:

- `before`: the model file as faster-whisper ships it, one run per call per window through
  `VadStream.feed`: today's, or with `--before-rev REV` the `pipeline/vad.py` of that git
  revision (the code before batching, its sample buffering included);
- `after`: `SileroModel` (the batch-edited graph) through a `VadBatcher`: the windows every
  call completes in a tick go into one run. Tick-aligned arrivals are what the batcher's 20 ms
  tick gathers from calls at staggered phases (and what pjsua2's conference clock delivers).
- `harness`: the same ticks and tasks with no VAD at all, taken off both.

Reported per call count: process CPU seconds per call per minute of audio, for each mode
(the minimum over `--repeat` runs: other work on the machine only adds), windows scored and
the batch sizes. Both modes come from the same process and run, so they compare; absolute
numbers depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import types
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime

from config.schema import TtsSettings
from media.frames import SAMPLE_RATE, AudioFrame, frames_from_samples
from pipeline.tts import TtsEngine
from pipeline.vad import SileroModel, VadStream, default_silero_path, webrtc_gate
from pipeline.vad_batch import VadBatcher
from voicenode.simulate import caller_voice

F32 = npt.NDArray[np.float32]
Score = Callable[[AudioFrame], Awaitable[float]]

LINES = [
    "Hello, I would like to book a table for two people tomorrow evening.",
    "Can you tell me when the pharmacy closes on Saturday?",
    "My order number is four seven nine two, and it never arrived.",
    "Please transfer me to the billing department.",
    "Yes, that is right, the appointment on Thursday at three.",
    "No thanks, that will be all for today. Goodbye.",
]


class ShippedSilero:
    """faster-whisper's Silero file as shipped: one window per run (the code before)."""

    def __init__(self) -> None:
        opts = onnxruntime.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(
            str(default_silero_path()), providers=["CPUExecutionProvider"], sess_options=opts
        )

    def run(self, window: F32, h: F32, c: F32) -> tuple[float, F32, F32]:
        out, h2, c2 = self._session.run(None, {"input": window.reshape(1, -1), "h": h, "c": c})
        return float(np.asarray(out).reshape(-1)[0]), h2, c2


def render_calls(n: int, seconds: float) -> list[list[AudioFrame]]:
    tts = TtsEngine(TtsSettings())
    speech = [caller_voice(tts, line) for line in LINES]
    calls = []
    for k in range(n):
        rng = np.random.default_rng(k)
        parts = [np.zeros(int(SAMPLE_RATE * rng.uniform(0.0, 2.0)), np.int16)]
        total, i = len(parts[0]), k
        while total < seconds * SAMPLE_RATE:
            line = speech[i % len(speech)]
            gap = np.zeros(int(SAMPLE_RATE * rng.uniform(2.0, 4.0)), np.int16)
            parts += [line, gap]
            total += len(line) + len(gap)
            i += 1
        audio = np.concatenate(parts)[: int(seconds * SAMPLE_RATE)]
        calls.append(frames_from_samples(audio))
    return calls


async def _ticks(scores: list[Score], calls: list[list[AudioFrame]]) -> None:
    for t in range(min(len(c) for c in calls)):
        await asyncio.gather(*(score(call[t]) for score, call in zip(scores, calls, strict=True)))


async def _null(frame: AudioFrame) -> float:
    return 0.0


class _Feed:
    """A per-call stream of the code before (`feed`: one run per window), awaitable."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    async def score(self, frame: AudioFrame) -> float:
        return float(self.stream.feed(frame))


def before_module(rev: str | None) -> Any:
    """`pipeline/vad.py` as of git revision `rev` (the code before batching), or today's."""
    if rev is None:
        import pipeline.vad

        return pipeline.vad
    source = subprocess.run(
        ["git", "show", f"{rev}:pipeline/vad.py"], capture_output=True, text=True, check=True
    ).stdout
    module = types.ModuleType(f"vad_at_{rev}")
    exec(compile(source, f"{rev}:pipeline/vad.py", "exec"), module.__dict__)
    return module


async def _measure(
    mode: str, calls: list[list[AudioFrame]], model: Any, old: Any
) -> dict[str, Any]:
    batcher = None
    scores: list[Score] = [_null for _ in calls]
    counted: list[Any] = []
    if mode == "before":
        counted = [old.VadStream(model, gate=old.webrtc_gate(2)) for _ in calls]
        scores = [_Feed(s).score for s in counted]
    elif mode == "after":
        batcher = VadBatcher(model, asyncio.get_running_loop(), window_s=0.0)
        counted = [VadStream(model, gate=webrtc_gate(2), batcher=batcher) for _ in calls]
        scores = [s.score for s in counted]
    started = time.process_time()
    await _ticks(scores, calls)
    cpu = time.process_time() - started
    windows = sum(int(s.silero_windows) for s in counted)
    runs = batcher.runs if batcher is not None else windows
    return {"cpu_s": cpu, "windows": windows, "runs": runs}


def measure(n: int, calls: list[list[AudioFrame]], repeat: int, old: Any) -> dict[str, Any]:
    models = {"harness": None, "before": ShippedSilero(), "after": SileroModel()}
    best: dict[str, dict[str, Any]] = {}
    for _ in range(repeat):
        for mode, model in models.items():
            r = asyncio.run(_measure(mode, calls[:n], model, old))
            if mode not in best or r["cpu_s"] < best[mode]["cpu_s"]:
                best[mode] = r
    minutes = len(calls[0]) * 0.02 / 60
    harness = best["harness"]["cpu_s"]
    out: dict[str, Any] = {"calls": n, "audio_minutes_per_call": round(minutes, 3)}
    for mode in ("before", "after"):
        r = best[mode]
        per_call_min = (r["cpu_s"] - harness) / n / minutes
        out[mode] = {
            "cpu_s_per_call_minute": round(per_call_min, 4),
            "windows": r["windows"],
            "model_runs": r["runs"],
            "mean_batch": round(r["windows"] / max(r["runs"], 1), 2),
        }
    out["harness_cpu_s"] = round(harness, 3)
    out["after_over_before"] = round(
        out["after"]["cpu_s_per_call_minute"] / out["before"]["cpu_s_per_call_minute"], 3
    )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", default="1,4,12")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", type=Path)
    ap.add_argument(
        "--before-rev",
        help="git revision whose pipeline/vad.py is `before` (default: today's VadStream.feed)",
    )
    args = ap.parse_args(argv)
    old = before_module(args.before_rev)
    counts = [int(x) for x in args.calls.split(",")]
    calls = render_calls(max(counts), args.seconds)
    report: dict[str, Any] = {
        "before_rev": args.before_rev,
        "load_avg_1m_before": round(os.getloadavg()[0], 2),
        "runs": [],
    }
    for n in counts:
        r = measure(n, calls, args.repeat, old)
        report["runs"].append(r)
        b, a = r["before"], r["after"]
        print(
            f"{n:>3} calls: before {b['cpu_s_per_call_minute']:.3f} s CPU per call-minute "
            f"({b['model_runs']} runs), after {a['cpu_s_per_call_minute']:.3f} s "
            f"({a['model_runs']} runs, mean batch {a['mean_batch']}): "
            f"x{r['after_over_before']}",
            file=sys.stderr,
        )
    report["load_avg_1m_after"] = round(os.getloadavg()[0], 2)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
