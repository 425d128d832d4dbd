"""CallSession: one call's conversation, an explicit state machine driven by typed events.

    LISTENING ──speech──▶ USER_SPEAKING ──turn end──▶ THINKING ──first audio──▶ AGENT_SPEAKING
        ▲                                                                         │
        └───────────────────────── reply played ◀──────────────────────────────────┘

Caller speech while the agent speaks pauses playout at once; if it stays shorter than the
agent's backchannel threshold ("mhm") playout resumes, otherwise it is a barge-in: playout is
cleared, the reply cancelled and the history keeps only what the caller heard.

The session's parts: `pipeline/session_core.py` (its states and fields),
`pipeline/session_turns.py` (inbound audio, turn-taking, barge-in),
`pipeline/session_replies.py` (the agent's replies, preemptive ones included), and here its
construction, lifecycle, timers and signalling.
"""

from __future__ import annotations

import asyncio
import collections
import logging

from agents.base import Agent, CallStarted, DtmfPressed, Message, NoInput
from agents.spec import AgentSpec
from core.tasks import OwnedTasks
from media.call import Call, CallControlError, CallInfo, Direction, Dtmf, RemoteHangup
from media.clock import Clock
from media.transport import Transport
from pipeline.actions import CallLog, DeadAirGuard
from pipeline.dtmf import DtmfCollector, keys_shown
from pipeline.engines import Engines
from pipeline.events import CallEnded, DtmfReceived, EventCallback
from pipeline.playout import Playout
from pipeline.privacy import RecordingSwitch
from pipeline.screening import screen_call
from pipeline.session_core import PREROLL_FRAMES, State
from pipeline.session_turns import SessionTurns
from pipeline.turn import TurnDetector
from pipeline.turn_taking import NoInputTimer
from pipeline.vad import VadStream, open_gate

__all__ = ["CallSession", "State"]

log = logging.getLogger(__name__)


class CallSession(SessionTurns):
    """One call's conversation: built here, run until it ends (`run`), shut down; its timers
    and signalling. The caller's side is `SessionTurns`, the agent's replies `SessionReplies`."""

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
        gate = engines.vad_gate(vs.webrtc_mode) if vs.gate == "webrtcvad" else open_gate
        self._vad = VadStream(engines.vad, gate=gate)
        self._turns = TurnDetector(
            spec.turn, speech_threshold=vs.speech_threshold, silence_threshold=vs.silence_threshold
        )
        self._log = CallLog(log, {"call_id": info.call_id, "tenant_id": info.tenant_id})
        rec = RecordingSwitch.of(transport)
        self._guard = DeadAirGuard(
            spec=spec, tts=engines.tts, clock=clock, log=self._log, emit=on_event, recording=rec
        )
        self._playout = Playout(
            self._guard.tap(transport.sink), clock, on_first_frame=self._on_first_frame
        )
        self.state = State.LISTENING
        self.history = []
        self._tasks = OwnedTasks(
            info.call_id, log=self._log, failed="call task failed", on_failure=self._task_failed
        )
        self._preroll = collections.deque(maxlen=PREROLL_FRAMES)
        self._utterance = None
        self._candidate = False
        self._response = None
        self._response_task = None
        self._marks = None
        self._turn = 0
        self._endpoint = None
        self._preemption = None
        self._silence = NoInputTimer(
            spec.turn,
            clock,
            self._tasks.spawn,
            still_silent=lambda: self.state == State.LISTENING and self._utterance is None,
            prompt=self._reprompt,
            give_up=lambda: self.end("no_input"),
        )
        self._dtmf = DtmfCollector(clock, self._tasks.spawn, self._on_keypad_entry)
        self._guard.closing.keys_pending = lambda: self._dtmf.pending
        self._ended = asyncio.get_running_loop().create_future()
        self._started_at = 0.0

    # ---- lifecycle -------------------------------------------------------------------

    async def run(self) -> CallEnded:
        """Hold the conversation until the call ends; return how it ended. An outbound call
        is screened first (`[amd]`): a machine's call may end there, unheard by the agent."""
        self._started_at = self._clock.now()
        if self.info.direction == Direction.OUTBOUND and self._spec.amd.enabled:
            screened = await self._screen()
            if screened is not None:
                return screened
        self._playout.start()
        self._tasks.spawn(self._inbound(), "inbound")
        self._tasks.spawn(self._signals(), "signals")
        self._tasks.spawn(self._max_duration(), "max-duration")
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

    async def _screen(self) -> CallEnded | None:
        """Answering-machine detection; the call's end if a machine's call ended there."""
        ended = await screen_call(
            info=self.info,
            transport=self._transport,
            call=self._call,
            spec=self._spec,
            engines=self._engines,
            clock=self._clock,
            on_event=self._emit,
        )
        if ended is not None:
            self._set_state(State.ENDED)
            await self._shutdown()
            self._emit(ended)
            self._log.info("call ended", extra={"reason": ended.reason, "turns": 0})
        return ended

    async def _shutdown(self) -> None:
        await self._tasks.aclose()
        if self._utterance is not None:
            self._utterance.close()
        await self._playout.aclose()
        self._guard.close()
        await self._agent.aclose()

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
        shown = keys_shown(digits, sensitive=self._agent.sensitive_input)
        self._emit(DtmfReceived(shown))
        self._silence.cancel()
        self._cancel_response(self._playout.clear())
        self._turn += 1
        self.history.append(Message(role="user", text=f"[keys pressed: {shown}]"))
        self._set_state(State.THINKING)
        self._start_response(DtmfPressed(digits), None)
