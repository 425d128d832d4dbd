"""OpenTelemetry traces of calls: one trace per call, built from the events the call already
reports (`pipeline.events`), so tracing adds nothing to the media path.

`CallTracer` is a `LiveCalls` listener. A call's first event starts its root span `call`; each
`TurnMetrics` (emitted at the turn's first frame out) becomes a `turn` span with one child per
stage, timed by the turn's marks: `endpointing` (speech_end → endpoint), `stt_final`
(endpoint → final_transcript), `agent_first_text` (final_transcript → agent_first_text),
`tts_first_audio` (agent_first_text → first_tts_audio) and `playout` (first_tts_audio →
first_frame_out). A `ToolCalled` becomes a `tool_call` span inside its turn, at the moment the
agent reported the result (the event carries no start time, so the span has no duration).
`CallEnded` ends the root span.

Marks are seconds since the session's start on its monotonic clock; they become epoch
nanoseconds with one offset per call, taken at its first event (emitted as the session starts).
Span attributes are ids and labels only (call and tenant id, agent name and version,
transport, direction, end reason, turn number, tool name): never a transcript, a number or a
caller's name.

Off by default: `open_call_tracing` builds an exporter only when the standard variables ask
for one (`exporter_from_env`); otherwise it subscribes nothing and costs nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
)

from control_api.analytics.recorder import AgentLookup
from media.call import CallInfo
from pipeline.events import CallEnded, CallEvent, ModelCalled, ToolCalled, Transcript, TurnMetrics

log = logging.getLogger(__name__)

STAGE_SPANS = (
    ("endpointing", "speech_end", "endpoint"),
    ("stt_final", "endpoint", "final_transcript"),
    ("agent_first_text", "final_transcript", "agent_first_text"),
    ("tts_first_audio", "agent_first_text", "first_tts_audio"),
    ("playout", "first_tts_audio", "first_frame_out"),
)
"""A turn's child spans: (name, the mark it starts at, the mark it ends at)."""

ENDPOINT_VARS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")


class CallSource(Protocol):
    def subscribe(self, listener: Callable[[CallInfo, CallEvent], None]) -> Callable[[], None]: ...


def exporter_from_env(env: Mapping[str, str]) -> list[SpanExporter]:
    """The exporters the standard variables ask for; none (tracing off) by default.

    `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none`: off. `OTEL_TRACES_EXPORTER` a
    comma-separated list of `otlp` (OTLP over HTTP/protobuf, configured by the
    `OTEL_EXPORTER_OTLP_*` variables) and `console`. Unset: `otlp` if an OTLP endpoint
    variable is set, else off."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    names = [n.strip().lower() for n in env.get("OTEL_TRACES_EXPORTER", "").split(",")]
    names = [n for n in names if n]
    if not names and any(env.get(v, "").strip() for v in ENDPOINT_VARS):
        names = ["otlp"]
    exporters: list[SpanExporter] = []
    for name in names:
        if name == "otlp":
            protocol = env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get(
                "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"
            )
            if protocol != "http/protobuf":
                log.warning("only OTLP over http/protobuf is supported", extra={"asked": protocol})
            exporters.append(OTLPSpanExporter())
        elif name == "console":
            exporters.append(ConsoleSpanExporter())
        elif name != "none":
            log.warning("unknown trace exporter ignored", extra={"exporter": name})
    return [] if "none" in names else exporters


def provider_for(exporters: list[SpanExporter]) -> TracerProvider:
    """A provider exporting in batches off the event loop (the SDK's thread); the resource
    from `OTEL_SERVICE_NAME`/`OTEL_RESOURCE_ATTRIBUTES`, `service.name` voicenode by default;
    sampling from `OTEL_TRACES_SAMPLER`."""
    resource = Resource.create()
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: "voicenode"}))
    provider = TracerProvider(resource=resource)
    for exporter in exporters:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


@dataclass
class _CallTrace:
    root: trace.Span
    origin_mono: float
    origin_ns: int
    turn: int = 0
    """The caller's latest turn (its final transcript's number)."""
    last_turn: tuple[int, trace.Span] | None = None
    """The latest turn span made (turn number, span): tools reported later go inside it."""
    pending_tools: list[tuple[int, ToolCalled | ModelCalled]] = field(default_factory=list)
    """Tools reported in a turn whose span is not made yet: (epoch ns, event)."""

    def ns(self, seconds_since_start: float) -> int:
        return self.origin_ns + int(seconds_since_start * 1e9)


class CallTracer:
    """Turns each call's events into its trace (see the module docstring)."""

    def __init__(
        self,
        tracer: trace.Tracer,
        agents: AgentLookup,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        wall_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self._tracer = tracer
        self._agents = agents
        self._monotonic = monotonic
        self._wall_ns = wall_ns
        self._calls: dict[str, _CallTrace] = {}

    def on_call_event(self, info: CallInfo, event: CallEvent) -> None:
        call = self._calls.get(info.call_id)
        if call is None:
            call = self._calls[info.call_id] = self._start(info)
        match event:
            case TurnMetrics():
                self._turn(info, call, event)
            case ToolCalled() | ModelCalled():
                self._tool(call, event)
            case Transcript(role="user", final=True, turn=turn):
                self._flush_tools(call, None)  # a turn that never replied keeps its tools
                call.turn = turn
            case CallEnded(reason=reason, duration_s=duration):
                self._end(info.call_id, reason, call.ns(duration))

    def close(self) -> None:
        """End the traces of calls still open (the node is stopping): `interrupted`."""
        for call_id in list(self._calls):
            self._end(call_id, "interrupted", self._wall_ns())

    def _start(self, info: CallInfo) -> _CallTrace:
        ref = self._agents(info)
        attributes: dict[str, str | int] = {
            "voicenode.call_id": info.call_id,
            "voicenode.tenant_id": info.tenant_id,
            "voicenode.transport": info.transport,
            "voicenode.direction": str(info.direction),
        }
        if ref is not None:
            attributes["voicenode.agent"] = ref.name
            if ref.version is not None:
                attributes["voicenode.agent_version"] = ref.version
        origin_ns = self._wall_ns()
        root = self._tracer.start_span(
            "call",
            context=trace.set_span_in_context(trace.INVALID_SPAN),
            attributes=attributes,
            start_time=origin_ns,
        )
        return _CallTrace(root, self._monotonic(), origin_ns)

    def _ids(self, info: CallInfo) -> dict[str, str | int]:
        return {"voicenode.call_id": info.call_id, "voicenode.tenant_id": info.tenant_id}

    def _turn(self, info: CallInfo, call: _CallTrace, event: TurnMetrics) -> None:
        marks = event.marks
        if not marks:
            return
        start, end = min(marks.values()), max(marks.values())
        attributes = {**self._ids(info), "voicenode.turn": event.turn}
        span = self._tracer.start_span(
            "turn",
            context=trace.set_span_in_context(call.root),
            attributes=attributes,
            start_time=call.ns(start),
        )
        inside = trace.set_span_in_context(span)
        for name, first, last in STAGE_SPANS:
            if first in marks and last in marks:
                child = self._tracer.start_span(
                    name, context=inside, attributes=attributes, start_time=call.ns(marks[first])
                )
                child.end(end_time=call.ns(max(marks[first], marks[last])))
        span.end(end_time=call.ns(end))
        call.last_turn = (event.turn, span)
        self._flush_tools(call, span)

    def _tool(self, call: _CallTrace, event: ToolCalled | ModelCalled) -> None:
        at = call.origin_ns + int((self._monotonic() - call.origin_mono) * 1e9)
        if call.last_turn is not None and call.last_turn[0] == call.turn:
            self._tool_span(call.last_turn[1], at, event)
        else:
            call.pending_tools.append((at, event))

    def _flush_tools(self, call: _CallTrace, turn: trace.Span | None) -> None:
        """Tools reported before their turn's span into it (None: into the call's root)."""
        parent = call.root if turn is None else turn
        for at, event in call.pending_tools:
            self._tool_span(parent, at, event)
        call.pending_tools.clear()

    def _tool_span(self, parent: trace.Span, at: int, event: ToolCalled | ModelCalled) -> None:
        """The tool's run (or the model request), ending when its result was reported (`at`);
        an MCP tool (`server__tool`) names its server."""
        name, attributes = _tool_attributes(event)
        took = int((event.duration_ms or 0.0) * 1e6)
        span = self._tracer.start_span(
            name,
            context=trace.set_span_in_context(parent),
            attributes=attributes,
            start_time=at - took,
        )
        span.end(end_time=at)

    def _end(self, call_id: str, reason: str, end_ns: int) -> None:
        call = self._calls.pop(call_id, None)
        if call is None:
            return
        self._flush_tools(call, None)
        call.root.set_attribute("voicenode.end_reason", reason)
        call.root.end(end_time=max(end_ns, call.origin_ns))


def _tool_attributes(event: ToolCalled | ModelCalled) -> tuple[str, dict[str, str | bool | float]]:
    """A tool's or model request's span name and attributes (labels only, no arguments)."""
    if isinstance(event, ModelCalled):
        attributes: dict[str, str | bool | float] = {"voicenode.llm_ok": event.ok}
        if event.first_token_ms is not None:
            attributes["voicenode.llm_first_token_ms"] = event.first_token_ms
        return "llm_request", attributes
    attributes = {"voicenode.tool": event.name, "voicenode.tool_ok": event.ok}
    server, sep, _ = event.name.partition("__")
    if sep:
        attributes["voicenode.mcp_server"] = server
    return ("mcp_call" if sep else "tool_call"), attributes


@contextlib.asynccontextmanager
async def open_call_tracing(
    calls: CallSource,
    agents: AgentLookup,
    env: Mapping[str, str] | None = None,
    *,
    provider: TracerProvider | None = None,
) -> AsyncIterator[CallTracer | None]:
    """Trace `calls` while entered, if `provider` is given or the environment asks for an
    exporter (`exporter_from_env`); yields None (and subscribes nothing) otherwise. Exit after
    the calls have ended: traces still open end as interrupted, the provider is flushed and
    shut down (in a thread: the export may block)."""
    if provider is None:
        exporters = exporter_from_env(os.environ if env is None else env)
        if not exporters:
            yield None
            return
        provider = provider_for(exporters)
    tracer = CallTracer(provider.get_tracer("voicenode"), agents)
    unsubscribe = calls.subscribe(tracer.on_call_event)
    log.info("call tracing on")
    try:
        yield tracer
    finally:
        unsubscribe()
        tracer.close()
        await asyncio.to_thread(provider.shutdown)
