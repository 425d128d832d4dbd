"""The agent's side of a `CallSession`: its replies (started, held, committed, cancelled,
reported) and the preemptive reply held while the caller pauses.

A reply is a `Response` (`pipeline/response.py`) watched by the dead-air guard; only one plays
at a time (`_response`), and a cancelled one leaves in the history what the caller heard.
"""

from __future__ import annotations

import asyncio

from agents.base import AgentInput, CallStarted, Message, UserSaid
from pipeline.actions import ReplyWatch, SpokenLine, WatchedAgent, tool_event
from pipeline.events import Transcript
from pipeline.marks import TurnMarks
from pipeline.response import Response, first_clause_words
from pipeline.session_core import SessionCore, State
from pipeline.stt import SttStream
from pipeline.turn_taking import HeldReply


class SessionReplies(SessionCore):
    def _cancel_response(self, heard: str) -> None:
        """Stop the reply in progress; `heard` (what the caller heard of it) is kept."""
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
        task = self._tasks.spawn(self._respond(response, watch), "preemptive-response")
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
        self._response_task = self._tasks.spawn(self._respond(response, watch), "response")
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
            first_clause_max_words=first_clause_words(self._engines.estimator),
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
