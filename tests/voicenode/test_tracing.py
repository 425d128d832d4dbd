"""Call traces (voicenode/tracing.py): off unless the standard `OTEL_*` variables ask, and a real
call through the real node (its store, admission, `LiveCalls`, `CallSession`; fake speech
engines on the real clock; an LLM agent against the OpenAI-compatible double, calling its
`end_call` tool) makes one trace, exported to the SDK's in-memory exporter: the call's root
span, a span per turn with its stage spans and the tool call inside it, the ids as attributes
and no transcript or phone number anywhere."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from control_api.store import agents as agent_rows
from tests.support.analytics import Receiver
from tests.support.llm_double import LlmDouble, Reply, ScriptedToolCall
from tests.support.served_node import (
    call_and_speak,
    light_node,
    light_node_settings,
    run_call,
)
from voicenode.node import Node
from voicenode.tracing import STAGE_SPANS, exporter_from_env, open_call_tracing

CALLER_LINE = "I want to cancel, my number is 555 867 5309"
CALLER_URI = "sip:+15558675309@carrier.example"


def test_tracing_is_off_unless_the_environment_asks() -> None:
    assert exporter_from_env({}) == []
    assert exporter_from_env({"OTEL_SERVICE_NAME": "x"}) == []
    endpoint = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}
    assert [type(e) for e in exporter_from_env(endpoint)] == [OTLPSpanExporter]
    traces = {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}
    assert [type(e) for e in exporter_from_env(traces)] == [OTLPSpanExporter]
    both = {"OTEL_TRACES_EXPORTER": "otlp, console"}
    assert [type(e) for e in exporter_from_env(both)] == [OTLPSpanExporter, ConsoleSpanExporter]
    assert exporter_from_env({**endpoint, "OTEL_TRACES_EXPORTER": "none"}) == []
    assert exporter_from_env({**endpoint, "OTEL_SDK_DISABLED": "true"}) == []
    assert exporter_from_env({"OTEL_TRACES_EXPORTER": "zipkin"}) == []


class _Calls:
    def __init__(self) -> None:
        self.subscribed = 0

    def subscribe(self, listener: object) -> object:
        self.subscribed += 1
        return lambda: None


async def test_off_subscribes_nothing() -> None:
    calls = _Calls()
    async with open_call_tracing(calls, lambda info: None, env={}) as tracer:  # type: ignore[arg-type]
        assert tracer is None
    assert calls.subscribed == 0


def agent_toml(double: LlmDouble) -> str:
    return (
        'name = "tracer"\nkind = "llm"\nprompt = "You are tracer."\ngreeting = "Hello there."\n'
        'tools = [{name = "end_call"}]\n'
        f'[llm]\nbase_url = "{double.base_url}"\nmodel = "m"\n'
    )


@asynccontextmanager
async def traced_node(data_dir: Path) -> AsyncIterator[tuple[Node, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    async with (
        light_node(light_node_settings(data_dir), [CALLER_LINE]) as node,
        open_call_tracing(node.calls, node.agent_of, provider=provider),
    ):
        yield node, exporter


def children(spans: list[ReadableSpan], parent: ReadableSpan) -> list[ReadableSpan]:
    assert parent.context is not None
    return [s for s in spans if s.parent is not None and s.parent.span_id == parent.context.span_id]


def times(span: ReadableSpan) -> tuple[int, int]:
    assert span.start_time is not None and span.end_time is not None
    assert span.start_time <= span.end_time, span.name
    return span.start_time, span.end_time


async def test_a_real_call_makes_one_trace_with_turn_stage_and_tool_spans(tmp_path: Path) -> None:
    async with LlmDouble() as double, traced_node(tmp_path) as (node, exporter):
        async with node.store.session() as session:
            await agent_rows.create_agent(session, "demo", "tracer", agent_toml(double))
        double.script(
            Reply(tokens=["Okay, ", "it is cancelled."], tool_calls=[ScriptedToolCall("end_call")])
        )
        ended = await call_and_speak(node, "demo", "tracer", from_uri=CALLER_URI)
    spans = list(exporter.get_finished_spans())
    (root,) = [s for s in spans if s.parent is None]
    assert root.name == "call" and root.context is not None
    assert {s.context.trace_id for s in spans if s.context} == {root.context.trace_id}
    attrs = root.attributes or {}
    assert attrs["voicenode.tenant_id"] == "demo" and attrs["voicenode.agent"] == "tracer"
    assert str(attrs["voicenode.call_id"]).startswith("call-")
    assert isinstance(attrs["voicenode.agent_version"], int)
    assert attrs["voicenode.transport"] == "virtual"
    assert attrs["voicenode.direction"] == "inbound"
    assert attrs["voicenode.end_reason"] == ended.reason

    (turn,) = [s for s in children(spans, root) if s.name == "turn"]
    assert (turn.attributes or {})["voicenode.turn"] == 1
    call_start, call_end = times(root)
    turn_start, turn_end = times(turn)
    assert call_start <= turn_start <= turn_end <= call_end
    stages = {
        s.name: s for s in children(spans, turn) if s.name not in ("tool_call", "llm_request")
    }
    assert set(stages) == {name for name, _, _ in STAGE_SPANS}
    previous_end = turn_start
    for name, _, _ in STAGE_SPANS:  # back to back, in pipeline order, inside the turn
        start, end = times(stages[name])
        assert start == previous_end and end <= turn_end, name
        previous_end = end
    assert previous_end == turn_end
    (llm,) = [s for s in children(spans, turn) if s.name == "llm_request"]
    llm_start, llm_end = times(llm)
    assert llm_start < llm_end and (llm.attributes or {})["voicenode.llm_ok"] is True
    assert "voicenode.llm_first_token_ms" in (llm.attributes or {})
    (tool,) = [s for s in children(spans, turn) if s.name == "tool_call"]
    assert (tool.attributes or {})["voicenode.tool"] == "end_call"
    assert turn_start <= times(tool)[0] <= call_end

    for span in spans:  # ids and labels only: no words, no number, no caller URI
        for value in (span.attributes or {}).values():
            text = str(value)
            assert "cancel" not in text and "5309" not in text and "carrier" not in text, (
                span.name,
                text,
            )


async def test_the_node_exports_over_otlp_http_when_the_endpoint_is_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The registration in `open_node`: `OTEL_EXPORTER_OTLP_ENDPOINT` alone turns tracing on,
    and the call's trace reaches a real HTTP server as OTLP protobuf (flushed at close)."""
    async with Receiver() as collector:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.url(""))
        monkeypatch.delenv("OTEL_TRACES_EXPORTER", raising=False)
        monkeypatch.setenv("OTEL_SERVICE_NAME", "voicenode-test")
        async with light_node(light_node_settings(tmp_path)) as node:
            info = await run_call(node, "demo", "receptionist", hang_up=True, from_uri=CALLER_URI)
        exports = [r for r in collector.requests if r.path == "/v1/traces"]
    assert exports, collector.requests
    assert exports[0].headers["content-type"] == "application/x-protobuf"
    sent = [ExportTraceServiceRequest.FromString(r.body) for r in exports]
    roots = [
        (resource, span)
        for request in sent
        for resource in request.resource_spans
        for scope in resource.scope_spans
        for span in scope.spans
        if span.name == "call"
    ]
    ((resource, root),) = roots
    service = {a.key: a.value.string_value for a in resource.resource.attributes}
    assert service["service.name"] == "voicenode-test"
    attrs = {a.key: a.value for a in root.attributes}
    assert attrs["voicenode.call_id"].string_value == info.call_id
    assert attrs["voicenode.agent"].string_value == "receptionist"
    assert attrs["voicenode.end_reason"].string_value == "hangup"
    assert root.start_time_unix_nano <= root.end_time_unix_nano
