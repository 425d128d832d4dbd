"""A call's outcome: how it ended (disposition), a short summary, the caller's sentiment and the
slots collected — produced once, when the call ends.

- LLM agents ask their model, with an OpenAI-compatible `response_format` JSON schema, for the
  summary, sentiment and disposition (`model_outcome`);
- flow agents derive it from the flow: the slots, and the node that ended the call
  (`flow_outcome`);
- both fall back to rules (`rules_outcome`) when no model answers in time or the answer does not
  fit the schema.

`extract_outcome(spec, facts, ...)` picks the right one. What ended the call technically
(`CallFacts.reason`: transferred, no input, failure) always decides those dispositions; a model
only judges between `completed` and `abandoned`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Final, Literal, cast

import msgspec
import openai
from msgspec import Meta
from openai.types.chat import ChatCompletionMessageParam

from agents.base import Message
from agents.flow.spec import Action, FlowSpec
from agents.llm_access import LlmAccess
from agents.spec import AgentSpec, LlmSettings
from core.errors import AgentError

log = logging.getLogger(__name__)

Disposition = Literal["completed", "transferred", "abandoned", "no_input", "failed"]
SentimentLabel = Literal["negative", "neutral", "positive"]
Score = Annotated[float, Meta(ge=-1.0, le=1.0)]

DISPOSITIONS: Final[tuple[Disposition, ...]] = (
    "completed",
    "transferred",
    "abandoned",
    "no_input",
    "failed",
)
MAX_TRANSCRIPT_CHARS: Final = 12_000
"""The model sees at most this much of the conversation (its end)."""
MAX_SUMMARY_CHARS: Final = 500


class Sentiment(msgspec.Struct, frozen=True, kw_only=True):
    label: SentimentLabel
    score: Score
    """-1 (very negative) .. 1 (very positive)."""


class Outcome(msgspec.Struct, frozen=True, kw_only=True):
    disposition: Disposition
    summary: str
    sentiment: Sentiment
    slots: dict[str, str] = msgspec.field(default_factory=dict)
    source: Literal["model", "flow", "rules"] = "rules"
    """Who produced it."""


class CallFacts(msgspec.Struct, frozen=True, kw_only=True):
    """What is known about a call when it ends."""

    reason: str
    """How the call session ended: completed | hangup | transferred | no_input | max_duration
    | failed | interrupted (the node stopped)."""
    duration_s: float = 0.0
    slots: dict[str, str] = msgspec.field(default_factory=dict)
    transcript: tuple[Message, ...] = ()
    end_node: str | None = None
    """The flow node the call ended at, when the caller knows it."""


class OutcomeError(AgentError):
    """The model gave no usable outcome (the caller falls back to rules)."""

    retryable = True


# ---- rules ----

_HARD_REASONS: Final[dict[str, Disposition]] = {
    "transferred": "transferred",
    "no_input": "no_input",
    "failed": "failed",
    "interrupted": "failed",
    "max_duration": "failed",
}

_POSITIVE: Final = frozenset(
    "thanks thank great perfect excellent wonderful awesome appreciate appreciated helpful "
    "good lovely fantastic love amazing nice glad happy brilliant".split()
)
_NEGATIVE: Final = frozenset(
    "angry terrible awful bad horrible useless ridiculous frustrated frustrating annoyed "
    "annoying unacceptable worst hate complaint complain disappointed waste wrong stupid rude "
    "upset problem".split()
)
_NEGATORS: Final = frozenset("not no never don't dont isn't wasn't didn't".split())
_WORD = re.compile(r"[a-z']+")


def disposition_for(reason: str, transcript: Sequence[Message] = ()) -> Disposition:
    """The disposition rules give: what ended the call, and whether the caller took part."""
    if reason in _HARD_REASONS:
        return _HARD_REASONS[reason]
    if reason == "hangup":
        return "abandoned"
    if reason == "completed":
        return "completed"
    return "failed"


def rules_sentiment(transcript: Sequence[Message]) -> Sentiment:
    """Word-list sentiment of the caller's turns (a negator just before a word flips it)."""
    positive = negative = 0
    for message in transcript:
        if message.role != "user":
            continue
        previous = ""
        for word in _WORD.findall(message.text.lower()):
            sign = 1 if word in _POSITIVE else -1 if word in _NEGATIVE else 0
            if sign and previous in _NEGATORS:
                sign = -sign
            positive += sign > 0
            negative += sign < 0
            previous = word
    score = round((positive - negative) / (positive + negative + 2), 3)
    label: SentimentLabel = "neutral"
    if score >= 0.2:
        label = "positive"
    elif score <= -0.2:
        label = "negative"
    return Sentiment(label=label, score=score)


def _turns(transcript: Sequence[Message]) -> int:
    return sum(1 for m in transcript if m.role == "user")


def _collected(slots: Mapping[str, str]) -> str:
    return f" Collected: {', '.join(sorted(slots))}." if slots else ""


def rules_outcome(facts: CallFacts) -> Outcome:
    """The outcome from what ended the call, the slots and a word-list sentiment."""
    disposition = disposition_for(facts.reason, facts.transcript)
    summary = (
        f"Call {disposition.replace('_', ' ')} ({facts.reason}) after {_turns(facts.transcript)}"
        f" caller turn(s), {facts.duration_s:.0f} s.{_collected(facts.slots)}"
    )
    return Outcome(
        disposition=disposition,
        summary=summary,
        sentiment=rules_sentiment(facts.transcript),
        slots=dict(facts.slots),
        source="rules",
    )


# ---- flow agents ----


def ending_node(flow: FlowSpec, facts: CallFacts) -> str | None:
    """The node that ended the call: the one given, else the node whose entry actions end the
    call the way it ended and ask only for slots that were collected (the most such asks)."""
    if facts.end_node is not None:
        return facts.end_node
    verb = {"completed": "end", "transferred": "transfer"}.get(facts.reason)
    if verb is None:
        return None
    best: tuple[int, str] | None = None
    for name, node in flow.nodes.items():
        if not any(getattr(a, verb) is not None for a in node.do):
            continue
        asks = [a.ask for a in node.do if isinstance(a, Action) and a.ask is not None]
        if any(slot not in facts.slots for slot in asks):
            continue
        if best is None or len(asks) > best[0]:
            best = (len(asks), name)
    return best[1] if best is not None else None


def flow_outcome(flow: FlowSpec, facts: CallFacts) -> Outcome:
    """A flow agent's outcome: the disposition from how it ended, the slots it collected and
    which node ended it; the sentiment from rules."""
    disposition = disposition_for(facts.reason, facts.transcript)
    node = ending_node(flow, facts)
    where = f" at node '{node}'" if node else ""
    asked = {a.ask for _n in flow.nodes.values() for a in _n.do if a.ask is not None}
    missing = sorted(asked - set(facts.slots)) if disposition != "completed" else []
    summary = (
        f"Flow call {disposition.replace('_', ' ')}{where} after {_turns(facts.transcript)}"
        f" caller turn(s).{_collected(facts.slots)}"
    )
    if missing:
        summary += f" Not collected: {', '.join(missing)}."
    return Outcome(
        disposition=disposition,
        summary=summary,
        sentiment=rules_sentiment(facts.transcript),
        slots=dict(facts.slots),
        source="flow",
    )


# ---- LLM agents ----


class _SlotValue(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: str
    value: str


class _ModelAnswer(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    disposition: Disposition
    summary: Annotated[str, Meta(min_length=1)]
    sentiment: SentimentLabel
    sentiment_score: Score
    slots: list[_SlotValue] = []


OUTCOME_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "properties": {
        "disposition": {"type": "string", "enum": list(DISPOSITIONS)},
        "summary": {"type": "string", "description": "One or two sentences."},
        "sentiment": {"type": "string", "enum": ["negative", "neutral", "positive"]},
        "sentiment_score": {"type": "number", "minimum": -1, "maximum": 1},
        "slots": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "value": {"type": "string"}},
                "required": ["name", "value"],
                "additionalProperties": False,
            },
        },
    },
    "required": ["disposition", "summary", "sentiment", "sentiment_score", "slots"],
    "additionalProperties": False,
}
OUTCOME_PROMPT: Final = (
    "You review a finished phone call between a caller and a voice agent. Answer with JSON "
    "only, following the schema: disposition (completed: the caller got what they called for; "
    "abandoned: the caller left before that; transferred; no_input; failed), a one- or "
    "two-sentence summary of what the caller wanted and what happened, the caller's sentiment "
    "with a score from -1 to 1, and the details the caller gave (name/value pairs)."
)


def _conversation(facts: CallFacts) -> str:
    lines = [
        f"{'Caller' if m.role == 'user' else 'Agent'}: {m.text}{' —' if m.interrupted else ''}"
        for m in facts.transcript
    ]
    text = "\n".join(lines)[-MAX_TRANSCRIPT_CHARS:]
    return (
        f"How the call ended: {facts.reason} after {facts.duration_s:.0f} s.\n"
        f"Details already collected: {json.dumps(facts.slots, sort_keys=True)}\n"
        f"Conversation:\n{text or '(nothing was said)'}"
    )


async def _ask_model(
    settings: LlmSettings, facts: CallFacts, *, client: openai.AsyncOpenAI, timeout_s: float
) -> str:
    """The model's streamed answer, joined; `OutcomeError` on a timeout or an API failure."""
    messages: list[ChatCompletionMessageParam] = [
        {"role": "system", "content": OUTCOME_PROMPT},
        {"role": "user", "content": _conversation(facts)},
    ]
    parts: list[str] = []
    try:
        async with asyncio.timeout(timeout_s):
            stream = await client.chat.completions.create(
                model=settings.model,
                messages=messages,
                temperature=0,
                max_tokens=600,
                response_format=cast(
                    Any,
                    {
                        "type": "json_schema",
                        "json_schema": {
                            "name": "call_outcome",
                            "strict": True,
                            "schema": OUTCOME_SCHEMA,
                        },
                    },
                ),
                stream=True,
            )
            try:
                async for chunk in stream:
                    for choice in chunk.choices[:1]:
                        if choice.delta.content:
                            parts.append(choice.delta.content)
            finally:
                await stream.close()
    except TimeoutError as exc:
        raise OutcomeError("the model did not answer in time") from exc
    except (openai.APIError, ValueError) as exc:
        raise OutcomeError(f"the model failed: {type(exc).__name__}") from exc
    return "".join(parts)


def _decode_answer(text: str) -> _ModelAnswer:
    """The model's answer, checked against the schema; `OutcomeError` when it does not fit."""
    try:
        return msgspec.json.decode(text.strip(), type=_ModelAnswer)
    except msgspec.ValidationError as exc:
        raise OutcomeError(f"the model's answer does not fit the schema: {exc}") from exc
    except msgspec.DecodeError as exc:
        raise OutcomeError("the model's answer is not JSON") from exc


def _answer_outcome(answer: _ModelAnswer, facts: CallFacts) -> Outcome:
    """The outcome from the model's answer, where the facts of the call overrule it: a hard
    end reason decides the disposition, and the slots the agent collected itself win."""
    disposition = _HARD_REASONS.get(facts.reason, answer.disposition)
    if disposition in ("transferred", "no_input", "failed") and facts.reason not in _HARD_REASONS:
        disposition = disposition_for(facts.reason, facts.transcript)
    slots = {s.name: s.value for s in answer.slots if s.name}
    slots.update(facts.slots)  # what the agent collected itself wins
    return Outcome(
        disposition=disposition,
        summary=answer.summary.strip()[:MAX_SUMMARY_CHARS],
        sentiment=Sentiment(label=answer.sentiment, score=answer.sentiment_score),
        slots=slots,
        source="model",
    )


async def model_outcome(
    settings: LlmSettings, facts: CallFacts, *, client: openai.AsyncOpenAI, timeout_s: float
) -> Outcome:
    """Ask the model for the outcome (a JSON-schema constrained, streamed completion).

    Raises `OutcomeError` when it does not answer within `timeout_s` or the answer does not fit
    the schema. `CancelledError` propagates.
    """
    text = await _ask_model(settings, facts, client=client, timeout_s=timeout_s)
    return _answer_outcome(_decode_answer(text), facts)


async def extract_outcome(
    spec: AgentSpec | None,
    facts: CallFacts,
    *,
    timeout_s: float = 15.0,
    access: LlmAccess | None = None,
    client: openai.AsyncOpenAI | None = None,
    log_extra: Mapping[str, object] | None = None,
) -> Outcome:
    """The call's outcome for the agent that ran it (`None`: unknown agent → rules).

    LLM agents use `client`, or one opened for the call from `spec.llm` with the call's
    `access` (the same key and `base_url` guard as the agent; None: no key, guarded), closed
    afterwards. A model failure is logged (no transcript in the log) and rules answer instead.
    """
    if spec is None:
        return rules_outcome(facts)
    if spec.kind == "flow" and spec.flow is not None:
        return flow_outcome(spec.flow, facts)
    if spec.llm is None or not facts.transcript:
        return rules_outcome(facts)
    settings = spec.llm
    own = client is None
    if client is None:
        client = (access or LlmAccess()).open_client(settings, timeout_s)
    try:
        return await model_outcome(settings, facts, client=client, timeout_s=timeout_s)
    except OutcomeError as exc:
        log.warning(
            "outcome model failed; using rules",
            extra={**(log_extra or {}), "agent": spec.name, "error": str(exc)},
        )
        return rules_outcome(facts)
    finally:
        if own:
            await client.close()
