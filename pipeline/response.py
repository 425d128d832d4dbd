"""One agent response: agent text → clauses → TTS → playout, with actions kept in order.

Clauses are sent to TTS as soon as they are complete (synthesis runs ahead of playout);
a feeder hands the audio to playout in order. Actions (end call, transfer, DTMF) wait until
everything said before them has been played. Cancelling the response (barge-in) cancels the
agent's generation and every pending synthesis.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

from agents.base import (
    Agent,
    AgentInput,
    AgentOutput,
    EndCall,
    Message,
    ModelRound,
    RecordingControl,
    SendDtmf,
    TextChunk,
    ToolResult,
    Transfer,
)
from agents.speculation import held
from media.clock import Clock
from pipeline.load import LoadEstimator
from pipeline.marks import TurnMarks
from pipeline.playout import Playout
from pipeline.tts import ClauseSplitter, trim_leading_silence

log = logging.getLogger(__name__)

FALLBACK_LINE = "Sorry, something went wrong on my side. Could you say that again?"

FIRST_CLAUSE_WORDS_UNDER_LOAD = 5
"""A reply that starts while syntheses are in the TTS engine cuts its first clause at this
many words (else at `ClauseSplitter`'s 8, which keeps short sentences whole): the caller's
first audio waits for the syntheses ahead of it and then for its own, so a shorter first
clause is the part of that wait a reply controls. Wire bench, 12 staggered LLM calls: first
clause 248 vs 353 ms a synthesis, tts_first p95 808 vs 1072 ms."""


def first_clause_words(load: LoadEstimator | None) -> int | None:
    """The first clause's word limit for a reply starting now (None: the splitter's own)."""
    if load is not None and load.depth("tts") > 0:
        return FIRST_CLAUSE_WORDS_UNDER_LOAD
    return None


class Synthesizer(Protocol):
    async def synthesize(self, text: str, voice: str = "") -> npt.NDArray[np.int16]: ...


Action = EndCall | Transfer | SendDtmf | RecordingControl
_Item = tuple[str, "asyncio.Future[npt.NDArray[np.int16]]"] | Action | None


class Response:
    """Runs one reply; `run()` returns the actions the session must carry out, in order."""

    def __init__(
        self,
        *,
        agent: Agent,
        history: Sequence[Message],
        event: AgentInput,
        tts: Synthesizer,
        voice: str,
        playout: Playout,
        clock: Clock,
        marks: TurnMarks | None,
        on_audio_start: Callable[[], None],
        on_tool: Callable[[ToolResult | ModelRound], None],
        run_action: Callable[[Action], Awaitable[str | None]],
        hold: asyncio.Event | None = None,
        first_clause_max_words: int | None = None,
    ) -> None:
        self._hold = hold
        self._first_words = first_clause_max_words
        self._agent = agent
        self._history = list(history)
        self._event = event
        self._tts = tts
        self._voice = voice
        self._playout = playout
        self._clock = clock
        self._marks = marks
        self._on_audio_start = on_audio_start
        self._on_tool = on_tool
        self._run_action = run_action
        self._items: asyncio.Queue[_Item] = asyncio.Queue()
        self._synth: list[asyncio.Future[npt.NDArray[np.int16]]] = []
        self.text_parts: list[str] = []
        self.end_reason: str | None = None
        """Set when an action ended the call (completed, transferred)."""
        self.reported = False
        """The reply's text is in the history and was emitted (before a closing action's
        grace period: the caller has heard the whole line by then)."""

    @property
    def text(self) -> str:
        return " ".join(p.strip() for p in self.text_parts if p.strip())

    def _mark(self, name: str) -> None:
        if self._marks is not None:
            self._marks.mark(name, self._clock.now())

    def attach_marks(self, marks: TurnMarks) -> None:
        """A held (preemptive) reply becomes the turn's reply: what it already produced counts
        from now (the endpoint), later stages as they happen."""
        self._marks = marks
        if self.text_parts:
            self._mark("agent_first_text")

    def _say(self, clause: str) -> None:
        fut = asyncio.ensure_future(self._tts.synthesize(clause, self._voice))
        self._synth.append(fut)
        self.text_parts.append(clause)
        self._items.put_nowait((clause, fut))

    async def run(self) -> None:
        """Generate, speak and act; returns once everything has been played and done.

        With `hold`, the agent and TTS run at once but nothing reaches playout (and no action is
        carried out) until `hold` is set: a preemptive reply waiting for the endpoint. The agent
        sees the hold (`agents.speculation`) and keeps its own effects (tool calls) for then."""
        feeder = asyncio.create_task(self._feed(), name="response-feeder")
        try:
            await self._generate()
            self._items.put_nowait(None)
            await feeder
            await self._playout.drain()
        finally:
            feeder.cancel()
            for fut in self._synth:
                fut.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await feeder

    async def _generate(self) -> None:
        first = self._first_words
        splitter = (
            ClauseSplitter() if first is None else ClauseSplitter(first_clause_max_words=first)
        )
        said_anything = False
        try:
            stream = self._agent.respond(self._history, self._event)
            with held(self._hold):  # the agent's effects wait for the release (see there)
                async with contextlib.aclosing(stream):
                    async for out in stream:
                        said_anything |= self._handle(out, splitter)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("agent failed; speaking the fallback line")
            if not said_anything:
                splitter.push(FALLBACK_LINE + " ")
        for clause in splitter.flush():
            self._say(clause)

    def _handle(self, out: AgentOutput, splitter: ClauseSplitter) -> bool:
        match out:
            case TextChunk(text=text):
                if text.strip():
                    self._mark("agent_first_text")
                for clause in splitter.push(text):
                    self._say(clause)
                return bool(text.strip())
            case EndCall() | Transfer() | SendDtmf() | RecordingControl():
                for clause in splitter.flush():
                    self._say(clause)
                self._items.put_nowait(out)
            case ToolResult() | ModelRound():
                self._on_tool(out)
        return False

    async def _feed(self) -> None:
        if self._hold is not None:
            await self._hold.wait()
        self._playout.begin_response()
        first = True
        while (item := await self._items.get()) is not None:
            if isinstance(item, tuple):
                clause, fut = item
                try:
                    audio = await fut
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("speech synthesis failed for a clause")
                    continue
                if first:
                    audio = trim_leading_silence(audio)
                    self._mark("first_tts_audio")
                    first = False
                    self._on_audio_start()
                self._playout.enqueue(clause, audio)
            else:
                await self._playout.drain()
                if (reason := await self._run_action(item)) is not None:
                    self.end_reason = reason
                    return
