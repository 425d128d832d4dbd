"""Property-based API fuzzing: schemathesis generates requests from the app's OpenAPI document
(every /v1 route and the probes, as the platform admin) against a node with a fake host and a
real SQLite store, and checks that the document is true: no server error, every status code,
content type, header and response body as documented, malformed requests refused and valid
ones accepted (`positive_data_acceptance`: no 400/413/422) — except where a route checks what
no schema can say (`UNCHECKED_ACCEPTANCE`, each with its reason). Seeded (the same examples
every run) and bounded (`POSITIVE` + `NEGATIVE` per operation, a few hundred requests in all).

Two nodes: one whose host has no analytics, and one whose host has (one recorded call), for
the routes mounted only then (webhooks, call history) and the call routes they share
`/v1/calls` with. The routes that place calls or contact URLs run against local fakes: outbound
calls go to a dialer that only counts them, WebRTC offers are fuzzed SDP (400), and agents'
and webhooks' URLs are checked by the URL guard (refused or unresolvable hosts: 400)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from typing import Any, TypeVar

import httpx
import schemathesis
from hypothesis import HealthCheck, given, seed, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from control_api.analytics import Analytics, open_analytics
from tests.support.analytics import call_info, closing, opening, wait_for
from tests.support.harness import auth, node_settings, serve_node
from tests.support.host import FakeHost, temp_store

POSITIVE = 8
NEGATIVE = 4
SEED = 24
CHECKS: list[Any] = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,
]
SPEC_CHECKS = "the agent spec's URL guard, installed voices, existing secrets and flow graph"
UNCHECKED_ACCEPTANCE: dict[str, str] = {
    # operation -> why a valid request may still be refused (400): what no schema can say
    "POST /v1/agents": SPEC_CHECKS,
    "PUT /v1/agents/{name}": SPEC_CHECKS,
    "POST /v1/webhooks": "the URL guard: https (unless configured off) to a public address",
    "GET /v1/calls": "`cursor` is opaque: only a `next_cursor` the API gave out decodes",
    "GET /v1/campaigns": "`cursor` is opaque: only a `next_cursor` the API gave out decodes",
    "POST /v1/campaigns": "a time zone zoneinfo knows, windows' start before end, each day and "
    "contact number once",
    "GET /v1/subjects/{phone}/export": "`phone` is an E.164 number (+ and digits)",
    "DELETE /v1/subjects/{phone}": "`phone` is an E.164 number (+ and digits)",
}
ANALYTICS_ONLY = {
    "GET /v1/calls",
    "GET /v1/calls/{call_id}",
    "GET /v1/webhooks",
    "POST /v1/webhooks",
    "DELETE /v1/webhooks/{webhook_id}",
    "GET /v1/webhooks/{webhook_id}/dead-letters",
    "POST /v1/webhooks/{webhook_id}/dead-letters/replay",
    "GET /v1/subjects/{phone}/export",
    "DELETE /v1/subjects/{phone}",
}


class CountingDialer:
    """Takes every outbound call and places none."""

    def __init__(self) -> None:
        self.calls = 0

    async def dial(self, *, call_id: str, tenant_id: str, agent: str, to: str) -> None:
        self.calls += 1


class AnalyticsHost(FakeHost):
    """The fake host with analytics (call history, webhooks): their routes are mounted."""

    analytics: Analytics | None = None


H = TypeVar("H", bound=FakeHost)


def fuzz_host(host: H) -> H:
    host.dialers.update({"sip": CountingDialer(), "asterisk": CountingDialer()})
    return host


@asynccontextmanager
async def plain_node() -> AsyncIterator[str]:
    async with serve_node(fuzz_host(FakeHost(max_calls=4))) as node:
        yield node.url


def _delivered(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200)


@asynccontextmanager
async def analytics_node() -> AsyncIterator[str]:
    """A node whose host records calls (one ended call in the history) and relays webhooks
    (to a transport that takes every delivery: a webhook the fuzz adds contacts no one)."""
    settings = node_settings(max_calls=4)
    async with (
        temp_store() as store,
        httpx.AsyncClient(transport=httpx.MockTransport(_delivered)) as deliveries,
    ):
        host = fuzz_host(AnalyticsHost(max_calls=4))
        await host.attach_store(store)
        async with open_analytics(settings, store, host.calls, http=deliveries) as analytics:
            host.analytics = analytics
            for event in opening() + closing():
                analytics.recorder.on_call_event(call_info("fuzz-call-1"), event)

            async def written() -> bool:
                return analytics.recorder.written == 5  # an opening and a closing: 5 events

            await wait_for(written, what="the call recorded")
            async with serve_node(host, settings) as node:
                yield node.url


@contextmanager
def in_thread(serving: Callable[[], AbstractAsyncContextManager[str]]) -> Iterator[str]:
    """`serving()`'s app on uvicorn in a thread of its own (schemathesis calls it
    synchronously); yields its URL. What fails in the thread fails the test."""
    ready = threading.Event()
    url: list[str] = []
    failed: list[BaseException] = []
    stop: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    async def serve() -> None:
        stopped = asyncio.Event()
        try:
            async with serving() as served:
                url.append(served)
                stop.append((asyncio.get_running_loop(), stopped))
                ready.set()
                await stopped.wait()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            failed.append(exc)
            ready.set()

    thread = threading.Thread(target=asyncio.run, args=(serve(),), name="schemathesis-node")
    thread.start()
    try:
        assert ready.wait(60), "the node did not start"
        if failed and not url:
            raise AssertionError("the node did not start") from failed[0]
        yield url[0]
    finally:
        if stop:
            loop, stopped = stop[0]
            loop.call_soon_threadsafe(stopped.set)
        thread.join(30)
        assert not thread.is_alive(), "the node did not stop"
    if failed:
        raise AssertionError("the node failed") from failed[0]


def api_schema(url: str) -> schemathesis.BaseSchema:
    schema = schemathesis.openapi.from_url(f"{url}/schema/openapi.json")
    schema.config.update(headers=auth())
    return schema.exclude(path_regex="^/schema")


def _fuzz(operation: Any, mode: GenerationMode, examples: int, counter: list[int]) -> None:
    checks = list(CHECKS)
    if operation.label not in UNCHECKED_ACCEPTANCE:
        checks.append(positive_data_acceptance)

    @seed(SEED)
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    def fuzz(case: Any) -> None:
        counter[0] += 1
        case.validate_response(case.call(), checks=checks)

    fuzz()


def _modes(operation: Any) -> list[tuple[GenerationMode, int]]:
    """Valid requests; and invalid ones where there is something to make invalid."""
    modes = [(GenerationMode.POSITIVE, POSITIVE)]
    if operation.query or operation.body:
        modes.append((GenerationMode.NEGATIVE, NEGATIVE))
    return modes


def _fuzz_all(operations: list[Any]) -> None:
    failures: dict[str, str] = {}
    counter = [0]
    for operation in operations:
        for mode, examples in _modes(operation):
            try:
                _fuzz(operation, mode, examples, counter)
            except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - collect them all
                failures[f"{operation.label} ({mode.value})"] = str(exc)[:1500]
    assert counter[0] >= 4 * len(operations)
    assert not failures, "\n\n".join(f"{k}:\n{v}" for k, v in failures.items())


def _operations(schema: schemathesis.BaseSchema) -> list[Any]:
    return [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]


def test_the_document_is_true() -> None:
    # schemathesis's pytest plugin does not support this pytest; drive Hypothesis directly
    with in_thread(plain_node) as url:
        operations = _operations(api_schema(url))
        assert len(operations) >= 30
        _fuzz_all(operations)


def test_the_analytics_routes_are_documented_truly() -> None:
    """Webhooks, call history and data subjects (mounted only with analytics), and the call
    routes they share `/v1/calls` with."""
    with in_thread(analytics_node) as url:
        schema = api_schema(url).include(path_regex="^/v1/(webhooks|calls|subjects)")
        operations = _operations(schema)
        assert ANALYTICS_ONLY <= {op.label for op in operations}
        _fuzz_all(operations)
