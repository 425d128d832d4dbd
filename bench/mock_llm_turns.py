"""Which scripted reply a chat request gets from the LLM double: by default the next one per
request; with `per_turn`, one reply per turn of the conversation.

An agent may ask the model about the same turn more than once: a voice agent starts its reply
when the caller pauses (a preemptive request) and asks again when the caller goes on ("Thank
you," ... "goodbye."), with the same messages before the last one and a longer last user
message. Whether that happens depends on when the recogniser's transcript of the pause comes
in, so a test whose caller may pause mid-line scripts turns, not requests (`per_turn`): a
request that re-asks the previous request's turn gets that turn's
scripted reply again, without taking the next one, and the earlier request counts as
superseded. A repeated identical request (a retry after an error) takes the next reply, as any
other request does. Replies from outside the script (the bench's varied source, the default
reply) are not repeated: each of those requests gets its own.
"""

from __future__ import annotations

import json
from collections import deque
from typing import Generic, TypeVar

R = TypeVar("R")


def turn_of(raw: bytes) -> tuple[str, str] | None:
    """(the messages before the last, the last user message's text) of a chat-completions
    request body, or None when it is not JSON or its last message is not the caller's text."""
    try:
        body = json.loads(raw)
    except ValueError:
        return None
    messages = body.get("messages") if isinstance(body, dict) else None
    if not isinstance(messages, list) or not messages:
        return None
    last = messages[-1]
    if not isinstance(last, dict) or last.get("role") != "user":
        return None
    content = last.get("content")
    if not isinstance(content, str):
        return None
    return json.dumps(messages[:-1], sort_keys=True), content


class TurnScript(Generic[R]):
    """The double's script (`replies`, consumed from the left) read one reply per turn."""

    def __init__(self, replies: deque[R], *, per_turn: bool = True) -> None:
        self.replies = replies
        self.per_turn = per_turn
        self.superseded: set[int] = set()
        """Indices (among the chat requests) of requests a later one re-asked."""
        self._last: tuple[int, str, str, R] | None = None

    def next(self, raw: bytes, index: int) -> R | None:
        """The scripted reply for request `index` (its body `raw`), or None when the script
        has none for it."""
        turn = turn_of(raw) if self.per_turn else None
        last, self._last = self._last, None
        if turn is not None and last is not None:
            last_index, history, text, reply = last
            if turn[0] == history and turn[1] != text:
                self.superseded.add(last_index)
                self._last = (index, history, turn[1], reply)
                return reply
        if not self.replies:
            return None
        reply = self.replies.popleft()
        if turn is not None:
            self._last = (index, turn[0], turn[1], reply)
        return reply
