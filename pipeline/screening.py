"""The first seconds of an outbound call, before the conversation: answering-machine detection
(`pipeline/amd.py`) and, for a machine, what the agent's `[amd]` says to do.

`screen_call` listens to the far end's frames through the call's VAD until the detector
decides, and reports the decision as an `AmdDetected` event. A person (or unknown: nobody
spoke) returns None, and the conversation starts at once (the agent's greeting; a person
decided at the deadline while still talking first gets to pause, `PAUSE_MS`). The
greeting's first clause (`spec.greeting`, split as the reply will be) is synthesized while the
detector listens, so that it comes from the TTS cache: a person hears it as soon as they are
known to be one, not a synthesis later. A machine:
`hang_up` hangs up, `leave_message` waits for the beep (or the greeting's end silence),
speaks the voicemail message and hangs up; either way the call's `CallEnded` is returned
(reason `machine` or `voicemail`). The message is synthesized as soon as the call is known to
be a machine, so that it starts within a frame of the beep.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Final

import numpy as np
import numpy.typing as npt

from agents.spec import AgentSpec
from core.errors import EngineError
from media.call import Call, CallControlError, CallInfo
from media.clock import Clock
from media.frames import AudioFrame
from media.transport import Transport
from pipeline.amd import AnsweringMachineDetector, render_voicemail
from pipeline.engines import Engines
from pipeline.events import AmdDetected, CallEnded, EventCallback
from pipeline.playout import Playout
from pipeline.response import first_clause_words
from pipeline.tts import ClauseSplitter
from pipeline.vad import VadStream, open_gate

__all__ = ["screen_call"]

log = logging.getLogger(__name__)

PAUSE_MS: Final = 300.0
"""A person decided while talking: the greeting waits for a pause this long ..."""
PAUSE_WAIT_S: Final = 2.0
"""... or this long at most."""

TRANSCRIBE_EVERY_S: Final = 0.5
"""How much more of the far end's speech each transcription of the greeting waits for (one
at a time: a slow recogniser makes them fewer). Every 1.0 s, the words of a person's long
answer ("..., who is calling please?") came too late for the length rule in the AMD bench."""


async def screen_call(
    *,
    info: CallInfo,
    transport: Transport,
    call: Call,
    spec: AgentSpec,
    engines: Engines,
    clock: Clock,
    on_event: EventCallback,
    variables: Mapping[str, str] | None = None,
) -> CallEnded | None:
    """Classify the answered call; None: go on with the conversation, else how it ended."""
    extra = {"call_id": info.call_id, "tenant_id": info.tenant_id}
    started = clock.now()
    ears = _Ears(AnsweringMachineDetector(spec.amd, answered_at=started), engines, clock)
    frames = transport.source.frames()
    greeting = _warm_greeting(engines, spec)
    try:
        if not await ears.listen(frames, until=lambda d: d.decision is not None):
            return _ended("hangup", started, clock)  # the far end hung up first
        decision = ears.detector.decision
        assert decision is not None
        on_event(AmdDetected.of(decision))
        result = {"result": decision.result, "reason": decision.reason}
        log.info("amd decided", extra={**extra, **result, "decided_ms": decision.decided_ms})
        if decision.result != "machine":
            if not await ears.listen(frames, until=_paused(clock)):
                return _ended("hangup", started, clock)
            await _ready(greeting, extra)
            return None
        if spec.amd.on_machine == "hang_up":
            await _hang_up(call, "machine", extra)
            return _ended("machine", started, clock)
        text = render_voicemail(spec.amd.voicemail_message, variables or {})
        speech = asyncio.ensure_future(engines.tts.synthesize(text, spec.voice))
        try:  # synthesized while the greeting goes on: ready at the beep
            if not await ears.listen(frames, until=lambda d: d.cue is not None):
                return _ended("hangup", started, clock)
            async with asyncio.TaskGroup() as tasks:  # the far end's audio is not kept
                discard = tasks.create_task(_discard(frames), name=f"amd-discard:{info.call_id}")
                await _speak(transport, clock, text, await speech)
                discard.cancel()
        finally:
            speech.cancel()
        cue = ears.detector.cue
        log.info("voicemail left", extra={**extra, "after": cue.after if cue else ""})
        await _hang_up(call, "voicemail", extra)
        return _ended("voicemail", started, clock)
    finally:
        if greeting is not None and not greeting.done():
            greeting.cancel()
            with contextlib.suppress(asyncio.CancelledError, EngineError):
                await greeting
        await ears.aclose()


def _paused(clock: Clock) -> Callable[[AnsweringMachineDetector], bool]:
    """A person decided while still talking (at the deadline) has paused, or waited long
    enough: the greeting does not start over their words."""
    limit = clock.now() + PAUSE_WAIT_S
    return lambda d: d.silence_ms(clock.now()) >= PAUSE_MS or clock.now() >= limit


def _warm_greeting(engines: Engines, spec: AgentSpec) -> asyncio.Future[object] | None:
    """The greeting's first clause synthesized now (into the TTS cache), as the reply will
    split it; None without a greeting in the spec (a model-written one)."""
    words = first_clause_words(engines.estimator)
    splitter = ClauseSplitter() if words is None else ClauseSplitter(first_clause_max_words=words)
    clauses = [*splitter.push(spec.greeting), *splitter.flush()]
    if not clauses:
        return None
    return asyncio.ensure_future(engines.tts.synthesize(clauses[0], spec.voice))


async def _ready(greeting: asyncio.Future[object] | None, extra: dict[str, str]) -> None:
    """The greeting's first clause is in the cache (or failed: the reply will say so)."""
    if greeting is None:
        return
    try:
        await greeting
    except EngineError as exc:
        log.warning("greeting synthesis failed", extra={**extra, "error": str(exc)})


class _Ears:
    """The far end's frames through the call's VAD into the detector, and the greeting's words:
    every `TRANSCRIBE_EVERY_S` of speech the utterance so far is transcribed (one decode at a
    time, in the background) and the detector hears the text."""

    def __init__(self, detector: AnsweringMachineDetector, engines: Engines, clock: Clock) -> None:
        self.detector = detector
        self._stt = engines.stt
        self._clock = clock
        vs = engines.settings.vad
        gate = engines.vad_gate(vs.webrtc_mode) if vs.gate == "webrtcvad" else open_gate
        self._vad = VadStream(engines.vad, gate=gate)
        self._threshold = vs.silence_threshold
        self._heard: list[npt.NDArray[np.int16]] = []
        self._next_decode = TRANSCRIBE_EVERY_S
        self._decode: asyncio.Task[None] | None = None

    async def listen(
        self,
        frames: AsyncIterator[AudioFrame],
        until: Callable[[AnsweringMachineDetector], bool],
    ) -> bool:
        """Frames until `until(detector)`; False: the far end hung up first."""
        if until(self.detector):
            return True
        async for frame in frames:
            now = self._clock.now()  # the frame's arrival: its start is 20 ms before
            speech = await self._vad.score(frame) >= self._threshold
            self.detector.feed(frame.samples, now - 0.02, speech)
            if self.detector.decision is None:
                self._transcribe(frame, speech)
            if until(self.detector):
                return True
        return False

    def _transcribe(self, frame: AudioFrame, speech: bool) -> None:
        if speech or self._heard:
            self._heard.append(frame.samples)
        if len(self._heard) * 0.02 < self._next_decode or self._decode is not None:
            return
        self._next_decode += TRANSCRIBE_EVERY_S
        audio = np.concatenate(self._heard)
        end = self._clock.now()  # the end of the frame just fed, the audio's end
        self._decode = asyncio.create_task(self._hear(audio, end), name="amd-transcribe")

    async def _hear(self, audio: npt.NDArray[np.int16], end: float) -> None:
        try:
            text = await self._stt.transcribe(audio, final=False)
        except EngineError as exc:  # the words only help: timing and the beep still decide
            log.warning("amd transcription failed", extra={"error": str(exc)})
            text = None
        finally:
            self._decode = None
        if text:
            self.detector.heard(text, self._clock.now(), audio_end_s=end)

    async def aclose(self) -> None:
        self._vad.close()
        if self._decode is not None:
            self._decode.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._decode


async def _discard(frames: AsyncIterator[AudioFrame]) -> None:
    async for _ in frames:
        pass


async def _speak(
    transport: Transport, clock: Clock, text: str, samples: npt.NDArray[np.int16]
) -> None:
    """The message to the far end, paced; returns once it has all been sent."""
    playout = Playout(transport.sink, clock)
    playout.start()
    try:
        playout.begin_response()
        playout.enqueue(text, samples)
        await playout.drain()
    finally:
        await playout.aclose()


async def _hang_up(call: Call, reason: str, extra: dict[str, str]) -> None:
    try:
        await call.hangup(reason)
    except CallControlError as exc:
        log.warning("hangup failed", extra={**extra, "error": str(exc)})


def _ended(reason: str, started: float, clock: Clock) -> CallEnded:
    return CallEnded(reason=reason, duration_s=round(clock.now() - started, 3))
