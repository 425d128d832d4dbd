"""What every part of a `CallSession` shares: its states, the fields its parts read and write,
and the small helpers they all use (state changes, ending the call); the session's tasks are
an `OwnedTasks` (`_tasks`).

`CallSession` (`pipeline/session.py`) is built from `SessionCore` ← `SessionReplies`
(`pipeline/session_replies.py`) ← `SessionTurns` (`pipeline/session_turns.py`); the fields are
declared here and set in `CallSession.__init__`.
"""

from __future__ import annotations

import asyncio
import collections
import enum
from typing import Any

import numpy as np

from agents.base import Agent, Message
from agents.spec import AgentSpec
from core.tasks import OwnedTasks
from media.call import Call, CallInfo
from media.clock import Clock
from media.transport import Transport
from pipeline.actions import CallLog, DeadAirGuard
from pipeline.dtmf import DtmfCollector
from pipeline.engines import Engines
from pipeline.events import EventCallback, StateChanged
from pipeline.marks import TurnMarks
from pipeline.playout import Playout
from pipeline.response import Response
from pipeline.stt import SttStream
from pipeline.turn import TurnDetector
from pipeline.turn_taking import HeldReply, LastEndpoint, NoInputTimer
from pipeline.vad import VadStream

PREROLL_FRAMES = 15  # 300 ms of audio kept from before the detected start of speech


class State(enum.StrEnum):
    LISTENING = "listening"
    USER_SPEAKING = "user_speaking"
    THINKING = "thinking"
    AGENT_SPEAKING = "agent_speaking"
    ENDED = "ended"


class SessionCore:
    """The session's fields (set by `CallSession.__init__`) and the helpers all parts use."""

    info: CallInfo
    state: State
    history: list[Message]
    _transport: Transport
    _call: Call
    _agent: Agent
    _spec: AgentSpec
    _engines: Engines
    _clock: Clock
    _emit: EventCallback
    _vad: VadStream
    _turns: TurnDetector
    _log: CallLog
    _guard: DeadAirGuard
    _playout: Playout
    _tasks: OwnedTasks
    _preroll: collections.deque[np.ndarray[Any, np.dtype[np.int16]]]
    _utterance: SttStream | None
    _candidate: bool  # speech that started while the agent was speaking
    _response: Response | None
    _response_task: asyncio.Task[None] | None
    _marks: TurnMarks | None
    _turn: int
    _endpoint: LastEndpoint | None
    _preemption: HeldReply | None
    _silence: NoInputTimer
    _dtmf: DtmfCollector
    _ended: asyncio.Future[str]
    _started_at: float

    def end(self, reason: str) -> None:
        if not self._ended.done():
            self._ended.set_result(reason)

    def _task_failed(self, _task: asyncio.Task[Any], _exc: BaseException) -> None:
        self.end("failed")  # `_tasks` logged it

    def _set_state(self, state: State) -> None:
        if state != self.state:
            self.state = state
            self._emit(StateChanged(state.value))
