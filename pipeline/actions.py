"""Agent actions carried out on the call (end it, transfer it, send DTMF), and what the session
does so that a failed one is never dead air.

A transfer or DTMF the call cannot carry out (AudioSocket without AMI, a REFER the peer
refuses, an AMI error, a transfer that times out) and a tool that fails (an HTTP tool that
times out or errors, a webhook) become an `ActionFailure`: action kind and error kind, no
target, no arguments, no transcript. The session logs it, puts it on the call record (a
`ToolCalled` event with `ok=False`) and, unless the agent itself said something after it, speaks
the agent's `action_failed_line`; the conversation goes on.

`ReplyWatch` follows one reply: it sees the agent's outputs (a failed tool, whether words came
after it, an action that may fail) and carries out the reply's actions. `FallbackVoice`
synthesizes the fallback line once per call, as soon as an action that may fail is on its way,
so that the line is ready the moment the failure is known.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Callable, Sequence
from typing import Any, Literal

import msgspec
from prometheus_client import Histogram

from agents.base import (
    Agent,
    AgentInput,
    AgentOutput,
    EndCall,
    Message,
    ModelRound,
    NoInput,
    RecordingControl,
    SendDtmf,
    TextChunk,
    ToolResult,
    Transfer,
)
from agents.spec import AgentSpec
from media.call import Call, CallControlError
from media.clock import Clock
from media.frames import AudioFrame
from media.transport import AudioSink
from pipeline.closing import ClosingActions, PendingClose, closing_kind
from pipeline.events import EventCallback, ModelCalled, ToolCalled
from pipeline.fallback_voice import FallbackVoice
from pipeline.privacy import RecordingSwitch, with_sensitive_steps
from pipeline.response import Action, Synthesizer

SILENCE_AFTER_FAILURE = Histogram(
    "voicenode_silence_after_failed_action_seconds",
    "From a failed transfer, DTMF or tool to the next agent audio the caller gets",
    ["action"],
    buckets=(0.05, 0.1, 0.2, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0),
)

ActionKind = Literal["transfer", "send_dtmf", "tool"]


class CallLog(logging.LoggerAdapter[logging.Logger]):
    """Every line carries call_id and tenant_id, merged with the line's own fields."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        kwargs["extra"] = {**(self.extra or {}), **kwargs.get("extra", {})}
        return msg, kwargs


class ActionFailure(msgspec.Struct, frozen=True, kw_only=True):
    """What failed, for the log and the call record (no targets, digits or arguments)."""

    action: ActionKind
    error: str
    """unsupported | refused | ended | ami_error | timeout | http_error | failed | internal"""
    tool: str = ""
    """The tool's name (`action == "tool"`)."""

    def event(self) -> ToolCalled:
        """The call record's entry: a failed call action reads like a failed tool."""
        name = self.tool if self.action == "tool" else self.action
        return ToolCalled(name=name, arguments={}, result=f"failed: {self.error}", ok=False)


def error_kind(exc: BaseException) -> str:
    """The kind of a call-control failure: the error's own `kind` when it names one."""
    if isinstance(exc, TimeoutError):
        return "timeout"
    kind = getattr(exc, "kind", None)
    if isinstance(kind, str) and kind:
        return kind
    return "refused" if isinstance(exc, CallControlError) else "internal"


def tool_error_kind(result: ToolResult) -> str:
    """The kind of a failed tool, from the result the agent reported."""
    text = result.result.lower()
    if "no answer within" in text or "timed out" in text:
        return "timeout"
    if "http " in text:
        return "http_error"
    return "failed"


async def run_action(
    action: EndCall | Transfer | SendDtmf, call: Call, transfer_target: str, log: CallLog
) -> str | ActionFailure | None:
    """Carry out an agent action on `call`: the end reason when it ended the call, an
    `ActionFailure` when the call could not do it (the call goes on), else None."""
    if isinstance(action, EndCall):
        return action.reason or "completed"
    kind: ActionKind = "transfer" if isinstance(action, Transfer) else "send_dtmf"
    try:
        if isinstance(action, Transfer):
            await call.transfer(action.target or transfer_target)
            return "transferred"
        await call.send_dtmf(action.digits)
    except asyncio.CancelledError:
        raise
    except (CallControlError, TimeoutError) as exc:
        return ActionFailure(action=kind, error=error_kind(exc))
    except Exception:
        log.exception("call action raised", extra={"action": kind})
        return ActionFailure(action=kind, error="internal")
    return None


def tool_event(result: ToolResult | ModelRound) -> ToolCalled | ModelCalled:
    """The call event for a tool the agent called (or a request to its model)."""
    if isinstance(result, ModelRound):
        return ModelCalled(
            duration_ms=result.duration_ms, first_token_ms=result.first_token_ms, ok=result.ok
        )
    return ToolCalled(
        name=result.name,
        arguments=result.arguments,
        result=result.result,
        ok=result.ok,
        duration_ms=result.duration_ms,
    )


class SpokenLine(Agent):
    """An agent that says one line (the session's fallback and reprompt lines)."""

    def __init__(self, line: str) -> None:
        self.line = line

    async def respond(
        self, history: Sequence[Message], event: AgentInput
    ) -> AsyncGenerator[AgentOutput, None]:
        yield TextChunk(self.line)


class ReplyWatch:
    """One reply's failures: call actions the call refused, and failed tools the agent said
    nothing after. `checkpoint` is the agent's state from before the reply (a failed transfer
    goes back to it: the agent had let the call go)."""

    def __init__(
        self,
        *,
        event: AgentInput,
        checkpoint: object,
        fallback: FallbackVoice,
        on_failure: Callable[[ActionFailure], None],
        closing: ClosingActions | None = None,
        recording: RecordingSwitch | None = None,
    ) -> None:
        self.event = event
        self.recording = recording or RecordingSwitch(None)
        """The call's recording, which `RecordingControl` actions pause and resume."""
        """What the reply answers."""
        self.checkpoint = checkpoint
        self._fallback = fallback
        self._on_failure = on_failure
        self.failures: list[ActionFailure] = []
        self._unanswered: ActionFailure | None = None
        self._closing = closing
        self.closing = PendingClose(checkpoint)
        """The hang-up or transfer this reply asked for, until it is carried out."""

    @property
    def needs_fallback(self) -> ActionFailure | None:
        """The failure the caller has not heard about: a call action (the agent never knows
        about those), or a tool failure with no words after it."""
        calls = [f for f in self.failures if f.action != "tool"]
        return calls[0] if calls else self._unanswered

    @property
    def transfer_failed(self) -> bool:
        return any(f.action == "transfer" for f in self.failures)

    def _failed(self, failure: ActionFailure) -> None:
        self.failures.append(failure)
        self._on_failure(failure)

    async def watch(
        self, stream: AsyncGenerator[AgentOutput, None]
    ) -> AsyncGenerator[AgentOutput, None]:
        """The agent's outputs, unchanged, noticed on the way."""
        async with contextlib.aclosing(stream):
            async for out in stream:
                match out:
                    case ToolResult(ok=False):
                        failure = ActionFailure(
                            action="tool", error=tool_error_kind(out), tool=out.name
                        )
                        self._unanswered = failure
                        self._fallback.prepare()
                        self._failed(failure)
                    case TextChunk(text=text) if text.strip():
                        self._unanswered = None
                    case Transfer() | SendDtmf():
                        self._fallback.prepare()
                if self.closing.kind is None:
                    self.closing.kind = closing_kind(out)
                yield out

    async def act(
        self,
        action: Action,
        call: Call,
        transfer_target: str,
        log: CallLog,
        before_hold: Callable[[], None] = lambda: None,
    ) -> str | None:
        """`run_action`, as the reply wants it: the end reason, or None (the call goes on).
        A hang-up or transfer first waits out the closing grace period (see `pipeline.closing`);
        `before_hold` runs as it starts (the closing line has been played)."""
        if isinstance(action, RecordingControl):
            self.recording.apply(action)
            return None
        if self._closing is not None and closing_kind(action) is not None:
            before_hold()
            await self._closing.hold()
        self.closing.kind = None
        outcome = await run_action(action, call, transfer_target, log)
        if isinstance(outcome, ActionFailure):
            self._failed(outcome)
            return None
        return outcome


class WatchedAgent(Agent):
    """The call's agent as one reply sees it: its outputs pass through the reply's watch."""

    def __init__(self, agent: Agent, watch: ReplyWatch) -> None:
        self._agent = agent
        self._watch = watch

    def respond(
        self, history: Sequence[Message], event: AgentInput
    ) -> AsyncGenerator[AgentOutput, None]:
        stream = self._agent.respond(history, event)
        return self._watch.watch(with_sensitive_steps(self._agent, stream, self._watch.recording))


class DeadAirGuard:
    """One call's guard against silence: it makes each reply's `ReplyWatch`, logs and records
    each failure, says what the session must say after a reply (`follow_up`), and measures the
    silence between a failure and the next audio the caller gets (`tap` the call's sink)."""

    def __init__(
        self,
        *,
        spec: AgentSpec,
        tts: Synthesizer,
        clock: Clock,
        log: CallLog,
        emit: EventCallback,
        recording: RecordingSwitch | None = None,
    ) -> None:
        self.recording = recording or RecordingSwitch(None)
        """The call's recording (muted over sensitive steps; the agent's `recording` actions)."""
        self.voice = FallbackVoice(tts, spec.voice, spec.action_failed_line)
        """The TTS replies use: the fallback line is made ahead, the rest by the engine."""
        self._reprompt_line = spec.turn.reprompt_line
        self.closing = ClosingActions(spec.turn.closing_grace_ms, clock, log)
        """The call's hang-ups and transfers, held for the caller to stop them."""
        self._may_fail = bool(spec.tools or spec.transfer_target or spec.flow is not None)
        self._clock = clock
        self._log = log
        self._emit = emit
        self._silent_since: tuple[ActionFailure, float] | None = None
        """A failed action, and when: the caller has heard nothing since."""

    def listening(self) -> None:
        """The agent has spoken and waits for the caller: a good time (the CPU is otherwise
        idle) to make the fallback line of an agent that can act, so that a failure, whenever
        it comes, is answered at once."""
        if self._may_fail:
            self.voice.prepare()

    def watch(self, event: AgentInput, checkpoint: object) -> ReplyWatch:
        return ReplyWatch(
            event=event,
            checkpoint=checkpoint,
            fallback=self.voice,
            on_failure=self.failed,
            closing=self.closing,
            recording=self.recording,
        )

    def tap(self, sink: AudioSink) -> AudioSink:
        return _FrameTap(sink, self._frame_out)

    def failed(self, failure: ActionFailure) -> None:
        """A transfer, DTMF or tool failed: log it, put it on the call record, and start timing
        how long the caller hears nothing."""
        self._log.warning(
            "call action failed",
            extra={"action": failure.action, "error": failure.error, "tool": failure.tool},
        )
        if failure.action != "tool":  # (the agent reports its tools itself)
            self._emit(failure.event())
        if self._silent_since is None:
            self._silent_since = (failure, self._clock.now())

    def follow_up(self, said: str, watch: ReplyWatch, agent: Agent) -> str:
        """What the session says itself after a reply that said `said`, so the caller is not
        left in silence: the fallback line after a failure nobody told them about, the reprompt
        line when the agent had nothing to say to their silence; else nothing ("")."""
        failure = watch.needs_fallback
        if failure is not None:
            if watch.transfer_failed:  # the agent had let the call go: back to before the reply
                agent.restore(watch.checkpoint)
            return self.voice.line
        if isinstance(watch.event, NoInput) and not said.strip():
            return self._reprompt_line
        return ""

    def _frame_out(self) -> None:
        if self._silent_since is None:
            return
        failure, at = self._silent_since
        self._silent_since = None
        silence = max(0.0, self._clock.now() - at)
        SILENCE_AFTER_FAILURE.labels(failure.action).observe(silence)
        self._log.info(
            "the caller hears the agent again after a failed action",
            extra={
                "action": failure.action,
                "error": failure.error,
                "silence_ms": round(silence * 1000, 1),
            },
        )

    def close(self) -> None:
        self.voice.close()


class _FrameTap(AudioSink):
    """The call's sink, telling the guard each time a frame of agent audio goes out."""

    def __init__(self, sink: AudioSink, on_write: Callable[[], None]) -> None:
        self._sink = sink
        self._on_write = on_write

    async def write(self, frame: AudioFrame) -> None:
        self._on_write()
        await self._sink.write(frame)

    def clear(self) -> int:
        return self._sink.clear()

    @property
    def played_until(self) -> int:
        return self._sink.played_until

    @property
    def buffered(self) -> int:
        return self._sink.buffered
