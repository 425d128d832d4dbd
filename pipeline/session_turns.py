"""The caller's side of a `CallSession`: inbound audio through VAD and the turn detector,
the utterance's streaming transcript, turn-taking and barge-in.

Caller speech while the agent speaks pauses playout at once; if it stays shorter than the
agent's backchannel threshold, or longer but its words only acknowledge ("mhm", up to
`backchannel_max_ms`; `pipeline/barge.py` reads the words), playout resumes, otherwise it is a
barge-in: playout is cleared, the reply cancelled and the history keeps only what the caller
heard. An early endpoint the caller talks on from is taken back (`_continue_turn`); over the
reply's first words, only once that speech says something (a "mhm" there is a backchannel).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from agents.base import Message, UserSaid
from agents.vocabulary import stt_context
from media.frames import AudioFrame
from pipeline.barge import acknowledges, says_something
from pipeline.events import Transcript
from pipeline.marks import TurnMarks
from pipeline.session_core import State
from pipeline.session_replies import SessionReplies
from pipeline.speech_end import audible_end
from pipeline.stt import SttStream
from pipeline.turn import (
    SpeechDiscarded,
    SpeechPaused,
    SpeechResumed,
    SpeechStarted,
    TurnEnded,
)
from pipeline.turn_model import TurnModel, TurnModelError
from pipeline.turn_taking import LastEndpoint


class SessionTurns(SessionReplies):
    _continuing: LastEndpoint | None = None
    """The early endpoint that speech over the reply's first words may continue, once its
    words say something (`_taken_back`); None: no such speech."""

    # ---- inbound audio -------------------------------------------------------------

    async def _inbound(self) -> None:
        try:
            async for frame in self._transport.source.frames():
                now = self._clock.now()  # the frame's arrival, not when its VAD batch ran
                p = await self._vad.score(frame)
                self._playout.echo.heard(frame.samples, now)
                voiced = p >= self._turns.silence_threshold
                if voiced and self._spec.turn.echo_guard and self._playout.echo.explains():
                    p = 0.0  # the agent's own voice coming back: not caller speech
                self._on_frame(frame, now, p)
        finally:
            self._vad.close()
        self.end("hangup")

    def _on_frame(self, frame: AudioFrame, now: float, p: float) -> None:
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
                    if self._candidate:  # not a barge-in (yet): the agent goes on meanwhile
                        self._playout.resume()
                    if self._utterance is not None:
                        self._utterance.speculate()
                        self._ask_turn_model(self._utterance, ev.speech_end)
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
        if self._candidate and self._turns.in_utterance and self._says_something():
            self._barge_in()

    def _says_something(self) -> bool:
        """Whether speech over the agent is a barge-in: it has lasted `backchannel_ms`, and its
        words so far are more than an acknowledgement ("mhm", "okay": a backchannel lasts
        longer than the threshold now and then), or it has gone on to `backchannel_max_ms`
        (its words are late, or say nothing). Until then the agent stays paused. Words are
        trusted as `pipeline.barge.says_something` does (a hum's partial can be a stray word)."""
        turn = self._spec.turn
        voiced_ms = self._turns.voiced_s * 1000
        if voiced_ms < turn.backchannel_ms:
            return False
        if voiced_ms >= turn.backchannel_max_ms:
            return True
        stream = self._utterance
        return stream is not None and says_something(stream.partial, stream.committed)

    def _ask_turn_model(self, stream: SttStream, speech_end: float) -> None:
        """At a pause, ask the audio turn model whether the caller is done (its verdict
        shortens or lengthens this pause's window; one for an earlier pause is dropped)."""
        model = self._engines.turn
        if model is None or not self._spec.turn.audio_model or self._candidate:
            return  # (over the agent's speech the usual windows join "Wait, ... what about")
        self._tasks.spawn(self._turn_verdict(model, stream.audio(), speech_end), "turn-model")

    async def _turn_verdict(
        self, model: TurnModel, audio: npt.NDArray[np.int16], speech_end: float
    ) -> None:
        try:
            probability = await model.probability(audio)
        except TurnModelError as exc:  # the transcript's window decides alone
            self._log.warning("turn model verdict lost", extra={"error": str(exc)})
            return
        self._turns.update_model(probability, speech_end)

    def _new_stream(self) -> SttStream:
        return SttStream(
            self._engines.stt,
            interval_s=self._engines.settings.stt.partial_interval_ms / 1000,
            on_partial=self._on_partial,
            tasks=self._tasks.members,
            on_speculated=self._on_speculated,
            context=stt_context(self._spec.vocabulary),
        )

    def _on_speech_started(self) -> None:
        self._silence.cancel()
        self._guard.closing.caller_started()
        stream = self._new_stream()
        endpoint = self._endpoint  # an early one: the caller paused mid-sentence ("Hi, ... I'd")
        if endpoint and endpoint.continued_by(self._clock.now(), self._playout.heard_text()):
            if self._reply_audible():  # "mhm" over the reply's first words: not yet
                self._continuing = endpoint
            else:
                self._continue_turn(stream)
        said = (m.text for m in reversed(self.history) if m.role == "assistant")
        self._turns.agent_asked(next(said, ""))  # (what it asked shapes the line's window)
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

    def _reply_audible(self) -> bool:
        return (
            self.state == State.AGENT_SPEAKING
            and self._response_task is not None
            and self._playout.speaking
        )

    def _taken_back(self, stream: SttStream, endpoint: LastEndpoint) -> SttStream:
        """Speech over the reply's first words says something: the caller went on with the
        early turn (`endpoint`). Take it back (`_continue_turn`); the new utterance's stream
        holds the earlier audio, then this speech's, so the turn is transcribed as one."""
        self._endpoint, self._continuing = endpoint, None
        merged = self._new_stream()
        self._continue_turn(merged)
        merged.push(stream.audio(), self._clock.now(), speaking=False)
        stream.close()
        return merged

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
        elif self._turns.in_utterance and self._says_something():
            self._barge_in()  # its words came in: more than a "mhm"

    def _drop_utterance(self) -> None:
        self._drop_preemption()
        if self._utterance is not None:
            self._utterance.close()
            self._utterance = None
        self._guard.closing.caller_done()
        self._continuing = None
        if self._candidate:
            self._candidate = False
            self._playout.resume()
        elif self.state == State.USER_SPEAKING:
            self._set_state(State.LISTENING)
            self._silence.arm()

    def _barge_in(self) -> None:
        """The caller is really talking over the agent: stop it and keep what was heard (or,
        over the reply to an early endpoint, take that turn back and go on with it)."""
        self._candidate = False
        if self._continuing is not None and self._utterance is not None:
            self._utterance = self._taken_back(self._utterance, self._continuing)
            return
        heard = self._playout.clear()
        self._cancel_response(heard)
        self._set_state(State.USER_SPEAKING)
        self._log.info("barge-in")

    def _on_turn_ended(self, ev: TurnEnded) -> None:
        stream, self._utterance = self._utterance, None
        if stream is None:
            return
        continuing, self._continuing = self._continuing, None
        if self._candidate:
            self._candidate = False
            if self._playout.speaking and not self._guard.closing.pending:  # a backchannel?
                self._playout.resume()
                job = self._backchannel_or_turn(stream, ev, continuing)
                self._tasks.spawn(job, "backchannel")
                return
            if continuing is not None and continuing is self._endpoint:  # (the reply ended)
                stream = self._taken_back(stream, continuing)
        self._take_turn(stream, ev)

    async def _backchannel_or_turn(
        self, stream: SttStream, ev: TurnEnded, continuing: LastEndpoint | None
    ) -> None:
        """Speech over the agent too short to barge in: a backchannel ("mhm", "okay") lets
        the reply go on; other words (a line said faintly or in pieces: "Wait, ... what about
        Aetna?") are a turn after all: the reply stops there and the line is answered (over
        the reply to an early endpoint, as the rest of that turn, transcribed whole)."""
        try:
            text = await stream.final()
        except BaseException:
            stream.close()
            self._guard.closing.caller_done()
            raise
        if acknowledges(text) or self._utterance is not None:
            stream.close()  # (speech that started since is judged by itself)
            self._guard.closing.caller_done()
            return
        if continuing is not None and continuing is self._endpoint:
            self._take_turn(self._taken_back(stream, continuing), ev)
            return
        if self._playout.speaking:
            self._barge_in()
        self._take_turn(stream, ev, text)

    def _take_turn(self, stream: SttStream, ev: TurnEnded, text: str | None = None) -> None:
        """The caller's turn ended: answer it once its final transcript is in (`text`: in)."""
        self._turn += 1
        marks = TurnMarks(self._turn)
        # (from the last sound, not the VAD's last frame: the caller waits through its tail)
        marks.mark("speech_end", audible_end(stream.audio(), ev.decided_at, ev.speech_end))
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
        self._tasks.spawn(self._finish_turn(stream, marks, text), "final-transcript")

    async def _finish_turn(
        self, stream: SttStream, marks: TurnMarks, text: str | None = None
    ) -> None:
        try:
            if text is None:
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
