"""The flow agent's runner: one call's place in a `FlowSpec` graph (node, queued actions, asked
slot, collected slots) and the moves that change it, and what it says.

`FlowAgent` (`agents/flow/agent.py`) is built from `FlowRunner` ← `FlowAnswers`
(`agents/flow/answers.py`); the fields are declared here and set in `FlowAgent.__init__`.

- `_take(route)`: a route's line and actions, then its `goto` or back to the question the
  caller was at (`Resume`);
- `_run()`: queued actions (say, ask, goto, transfer, end, webhook, clear) until the flow waits
  for the caller or the call ends; an eager slot asked is filled from the turn's words first;
- `_say(template)`: a line with its `{slot}` placeholders filled (digits read in groups).
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import re
from collections.abc import AsyncIterator, Callable, Sequence

from agents.base import (
    AgentContext,
    AgentError,
    AgentOutput,
    EndCall,
    RecordingControl,
    TextChunk,
    ToolResult,
    Transfer,
)
from agents.flow.digits import spoken_groups
from agents.flow.slots import extract
from agents.flow.spec import Action, FlowSpec, NodeSpec, Route, SlotSpec
from agents.flow.webhook import post_webhook
from agents.sensitive import masked
from agents.spec import AgentSpec

log = logging.getLogger(__name__)

MAX_MOVES_PER_TURN = 32
"""More node changes than this without waiting for the caller means the flow loops."""

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclasses.dataclass(frozen=True, slots=True)
class Resume:
    """Queued after a route without `goto`: go back to the question the caller was at."""

    node: str
    queue: tuple[Action | Resume, ...]
    waiting: str | None


Step = Action | Resume


class FlowRunner:
    """A flow's state and moves (fields set by `FlowAgent.__init__`)."""

    _spec: AgentSpec
    _flow: FlowSpec
    _ctx: AgentContext
    _today: Callable[[], datetime.date]
    _confirming: tuple[Route, str] | None
    """A route that would end the call, and the question asked about it."""
    _readback: str | None
    """The digits slot whose value is being read back to the caller."""
    _slots: dict[str, str]
    _node: str
    _queue: list[Step]
    _waiting: str | None
    _ended: bool
    _misses: int
    _moves: int
    _turn_text: str | None
    _spoke: bool

    async def _take(self, route: Route) -> AsyncIterator[AgentOutput]:
        back = Resume(self._node, tuple(self._queue), self._waiting)
        self._waiting = None
        self._misses = 0
        steps: list[Step] = [Action(say=route.say)] if route.say else []
        steps.extend(route.do)
        steps.append(Action(goto=route.goto) if route.goto else back)
        self._queue = steps
        async for out in self._run():
            yield out

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
            if isinstance(step, Resume):
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
            elif step.recording is not None:
                self._log("flow recording", recording=step.recording)
                yield RecordingControl(pause=step.recording == "pause")
        for chunk in self._say(self._current().prompt):
            yield chunk

    def _prefill(self, steps: Sequence[Step]) -> None:
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
        shown = {k: masked(v) if self._sensitive(k) else v for k, v in sent.items()}
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
            arguments={"webhook": name, "url": hook.url, "slots": shown},
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

    @property
    def sensitive_input(self) -> bool:
        """Waiting for (or reading back) a slot marked `sensitive`."""
        name = self._readback or self._waiting
        return name is not None and self._sensitive(name)

    def _sensitive(self, name: str) -> bool:
        slot = self._flow.slots.get(name)
        return slot is not None and slot.sensitive

    def render(self, template: str) -> str:
        """`template` with each `{slot}` replaced by its value ("" when not collected); a digits
        slot's value is read in groups, one digit at a time ("5 5 5, 1 2 1 2")."""
        text = _PLACEHOLDER.sub(lambda m: self._spoken(m.group(1)), template)
        return " ".join(text.split())

    def _spoken(self, name: str) -> str:
        value = self._slots.get(name, "")
        slot = self._flow.slots.get(name)
        if slot is not None and slot.sensitive:  # never said whole
            value = "".join(ch for ch in value if ch.isdigit())[-4:]
            return " ".join(value)
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
