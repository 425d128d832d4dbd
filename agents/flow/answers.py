"""The flow agent's answers to its own questions: an asked slot filled (and a digits slot read
back until the caller confirms it), "did you want to end the call?" answered, the question and
reprompt the caller is at, and a line that matched nothing (after `max_no_match` misses the
flow's `give_up` actions run).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from agents.base import AgentOutput, TextChunk
from agents.flow.readback import RETRY_LINE, readback_template
from agents.flow.runner import FlowRunner


class FlowAnswers(FlowRunner):
    """Slots, readback, confirmation and misses, on top of the runner's moves."""

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
