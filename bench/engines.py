"""`voicenode-bench engines`: the inference engines alone, driven by N synthetic talking streams.

No call path, no transport: the node's own engines (`pipeline.engines.Engines`, loaded as a
node loads them, on `--device`, or per engine `--stt-device` etc.) and N streams in one event
loop, each doing what a call's session does with them, in real time:

- a caller line (real speech, pre-rendered by the node's Piper voice, noise off) fed as 20 ms
  frames at the frame rate into a `VadStream` (the loop's shared Silero batch) and an
  `SttStream` (partials at `stt.partial_interval_ms`, adapted to load, as a session's);
- at the end of the line, the final transcript (`SttStream.final`, no speculation: the decode
  the turn waits for, timed from the request);
- then a reply of about 12 words, different each time (no cache can serve it), cut into clauses
  as an agent's is: the first clause is timed to its audio (first-TTS-audio latency); the
  stream then plays the reply out in real time (silence into the VAD) and speaks again.

Streams start spread over the first second (staggered, as calls arrive). Per stream count it
reports STT final and first-TTS-audio latency (p50/p95), VAD cost (Silero seconds per stream
second, windows per run), STT batch sizes and partials, the process's CPU; and the largest
count whose engine latency (STT final p95 + first audio p95) meets `--slo-ms`: streams per
device. `bench.engines_report` writes report.json, report.md and the plot.
"""

from __future__ import annotations

import asyncio
import collections
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

from config.schema import Settings
from media.frames import FRAME_SAMPLES, SAMPLE_RATE, AudioFrame
from pipeline.engines import Engines
from pipeline.stt import SttStream
from pipeline.stt_engine import SttEngine
from pipeline.tts import ClauseSplitter
from pipeline.vad import SileroModel, VadStream

Samples = npt.NDArray[np.int16]
FRAME_S = FRAME_SAMPLES / SAMPLE_RATE

CALLER_LINES = (
    "Hi, I would like to book a table for four people tomorrow evening.",
    "Can you tell me if you are open on Sunday afternoon?",
    "I need to change my appointment to next Tuesday at ten.",
    "What is the address of your office downtown?",
    "Please cancel my reservation for Friday night.",
    "Do you have any rooms available for the second week of June?",
)
_OPENERS = ("Sure,", "Of course,", "Certainly,", "Alright,", "Great,", "No problem,")
_VERBS = ("I can book", "I have noted", "we will hold", "I found", "let me confirm")
_THINGS = ("a table", "the appointment", "a room", "your request", "the booking", "a slot")
_TIMES = ("on Monday", "on Tuesday", "this Friday", "next week", "tomorrow", "on Sunday")
_CLOSERS = ("Is there anything else?", "Does that work for you?", "Shall I send a text?")


def reply_text(rng: random.Random) -> str:
    """About 12 words, two sentences, a number that makes it new: never a cached clause."""
    return (
        f"{rng.choice(_OPENERS)} {rng.choice(_VERBS)} {rng.choice(_THINGS)} "
        f"{rng.choice(_TIMES)} at {rng.randint(1, 12)} {rng.randint(10, 59)}. "
        f"{rng.choice(_CLOSERS)}"
    )


class TimedVad:
    """The shared Silero model, every run timed (the VAD cost) and its windows counted."""

    def __init__(self, model: SileroModel) -> None:
        self._model = model
        self.seconds = 0.0
        self.runs = 0
        self.windows = 0

    def run(self, window: Any, h: Any, c: Any) -> tuple[float, Any, Any]:
        started = time.perf_counter()
        out = self._model.run(window, h, c)
        self._count(started, 1)
        return out

    def run_batch(self, windows: Any, h: Any, c: Any) -> tuple[Any, Any, Any]:
        started = time.perf_counter()
        out = self._model.run_batch(windows, h, c)
        self._count(started, len(windows))
        return out

    def _count(self, started: float, windows: int) -> None:
        self.seconds += time.perf_counter() - started
        self.runs += 1
        self.windows += windows


@dataclass
class StepResult:
    """What one stream count measured (lists of seconds; counters as deltas over the step)."""

    streams: int
    seconds: float
    finals_s: list[float] = field(default_factory=list)
    first_audio_s: list[float] = field(default_factory=list)
    partials: int = 0
    partials_skipped: int = 0
    stt_batches: dict[int, int] = field(default_factory=dict)
    vad_s: float = 0.0
    vad_runs: int = 0
    vad_windows: int = 0
    cpu_s: float = 0.0
    errors: list[str] = field(default_factory=list)


class _Stream:
    """One synthetic talker: lines in, finals and replies out, everything timed."""

    def __init__(self, bench: EngineBench, index: int, result: StepResult) -> None:
        self._bench = bench
        self._rng = random.Random(index * 7919 + result.streams)
        self._result = result
        s = bench.settings
        self._vad = VadStream(bench.vad, gate=bench.engines.vad_gate(s.vad.webrtc_mode))
        self._threshold = s.vad.silence_threshold
        self._tasks: set[asyncio.Task[Any]] = set()
        self._next = 0.0

    async def run(self, start_at: float, stop_at: float) -> None:
        loop = asyncio.get_running_loop()
        await asyncio.sleep(max(0.0, start_at - loop.time()))
        self._next = loop.time()
        try:
            while True:  # every stream speaks at least once, however late it started
                await self._turn()
                if loop.time() >= stop_at:
                    break
        except Exception as exc:  # reported, not raised: one stream's failure is a result
            self._result.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            self._vad.close()
            for task in self._tasks:
                task.cancel()

    async def _frame(self, samples: Samples) -> float:
        """Wait for this frame's time on the 20 ms clock, then score it."""
        loop = asyncio.get_running_loop()
        self._next += FRAME_S
        await asyncio.sleep(max(0.0, self._next - loop.time()))
        return await self._vad.score(AudioFrame.from_samples(samples))

    async def _turn(self) -> None:
        line = self._rng.choice(self._bench.lines)
        stt = SttStream(
            self._bench.engines.stt,
            interval_s=self._bench.settings.stt.partial_interval_ms / 1000,
            on_partial=self._on_partial,
            tasks=self._tasks,
        )
        loop = asyncio.get_running_loop()
        try:
            for at in range(0, len(line) - FRAME_SAMPLES + 1, FRAME_SAMPLES):
                samples = line[at : at + FRAME_SAMPLES]
                p = await self._frame(samples)
                stt.push(samples, loop.time(), speaking=p >= self._threshold)
            asked = loop.time()
            await stt.final()
            self._result.finals_s.append(loop.time() - asked)
        finally:
            stt.close()
        await self._reply()

    def _on_partial(self, text: str) -> None:
        self._result.partials += 1

    async def _reply(self) -> None:
        splitter = ClauseSplitter()
        clauses = [*splitter.push(reply_text(self._rng)), *splitter.flush()]
        loop = asyncio.get_running_loop()
        asked = loop.time()
        tts = self._bench.engines.tts
        first = await tts.synthesize(clauses[0])  # a Clause: position 0, first
        self._result.first_audio_s.append(loop.time() - asked)
        later = [asyncio.ensure_future(tts.synthesize(c)) for c in clauses[1:]]
        played = len(first)
        silence = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        for audio in later:
            played += len(await audio)
        for _ in range(played // FRAME_SAMPLES):  # the caller listens: silence into the VAD
            await self._frame(silence)
        self._next = max(self._next, loop.time())


class EngineBench:
    """The node's engines on their devices (`devices`: "stt", "tts", "vad" to "cpu" or
    "cuda"), and the caller lines rendered once."""

    def __init__(self, settings: Settings, devices: Mapping[str, str]) -> None:
        replace = msgspec.structs.replace
        self.settings = replace(
            settings,
            stt=replace(settings.stt, device=devices["stt"]),
            tts=replace(settings.tts, device=devices["tts"]),
            vad=replace(settings.vad, device=devices["vad"]),
            turn_model=replace(settings.turn_model, enabled=False),
        )
        engines = Engines.load_blocking(self.settings)
        assert isinstance(engines.vad, SileroModel)
        self.vad = TimedVad(engines.vad)
        self.engines = engines
        tts: Any = engines.tts
        self.lines: list[Samples] = [
            tts.synthesize_blocking(t, deterministic=True) for t in CALLER_LINES
        ]

    def close(self) -> None:
        self.engines.close()

    async def step(self, streams: int, seconds: float) -> StepResult:
        """`streams` talkers for `seconds` (turns under way then are finished)."""
        result = StepResult(streams, seconds)
        stt = self.engines.stt
        assert isinstance(stt, SttEngine)
        batches, skipped = collections.Counter(stt.batch_sizes), stt.skipped_partials
        vad = (self.vad.seconds, self.vad.runs, self.vad.windows)
        cpu = time.process_time()
        loop = asyncio.get_running_loop()
        now = loop.time()
        talkers = [_Stream(self, i, result) for i in range(streams)]
        await asyncio.gather(
            *(t.run(now + i / streams, now + seconds) for i, t in enumerate(talkers))
        )
        result.cpu_s = time.process_time() - cpu
        grown = collections.Counter(stt.batch_sizes) - batches
        result.stt_batches = dict(sorted(grown.items()))
        result.partials_skipped = stt.skipped_partials - skipped
        result.vad_s = self.vad.seconds - vad[0]
        result.vad_runs = self.vad.runs - vad[1]
        result.vad_windows = self.vad.windows - vad[2]
        return result


def run_engines(
    settings: Settings, devices: Mapping[str, str], streams: Sequence[int], seconds: float
) -> list[StepResult]:
    """Load the engines on `devices`, run each stream count in turn, close them."""
    bench = EngineBench(settings, devices)

    async def sweep() -> list[StepResult]:
        return [await bench.step(n, seconds) for n in streams]

    try:
        return asyncio.run(sweep())
    finally:
        bench.close()
