"""CallSession: one call's conversation, an explicit state machine driven by typed events.

    LISTENING ──speech──▶ USER_SPEAKING ──turn end──▶ THINKING ──first audio──▶ AGENT_SPEAKING
        ▲                                                                         │
        └───────────────────────── reply played ◀──────────────────────────────────┘

Caller speech while the agent speaks pauses playout at once; if it stays shorter than the
agent's backchannel threshold ("mhm") playout resumes, otherwise it is a barge-in: playout is
cleared, the reply cancelled and the history keeps only what the caller heard.
"""

from __future__ import annotations

import asyncio
import collections
import enum
import logging
from collections.abc import Coroutine
from typing import Any

import numpy as np

from agents.base import (
    Agent,
    AgentInput,
    CallStarted,
    DtmfPressed,
    Message,
    NoInput,
    UserSaid,
)
from agents.spec import AgentSpec
from agents.vocabulary import stt_context
from media.call import Call, CallControlError, CallInfo, Dtmf, RemoteHangup
from media.clock import Clock
from media.frames import AudioFrame
from media.transport import Transport
from pipeline.actions import CallLog, DeadAirGuard, ReplyWatch, SpokenLine, WatchedAgent, tool_event
from pipeline.dtmf import DtmfCollector
from pipeline.engines import Engines
from pipeline.events import (
    CallEnded,
    DtmfReceived,
    EventCallback,
    StateChanged,
    Transcript,
)
from pipeline.marks import TurnMarks
from pipeline.playout import Playout
from pipeline.response import Response
from pipeline.stt import SttStream
from pipeline.turn import (
    SpeechDiscarded,
    SpeechPaused,
    SpeechResumed,
    SpeechStarted,
    TurnDetector,
    TurnEnded,
)
from pipeline.turn_taking import HeldReply, LastEndpoint, NoInputTimer
from pipeline.vad import VadStream

log = logging.getLogger(__name__)

PREROLL_FRAMES = 15  # 300 ms of audio kept from before the detected start of speech


class State(enum.StrEnum):
    LISTENING = "listening"
    USER_SPEAKING = "user_speaking"
    THINKING = "thinking"
    AGENT_SPEAKING = "agent_speaking"
    ENDED = "ended"


class CallSession:
    def __init__(
        self,
        *,
        info: CallInfo,
        transport: Transport,
        call: Call,
        agent: Agent,
        spec: AgentSpec,
        engines: Engines,
        clock: Clock,
        on_event: EventCallback,
    ) -> None:
        self.info = info
        self._transport = transport
        self._call = call
        self._agent = agent
        self._spec = spec
        self._engines = engines
        self._clock = clock
        self._emit = on_event
        vs = engines.settings.vad
        self._vad = VadStream(engines.vad, gate=engines.vad_gate(vs.webrtc_mode))
        self._turns = TurnDetector(
            spec.turn, speech_threshold=vs.speech_threshold, silence_threshold=vs.silence_threshold
        )
        self._log = CallLog(log, {"call_id": info.call_id, "tenant_id": info.tenant_id})
        self._guard = DeadAirGuard(
            spec=spec, tts=engines.tts, clock=clock, log=self._log, emit=on_event
        )
        self._playout = Playout(
            self._guard.tap(transport.sink), clock, on_first_frame=self._on_first_frame
        )
        self.state = State.LISTENING
        self.history: list[Message] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._preroll: collections.deque[np.ndarray[Any, np.dtype[np.int16]]] = collections.deque(
            maxlen=PREROLL_FRAMES
        )
        self._utterance: SttStream | None = None
        self._candidate = False  # speech that started while the agent was speaking
        self._response: Response | None = None
        self._response_task: asyncio.Task[None] | None = None
        self._marks: TurnMarks | None = None
        self._turn = 0
        self._endpoint: LastEndpoint | None = None
        self._preemption: HeldReply | None = None
        self._silence = NoInputTimer(
            spec.turn,
            clock,
            self._spawn,
            still_silent=lambda: self.state == State.LISTENING and self._utterance is None,
            prompt=self._reprompt,
            give_up=lambda: self.end("no_input"),
        )
        self._dtmf = DtmfCollector(clock, self._spawn, self._on_keypad_entry)
        self._guard.closing.keys_pending = lambda: self._dtmf.pending
        self._ended: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._started_at = 0.0

    # ---- lifecycle -------------------------------------------------------------------

    async def run(self) -> CallEnded:
        """Hold the conversation until the call ends; return how it ended."""
        self._started_at = self._clock.now()
        self._playout.start()
        self._spawn(self._inbound(), "inbound")
        self._spawn(self._signals(), "signals")
        self._spawn(self._max_duration(), "max-duration")
        self._set_state(State.THINKING)
        self._start_response(CallStarted(), None)
        reason = "failed"
        try:
            reason = await self._ended
        finally:
            self._set_state(State.ENDED)
            await self._shutdown()
            if reason not in {"hangup", "transferred"}:
                try:
                    await self._call.hangup(reason)
                except CallControlError as exc:
                    self._log.warning("hangup failed", extra={"error": str(exc)})
        ended = CallEnded(
            reason=reason,
            duration_s=round(self._clock.now() - self._started_at, 3),
            slots=dict(self._agent.slots),
        )
        self._emit(ended)
        self._log.info("call ended", extra={"reason": reason, "turns": self._turn})
        return ended

    def end(self, reason: str) -> None:
        if not self._ended.done():
            self._ended.set_result(reason)

    async def _shutdown(self) -> None:
        tasks = [t for t in self._tasks if not t.done()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._utterance is not None:
            self._utterance.close()
        await self._playout.aclose()
        self._guard.close()
        await self._agent.aclose()

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.create_task(coro, name=f"{name}:{self.info.call_id}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            self._log.error("call task failed", exc_info=exc, extra={"task": task.get_name()})
            self.end("failed")

    def _set_state(self, state: State) -> None:
        if state != self.state:
            self.state = state
            self._emit(StateChanged(state.value))

    # ---- inbound audio -------------------------------------------------------------

    async def _inbound(self) -> None:
        async for frame in self._transport.source.frames():
            self._on_frame(frame, self._clock.now())
        self.end("hangup")

    def _on_frame(self, frame: AudioFrame, now: float) -> None:
        p = self._vad.feed(frame)
        samples = frame.samples
        if self._utterance is not None:
            self._utterance.push(samples, now, speaking=p >= self._turns.silence_threshold)
        else:
            self._preroll.append(samples)
        for ev in self._turns.feed(p, now):
            match ev:
                case SpeechStarted():
                    self._on_speech_started()
                case SpeechPaused():
                    if (
                        self._candidate
                        and self._turns.voiced_s * 1000 < self._spec.turn.backchannel_ms
                    ):
                        self._playout.resume()
                    if self._utterance is not None:
                        self._utterance.speculate()
                case SpeechResumed():
                    if self._candidate:
                        self._playout.pause()
                    if self._utterance is not None:
                        self._utterance.cancel_speculation()
                    self._drop_preemption()
                case TurnEnded():
                    self._on_turn_ended(ev)
                case SpeechDiscarded():
                    self._drop_utterance()
        barge_in = self._turns.voiced_s * 1000 >= self._spec.turn.backchannel_ms
        if self._candidate and self._turns.in_utterance and barge_in:
            self._barge_in()

    def _on_speech_started(self) -> None:
        self._silence.cancel()
        self._guard.closing.caller_started()
        stream = SttStream(
            self._engines.stt,
            interval_s=self._engines.settings.stt.partial_interval_ms / 1000,
            on_partial=self._on_partial,
            tasks=self._tasks,
            on_speculated=self._on_speculated,
            context=stt_context(self._spec.vocabulary),
        )
        endpoint = self._endpoint  # an early one: the caller paused mid-sentence ("Hi, ... I'd")
        if endpoint and endpoint.continued_by(self._clock.now(), self._playout.heard_text()):
            self._continue_turn(stream)
        for chunk in self._preroll:
            stream.push(chunk, self._clock.now(), speaking=False)
        self._preroll.clear()
        self._utterance = stream
        if self.state == State.USER_SPEAKING:
            return
        if self.state in (State.AGENT_SPEAKING, State.THINKING) and self._response_task:
            self._candidate = True
            self._playout.pause()
        else:
            self._set_state(State.USER_SPEAKING)

    def _continue_turn(self, stream: SttStream) -> None:
        """Take back the early turn: cancel its reply (at most a word or two was heard), and let
        the new utterance start with the earlier audio so the turn is transcribed as one."""
        endpoint, self._endpoint = self._endpoint, None
        assert endpoint is not None
        self._playout.clear()
        self._cancel_response("")
        del self.history[endpoint.history_len :]  # the early turn and any reply to it
        self._agent.restore(endpoint.agent_state)  # and what it did to the agent
        stream.push(endpoint.audio, self._clock.now(), speaking=False)
        self._turn -= 1
        self._set_state(State.USER_SPEAKING)
        self._log.info("turn continued after an early endpoint")

    def _on_partial(self, text: str) -> None:
        self._turns.update_transcript(text)
        if not self._candidate:
            self._emit(Transcript(role="user", text=text, final=False, turn=self._turn + 1))

    def _drop_utterance(self) -> None:
        self._drop_preemption()
        if self._utterance is not None:
            self._utterance.close()
            self._utterance = None
        self._guard.closing.caller_done()
        if self._candidate:
            self._candidate = False
            self._playout.resume()
        elif self.state == State.USER_SPEAKING:
            self._set_state(State.LISTENING)
            self._silence.arm()

    def _barge_in(self) -> None:
        """The caller is really talking over the agent: stop it and keep what was heard."""
        self._candidate = False
        heard = self._playout.clear()
        self._cancel_response(heard)
        self._set_state(State.USER_SPEAKING)
        self._log.info("barge-in")

    def _cancel_response(self, heard: str) -> None:
        if self._response_task is not None and not self._response_task.done():
            self._response_task.cancel()
            self._guard.closing.reply_cancelled(self._agent)  # a hang-up it held is called off
            if heard and not (self._response is not None and self._response.reported):
                self.history.append(Message(role="assistant", text=heard, interrupted=True))
                self._emit(
                    Transcript(
                        role="agent", text=heard, final=True, interrupted=True, turn=self._turn
                    )
                )
        self._response_task = None
        self._response = None

    def _on_turn_ended(self, ev: TurnEnded) -> None:
        stream, self._utterance = self._utterance, None
        if stream is None:
            return
        if self._candidate:
            self._candidate = False
            if self._playout.speaking and not self._guard.closing.pending:  # a backchannel
                stream.close()
                self._guard.closing.caller_done()
                self._playout.resume()
                return
        self._turn += 1
        marks = TurnMarks(self._turn)
        marks.mark("speech_end", ev.speech_end)
        marks.mark("endpoint", ev.decided_at)
        held = self._preemption
        agent_state = (
            held.checkpoint  # from before the held reply
            if held is not None and held.stream is stream
            else self._guard.closing.checkpoint(self._agent)  # (before a held goodbye)
        )
        self._endpoint = LastEndpoint(stream.audio(), ev.decided_at, len(self.history), agent_state)
        # A reply paused for this speech is kept until the words are in (see `_no_words`).
        self._set_state(State.THINKING)
        self._spawn(self._finish_turn(stream, marks), "final-transcript")

    async def _finish_turn(self, stream: SttStream, marks: TurnMarks) -> None:
        try:
            text = await stream.final()
        finally:
            stream.close()
            self._guard.closing.caller_done()
        marks.mark("final_transcript", self._clock.now())
        if not text.strip():
            self._no_words(stream, marks)
            return
        self._cancel_response(self._playout.clear())
        self._set_state(State.THINKING)
        self._silence.reset()
        self._emit(Transcript(role="user", text=text, final=True, turn=marks.turn))
        held = self._preemption
        if held is not None and held.stream is stream and held.text == text:
            self._preemption = None
            self.history.append(Message(role="user", text=text))
            self._commit(held, marks)
            return
        self._drop_preemption()
        self.history.append(Message(role="user", text=text))
        self._start_response(UserSaid(text), marks)

    def _no_words(self, stream: SttStream, marks: TurnMarks) -> None:
        """The turn's speech yielded no words: it is no turn (no agent call, nothing logged as
        said); a reply it paused plays on, else the session listens (and reprompts)."""
        if marks.turn == self._turn:  # (not already taken back by a continuation)
            self._turn -= 1
            self._endpoint = None  # nothing to continue
        if self._preemption is not None and self._preemption.stream is stream:
            self._drop_preemption()
        if self._utterance is not None:
            return  # the caller is speaking again
        if self._response_task is not None and not self._response_task.done():
            self._playout.resume()
            self._set_state(State.AGENT_SPEAKING if self._playout.speaking else State.THINKING)
            return
        self._set_state(State.LISTENING)
        self._silence.arm()

    # ---- preemptive replies ----------------------------------------------------------

    def _on_speculated(self, stream: SttStream, text: str) -> None:
        """The caller paused and the pause's transcript is in: start the reply, held."""
        if (
            not self._spec.turn.preemptive
            or not self._agent.may_speculate
            or stream is not self._utterance
            or self._candidate
            or self.state != State.USER_SPEAKING
            or self._dtmf.pending
            or not text.strip()
        ):
            return
        self._drop_preemption()
        checkpoint = self._agent.checkpoint()
        release = asyncio.Event()
        history = [*self.history, Message(role="user", text=text)]
        response, watch = self._new_response(UserSaid(text), history, None, hold=release)
        task = self._spawn(self._respond(response, watch), "preemptive-response")
        self._preemption = HeldReply(stream, text, checkpoint, response, task, release, watch)

    def _drop_preemption(self) -> None:
        """The caller went on (or something else came first): forget the held reply."""
        held, self._preemption = self._preemption, None
        if held is None:
            return
        held.task.cancel()
        self._agent.restore(held.checkpoint)

    def _commit(self, held: HeldReply, marks: TurnMarks) -> None:
        """The turn ended as the held reply assumed: let it play now."""
        self._cancel_response(self._playout.clear())
        self._marks = marks
        held.response.attach_marks(marks)
        self._response = held.response
        self._response_task = held.task
        self._guard.closing.reply(held.watch.closing)
        held.release.set()

    # ---- responses -------------------------------------------------------------------

    def _start_response(
        self, event: AgentInput, marks: TurnMarks | None, *, line: str | None = None
    ) -> None:
        """The agent's reply to `event`; with `line`, the session's own fallback or reprompt
        line instead (a reply like any other: heard, kept in the history, interruptible)."""
        self._drop_preemption()
        self._cancel_response(self._playout.clear())
        self._marks = marks
        response, watch = self._new_response(event, self.history, marks, line=line)
        self._response = response
        self._response_task = self._spawn(self._respond(response, watch), "response")
        self._guard.closing.reply(watch.closing)

    def _new_response(
        self,
        event: AgentInput,
        history: list[Message],
        marks: TurnMarks | None,
        *,
        hold: asyncio.Event | None = None,
        line: str | None = None,
    ) -> tuple[Response, ReplyWatch]:
        """The reply to `event` by the agent (or, with `line`, that line), and its watch."""
        watch = self._guard.watch(event, self._agent.checkpoint())
        response = Response(
            agent=WatchedAgent(self._agent, watch) if line is None else SpokenLine(line),
            history=history,
            event=event,
            tts=self._guard.voice,
            voice=self._spec.voice,
            playout=self._playout,
            clock=self._clock,
            marks=marks,
            on_audio_start=lambda: self._set_state(State.AGENT_SPEAKING),
            on_tool=lambda result: self._emit(tool_event(result)),
            run_action=lambda action: watch.act(
                action,
                self._call,
                self._spec.transfer_target,
                self._log,
                before_hold=lambda: self._report(response),
            ),
            hold=hold,
        )
        return response, watch

    async def _respond(self, response: Response, watch: ReplyWatch) -> None:
        await response.run()
        if self._response is not response:
            return
        self._response = None
        self._response_task = None
        self._report(response)
        if response.end_reason is not None:
            self.end(response.end_reason)
            return
        line = self._guard.follow_up(response.text, watch, self._agent)
        if self._utterance is not None:
            return  # the caller is talking: their turn comes next
        if line.strip():
            self._set_state(State.THINKING)
            self._start_response(CallStarted(), None, line=line)
        else:
            self._set_state(State.LISTENING)
            self._silence.arm()
            self._guard.listening()

    def _report(self, response: Response) -> None:
        """The reply's words go to the history and the call's events, once."""
        if response.text and not response.reported:
            response.reported = True
            self.history.append(Message(role="assistant", text=response.text))
            self._emit(Transcript(role="agent", text=response.text, final=True, turn=self._turn))

    def _on_first_frame(self) -> None:
        marks = self._marks
        if marks is None:
            return
        marks.mark("first_frame_out", self._clock.now())
        marks.observe()
        self._emit(marks.metrics(self._started_at))
        self._marks = None

    # ---- timers and signalling -----------------------------------------------------

    def _reprompt(self, count: int) -> None:
        self._set_state(State.THINKING)
        self._start_response(NoInput(count), None)

    async def _max_duration(self) -> None:
        await self._clock.sleep_until(self._started_at + self._spec.turn.max_duration_s)
        self.end("max_duration")

    async def _signals(self) -> None:
        while True:
            match await self._call.next_signal():
                case Dtmf(digit=d):
                    self._dtmf.press(d)
                case RemoteHangup():
                    self.end("hangup")
                    return

    def _on_keypad_entry(self, digits: str) -> None:
        self._emit(DtmfReceived(digits))
        self._silence.cancel()
        self._cancel_response(self._playout.clear())
        self._turn += 1
        self.history.append(Message(role="user", text=f"[keys pressed: {digits}]"))
        self._set_state(State.THINKING)
        self._start_response(DtmfPressed(digits), None)
