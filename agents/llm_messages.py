"""The LLM agent's chat messages: the conversation as the model gets it (`agents/llm.py`).

- `CallStarted` without a greeting: the model is asked to greet (`GREET_NOTE`).
- `UserSaid`: the history already ends with the caller's turn (appended if it does not).
- `DtmfPressed`: the model gets `[caller pressed keys: 123]`.
- `NoInput`: a bracketed note asks for a short reprompt.
- Assistant turns flagged `interrupted` are sent as heard, with a trailing "—".
- An agent that can end or transfer calls gets `CLOSING_NOTE` after its prompt.
- The caller's words (and keys) reach the model with the personal data of the kinds in `pii`
  (the tenant's policy, `AgentContext.pii`) replaced by placeholders (`agents.pii`: "my card
  is [CARD]").
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import cast

from openai.types.chat import ChatCompletionMessageParam

from agents.base import AgentInput, CallStarted, DtmfPressed, Message, NoInput, UserSaid
from agents.pii import redact_text
from agents.spec import AgentSpec
from agents.tools import ToolCall

INTERRUPTED_MARK = "—"
GREET_NOTE = "[the call has just connected: greet the caller briefly]"
NO_INPUT_NOTE = (
    "[the caller has said nothing for a while (silence #{count}): in one short sentence, check "
    "they are still there or repeat your last question]"
)
DTMF_NOTE = "[caller pressed keys: {digits}]"
CLOSING_NOTE = (
    "Ending or transferring the call cannot be undone, and you get the caller's words through"
    " speech recognition, which mishears. Call end_call or transfer_call only when the caller"
    " clearly asked for it; when their intent is unclear, ask first (for example: Did you want"
    " to end the call?). Say a short closing line before you call it; if the caller speaks"
    " right after it, the call goes on and you get what they said."
)
"""Added to the system prompt of an agent that can end or transfer calls."""


def chat_messages(
    spec: AgentSpec,
    history: Sequence[Message],
    event: AgentInput,
    *,
    pii: Collection[str] = (),
) -> list[ChatCompletionMessageParam]:
    """The request's messages: the system prompt, the history as the caller heard it, and a
    user message for `event` unless the history already ends with it; the caller's lines with
    the kinds of personal data in `pii` redacted."""
    messages: list[ChatCompletionMessageParam] = []
    closing = {"end_call", "transfer_call"} & {t.name for t in spec.tools if t.kind == "builtin"}
    system = "\n\n".join(p for p in (spec.prompt, CLOSING_NOTE if closing else "") if p)
    if system:
        messages.append({"role": "system", "content": system})
    for entry in history:
        if entry.role == "user":
            messages.append({"role": "user", "content": redact_text(entry.text, pii)})
        else:
            text = entry.text
            if entry.interrupted:
                text = text.rstrip() + INTERRUPTED_MARK
            messages.append({"role": "assistant", "content": text})
    last = history[-1] if history else None
    note: str | None = None
    match event:
        case CallStarted():
            note = GREET_NOTE
        case UserSaid(text=text):
            if last is None or last.role != "user" or last.text != text:
                note = text
        case DtmfPressed(digits=digits):
            note = DTMF_NOTE.format(digits=digits)
            if last is not None and last.role == "user" and last.text == note:
                note = None
        case NoInput(count=count):
            note = NO_INPUT_NOTE.format(count=count)
    if note is not None:
        messages.append({"role": "user", "content": redact_text(note, pii)})
    return messages


def assistant_with_calls(text: str, calls: Sequence[ToolCall]) -> ChatCompletionMessageParam:
    """The assistant message of a round that called tools (its text, then the calls)."""
    return cast(
        ChatCompletionMessageParam,
        {
            "role": "assistant",
            "content": text or None,
            "tool_calls": [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                }
                for call in calls
            ],
        },
    )
