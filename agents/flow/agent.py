"""FlowAgent: runs one call through a `FlowSpec` dialog graph (no LLM, deterministic).

Per call it keeps the current node, a queue of actions still to run, the slot it is waiting
for (if any) and the collected slots. Each input runs actions until the flow has to wait for
the caller again (an `ask`, a node's routes) or the call ends (`Transfer`, `EndCall`).

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
import logging
import re
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence

from agents.base import (
    Agent,
    AgentContext,
    AgentError,
    AgentInput,
    AgentOutput,
    CallStarted,
    DtmfPressed,
    EndCall,
    Message,
    NoInput,
    TextChunk,
    ToolResult,
    Transfer,
    UserSaid,
)
from agents.flow.digits import spoken_groups
from agents.flow.ending import EndingCheck
from agents.flow.intents import IntentMatcher
from agents.flow.readback import RETRY_LINE, readback_answer, readback_template
from agents.flow.slots import extract, extract_yes_no
from agents.flow.spec import Action, FlowSpec, NodeSpec, Route, SlotSpec
from agents.flow.text import normalize
from agents.flow.webhook import post_webhook
from agents.spec import AgentSpec

log = logging.getLogger(__name__)

SLOT_ANSWER_MIN_SCORE = 0.75
"""While a slot is asked, an intent must score at least this to win over the answer."""
MAX_MOVES_PER_TURN = 32
"""More node changes than this without waiting for the caller means the flow loops."""

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclasses.dataclass(frozen=True, slots=True)
class _Resume:
    """Queued after a route without `goto`: go back to the question the caller was at."""

    node: str
    queue: tuple[Action | _Resume, ...]
    waiting: str | None


_Step = Action | _Resume


@dataclasses.dataclass(frozen=True)
class _Checkpoint:
    node: str
    queue: tuple[_Step, ...]
    waiting: str | None
    ended: bool
    misses: int
    slots: tuple[tuple[str, str], ...]
    confirming: tuple[Route, str] | None
    readback: str | None


class FlowAgent(Agent):
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
        self._flow: FlowSpec = spec.flow
        self._ctx = ctx
        self._today = today
        self._matcher = IntentMatcher(
            self._flow.intents, self._flow.match_threshold, spec.vocabulary
        )
        self._ending = EndingCheck(self._flow, self._matcher)
        self._confirming: tuple[Route, str] | None = None
        """A route that would end the call, and the question asked about it."""
        self._readback: str | None = None
        """The digits slot whose value is being read back to the caller."""
        self._slots: dict[str, str] = {}
        self._node = self._flow.start
        self._queue: list[_Step] = []
        self._waiting: str | None = None
        self._ended = False
        self._misses = 0
        self._moves = 0
        self._turn_text: str | None = None
        self._spoke = False

    @property
    def slots(self) -> dict[str, str]:
        return dict(self._slots)

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

    async def _confirmed(self, key: str) -> AsyncIterator[AgentOutput]:
        """The caller's answer to "did you want to end the call?": "1" yes, "2" no, "" neither
        (the question is dropped and the line handled as any other)."""
        assert self._confirming is not None
        route, self._confirming = self._confirming[0], None
        self._log("flow ending confirmed" if key == "1" else "flow ending not confirmed")
        if key == "1":
            async for out in self._take(route):
                yield out
        elif key == "2":
            for chunk in self._say(self._flow.ending.declined) + self._question():
                yield chunk

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

    def _read_back(self, name: str) -> list[TextChunk]:
        return self._say(readback_template(name, self._flow.slots[name]))

    async def _read_back_answered(
        self, answer: str, digits: str | None
    ) -> AsyncIterator[AgentOutput]:
        """The caller's answer to a digits slot read back: go on, ask again, or read back the
        corrected number."""
        name = self._readback
        assert name is not None
        self._log("flow readback", slot=name, answer=answer)
        if answer == "digits" and digits is not None:
            self._slots[name] = digits
            for chunk in self._read_back(name):
                yield chunk
        elif answer == "yes":
            self._readback = self._waiting = None
            self._misses = 0
            async for out in self._run():
                yield out
        elif answer == "no":
            self._readback = None
            self._slots.pop(name, None)
            for chunk in self._say(RETRY_LINE) + self._say(self._flow.slots[name].prompt):
                yield chunk
        else:
            for chunk in self._say(self._flow.no_match) + self._read_back(name):
                yield chunk

    def _question(self) -> list[TextChunk]:
        """The question the caller is at: the asked slot's, else the node's."""
        if self._waiting is not None:
            return self._say(self._flow.slots[self._waiting].prompt)
        return self._say(self._current().prompt)

    def _reprompt(self) -> list[TextChunk]:
        if self._waiting is not None:
            slot = self._flow.slots[self._waiting]
            if slot.reprompt:
                return self._say(slot.reprompt)
            return self._say(self._flow.reprompt) + self._say(slot.prompt)
        node = self._current()
        if node.reprompt:
            return self._say(node.reprompt)
        return self._say(self._flow.reprompt) + self._say(node.prompt)

    # ---- moves ----

    def _routes(self) -> dict[str, Route]:
        """Intent → route available here: the node's own, then flow-wide ones."""
        routes = {r.intent: r for r in self._current().routes}
        for r in self._flow.routes:
            routes.setdefault(r.intent, r)
        return routes

    async def _take(self, route: Route) -> AsyncIterator[AgentOutput]:
        back = _Resume(self._node, tuple(self._queue), self._waiting)
        self._waiting = None
        self._misses = 0
        steps: list[_Step] = [Action(say=route.say)] if route.say else []
        steps.extend(route.do)
        steps.append(Action(goto=route.goto) if route.goto else back)
        self._queue = steps
        async for out in self._run():
            yield out

    async def _fill(self, value: str, *, read_back: bool = True) -> AsyncIterator[AgentOutput]:
        assert self._waiting is not None
        self._log("flow slot filled", slot=self._waiting)
        self._slots[self._waiting] = value
        if read_back and readback_template(self._waiting, self._flow.slots[self._waiting]):
            self._readback = self._waiting  # the flow goes on once the caller says yes
            for chunk in self._read_back(self._waiting):
                yield chunk
            return
        self._waiting = None
        self._misses = 0
        async for out in self._run():
            yield out

    async def _miss(self) -> AsyncIterator[AgentOutput]:
        self._misses += 1
        self._log("flow no match", misses=self._misses)
        if self._misses >= self._flow.max_no_match and self._flow.give_up:
            self._misses = 0
            self._waiting = None
            self._queue = list(self._flow.give_up)
            async for out in self._run():
                yield out
            return
        if self._waiting is not None:
            slot = self._flow.slots[self._waiting]
            for chunk in self._say(slot.invalid or self._flow.no_match) + self._say(slot.prompt):
                yield chunk
            return
        node = self._current()
        lines = [node.no_match] if node.no_match else [self._flow.no_match, node.prompt]
        for line in lines:
            for chunk in self._say(line):
                yield chunk

    def _goto(self, name: str) -> None:
        self._moves += 1
        if self._moves > MAX_MOVES_PER_TURN:
            raise AgentError(f"flow of agent {self._spec.name!r} loops at node {name!r}")
        self._node = name
        self._waiting = None
        self._queue = list(self._flow.nodes[name].do)
        self._log("flow node")

    async def _run(self) -> AsyncIterator[AgentOutput]:
        """Run queued actions until the flow waits for the caller or the call ends."""
        while self._queue:
            step = self._queue.pop(0)
            if isinstance(step, _Resume):
                self._node, self._queue = step.node, list(step.queue)
                if step.waiting is not None:
                    self._waiting = step.waiting
                    for chunk in self._say(self._flow.slots[step.waiting].prompt):
                        yield chunk
                    return
                continue
            if step.say is not None:
                for chunk in self._say(step.say):
                    yield chunk
            elif step.ask is not None:
                if step.ask not in self._slots:
                    self._prefill([step, *self._queue])
                if step.ask in self._slots:
                    continue
                self._waiting = step.ask
                for chunk in self._say(self._flow.slots[step.ask].prompt):
                    yield chunk
                return
            elif step.goto is not None:
                self._goto(step.goto)
            elif step.transfer is not None:
                self._ended = True
                target = step.transfer or self._spec.transfer_target
                self._log("flow transfer")
                yield Transfer(target=target)
                return
            elif step.end is not None:
                self._ended = True
                self._log("flow end")
                yield EndCall(reason=step.end if isinstance(step.end, str) else "completed")
                return
            elif step.webhook is not None:
                async for out in self._webhook(step.webhook):
                    yield out
            elif step.clear is not None:
                for name in step.clear:
                    self._slots.pop(name, None)
        for chunk in self._say(self._current().prompt):
            yield chunk

    def _prefill(self, steps: Sequence[_Step]) -> None:
        """Fill eager slots asked in `steps` from what the caller said this turn."""
        if self._turn_text is None:
            return
        for step in steps:
            if isinstance(step, Action) and step.ask is not None and step.ask not in self._slots:
                slot: SlotSpec = self._flow.slots[step.ask]
                if slot.is_eager:
                    value = extract(slot, self._turn_text, today=self._today(), strict=True)
                    if value is not None:
                        self._log("flow slot prefilled", slot=step.ask)
                        self._slots[step.ask] = value

    async def _webhook(self, name: str) -> AsyncIterator[AgentOutput]:
        hook = self._flow.webhooks[name]
        sent = {k: v for k, v in self._slots.items() if not hook.slots or k in hook.slots}
        payload = {
            "call_id": self._ctx.call_id,
            "agent": self._spec.name,
            "webhook": name,
            "slots": sent,
        }
        outcome = await post_webhook(
            self._ctx.http,
            hook,
            payload,
            allowlist=self._ctx.url_allowlist,
            log_extra=self._extra(webhook=name),
        )
        yield ToolResult(
            name="webhook",
            arguments={"webhook": name, "url": hook.url, "slots": sent},
            result=outcome.detail,
            ok=outcome.ok,
        )
        if outcome.ok:
            self._slots.update(outcome.slots)
            line = outcome.say
        else:
            line = hook.on_error
        for chunk in self._say(line):
            yield chunk

    # ---- helpers ----

    def _current(self) -> NodeSpec:
        return self._flow.nodes[self._node]

    def render(self, template: str) -> str:
        """`template` with each `{slot}` replaced by its value ("" when not collected); a digits
        slot's value is read in groups, one digit at a time ("5 5 5, 1 2 1 2")."""
        text = _PLACEHOLDER.sub(lambda m: self._spoken(m.group(1)), template)
        return " ".join(text.split())

    def _spoken(self, name: str) -> str:
        value = self._slots.get(name, "")
        slot = self._flow.slots.get(name)
        return spoken_groups(value) if slot is not None and slot.type == "digits" else value

    def _say(self, template: str) -> list[TextChunk]:
        text = self.render(template)
        if not text:
            return []
        chunk = TextChunk(f" {text}" if self._spoke else text)
        self._spoke = True
        return [chunk]

    def _extra(self, **fields: object) -> dict[str, object]:
        return {
            "call_id": self._ctx.call_id,
            "tenant_id": self._ctx.tenant_id,
            "agent": self._spec.name,
            "node": self._node,
            **fields,
        }

    def _log(self, message: str, **fields: object) -> None:
        log.debug(message, extra=self._extra(**fields))
