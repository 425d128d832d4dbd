"""FlowAgent: runs one call through a `FlowSpec` dialog graph (no LLM, deterministic).

Per call it keeps the current node, a queue of actions still to run, the slot it is waiting
for (if any) and the collected slots. Each input runs actions until the flow has to wait for
the caller again (an `ask`, a node's routes) or the call ends (`Transfer`, `EndCall`).
This module takes the inputs and routes them; the moves and what is said are the runner's
(`agents/flow/runner.py`), the answers to the flow's own questions (slots, readback, "end the
call?") `agents/flow/answers.py`'s.

- caller's words: the best-matching route (the node's own and flow-wide ones; on equal scores
  the node's; while a slot is asked, only a clear match, so answers are not mistaken for
  requests), else the asked slot's value, else a "didn't catch that" line and the question;
- keys (DTMF): a number slot takes the digits, a yes/no slot takes 1/2, else the node's or the
  flow's `dtmf` map names an intent;
- silence (`NoInput`): the reprompt line and the question (the session counts and hangs up).

A route that ends or transfers the call is taken on words only when the match is sure (see
`agents.flow.ending`); otherwise the flow asks ("Did you want to end the call?": yes takes it,
no goes back to the question, anything else is handled as a new line) or takes it as no match.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence

from agents.base import (
    Agent,
    AgentContext,
    AgentInput,
    AgentOutput,
    CallStarted,
    DtmfPressed,
    Message,
    NoInput,
    UserSaid,
)
from agents.flow.answers import FlowAnswers
from agents.flow.ending import EndingCheck
from agents.flow.intents import IntentMatcher
from agents.flow.readback import readback_answer
from agents.flow.runner import Step
from agents.flow.slots import extract, extract_yes_no
from agents.flow.spec import Route
from agents.sensitive import masked
from agents.spec import AgentSpec
from agents.words.text import normalize

SLOT_ANSWER_MIN_SCORE = 0.75
"""While a slot is asked, an intent must score at least this to win over the answer."""


@dataclasses.dataclass(frozen=True)
class _Checkpoint:
    node: str
    queue: tuple[Step, ...]
    waiting: str | None
    ended: bool
    misses: int
    slots: tuple[tuple[str, str], ...]
    confirming: tuple[Route, str] | None
    readback: str | None


class FlowAgent(FlowAnswers, Agent):
    """One call's flow agent. `today` resolves "today"/"tomorrow" for day slots."""

    def __init__(
        self,
        spec: AgentSpec,
        ctx: AgentContext,
        *,
        today: Callable[[], datetime.date] = datetime.date.today,
    ) -> None:
        if spec.flow is None:
            raise ValueError(f"agent {spec.name!r} has no `flow` section")
        self._spec = spec
        self._flow = spec.flow
        self._ctx = ctx
        self._today = today
        self._matcher = IntentMatcher(
            self._flow.intents, self._flow.match_threshold, spec.vocabulary
        )
        self._ending = EndingCheck(self._flow, self._matcher)
        self._confirming = None
        self._readback = None
        self._slots = {}
        self._node = self._flow.start
        self._queue = []
        self._waiting = None
        self._ended = False
        self._misses = 0
        self._moves = 0
        self._turn_text = None
        self._spoke = False

    @property
    def slots(self) -> dict[str, str]:
        """The collected slots as the call record shows them: sensitive ones masked."""
        return {k: masked(v) if self._sensitive(k) else v for k, v in self._slots.items()}

    @property
    def node(self) -> str:
        """The node the conversation is at."""
        return self._node

    @property
    def waiting_for(self) -> str | None:
        """The slot being asked for, if any."""
        return self._waiting

    @property
    def ended(self) -> bool:
        return self._ended

    @property
    def may_speculate(self) -> bool:
        return not self._flow.webhooks  # webhook calls are effects a discarded reply can't undo

    def checkpoint(self) -> object:
        return _Checkpoint(
            node=self._node,
            queue=tuple(self._queue),
            waiting=self._waiting,
            ended=self._ended,
            misses=self._misses,
            slots=tuple(self._slots.items()),
            confirming=self._confirming,
            readback=self._readback,
        )

    def restore(self, checkpoint: object) -> None:
        if not isinstance(checkpoint, _Checkpoint):
            raise TypeError(f"not a flow checkpoint: {checkpoint!r}")
        self._node = checkpoint.node
        self._queue = list(checkpoint.queue)
        self._waiting = checkpoint.waiting
        self._ended = checkpoint.ended
        self._misses = checkpoint.misses
        self._slots = dict(checkpoint.slots)
        self._confirming = checkpoint.confirming
        self._readback = checkpoint.readback

    async def respond(
        self, history: Sequence[Message], event: AgentInput
    ) -> AsyncGenerator[AgentOutput, None]:
        if self._ended:
            return
        self._spoke = False
        self._moves = 0
        self._turn_text = None
        match event:
            case CallStarted():
                for chunk in self._say(self._spec.greeting):
                    yield chunk
                self._goto(self._flow.start)
                async for out in self._run():
                    yield out
            case UserSaid(text=text):
                self._turn_text = text
                async for out in self._on_words(text):
                    yield out
            case DtmfPressed(digits=digits):
                async for out in self._on_keys(digits):
                    yield out
            case NoInput() if self._readback is not None:
                for chunk in self._read_back(self._readback):
                    yield chunk
            case NoInput() if self._confirming is not None:
                for chunk in self._say(self._confirming[1]):
                    yield chunk
            case NoInput():
                for chunk in self._reprompt():
                    yield chunk

    # ---- inputs ----

    async def _on_words(self, text: str) -> AsyncIterator[AgentOutput]:
        if self._readback is not None:
            slot = self._flow.slots[self._readback]
            heard = readback_answer(text, slot, self._slots.get(self._readback, ""))
            async for out in self._read_back_answered(*heard):
                yield out
            return
        routes = self._routes()
        if self._confirming is not None:
            answer = extract_yes_no(normalize(text))
            others = [i for i in routes if i not in ("yes", "no")]
            bare_no = answer == "no" and self._matcher.best(text, others) is None
            async for out in self._confirmed("1" if answer == "yes" else "2" if bare_no else ""):
                yield out
            if answer == "yes" or bare_no:
                return
        floor = SLOT_ANSWER_MIN_SCORE if self._waiting else 0.0
        match = self._matcher.best(text, list(routes), min_score=floor)
        if match is not None:
            verdict, ending = self._ending.check(text, match, routes)
            self._log(
                "flow intent",
                intent=match.intent,
                score=round(match.score, 3),
                margin=round(match.margin, 3),
                verdict=verdict,
            )
            if verdict == "confirm" and ending is not None:
                self._confirming = (routes[match.intent], self._ending.question(ending))
                for chunk in self._say(self._confirming[1]):
                    yield chunk
                return
            if verdict == "go":
                async for out in self._take(routes[match.intent]):
                    yield out
                return
        if self._waiting is not None:
            slot = self._flow.slots[self._waiting]
            value = extract(slot, text, today=self._today())
            if value is not None:
                async for out in self._fill(value):
                    yield out
                return
        async for out in self._miss():
            yield out

    async def _on_keys(self, digits: str) -> AsyncIterator[AgentOutput]:
        key = digits.rstrip("#") or digits
        if self._readback is not None:
            answer = "yes" if key == "1" else "no" if key == "2" else "unclear"
            async for out in self._read_back_answered(answer, None):
                yield out
            return
        if self._confirming is not None:
            answered = key in ("1", "2")
            async for out in self._confirmed(key if answered else ""):
                yield out
            if answered:
                return
        if self._waiting is not None:
            slot = self._flow.slots[self._waiting]
            value: str | None = None
            if slot.type in ("number", "digits") and key.isdigit():
                value = extract(slot, key, today=self._today())
            elif slot.type == "yes_no" and key in ("1", "2"):
                value = "yes" if key == "1" else "no"
            if value is not None:
                async for out in self._fill(value, read_back=False):
                    yield out
                return
        intent = self._current().dtmf.get(key) or self._flow.dtmf.get(key)
        route = self._routes().get(intent) if intent else None
        if route is not None:
            self._log("flow dtmf", intent=intent)
            async for out in self._take(route):
                yield out
            return
        async for out in self._miss():
            yield out

    def _routes(self) -> dict[str, Route]:
        """Intent → route available here: the node's own, then flow-wide ones."""
        routes = {r.intent: r for r in self._current().routes}
        for r in self._flow.routes:
            routes.setdefault(r.intent, r)
        return routes
