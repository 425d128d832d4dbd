"""Property-based API fuzzing: schemathesis generates requests from the app's OpenAPI document
(every /v1 route and the probes, as the platform admin) against a node with a fake host and a
real SQLite store, and checks that the document is true: no server error, every status code
and content type documented, every response body matching its schema, and malformed requests
refused. Seeded (the same examples every run) and bounded (`POSITIVE` + `NEGATIVE` per
operation, a few hundred requests in all).

The routes that place calls or contact URLs run against local fakes: outbound calls go to a
dialer that only counts them, WebRTC offers are fuzzed SDP (400) and agents' URLs are checked
by the URL guard (refused or unresolvable hosts: 400)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, seed, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from tests.control_api.fakes import FakeHost
from tests.control_api.harness import auth, serve_node

POSITIVE = 8
NEGATIVE = 4
SEED = 24
CHECKS: list[Any] = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


class CountingDialer:
    """Takes every outbound call and places none."""

    def __init__(self) -> None:
        self.calls = 0

    async def dial(self, *, call_id: str, tenant_id: str, agent: str, to: str) -> None:
        self.calls += 1


def fuzz_host() -> FakeHost:
    host = FakeHost(max_calls=4)
    host.dialers.update({"sip": CountingDialer(), "asterisk": CountingDialer()})
    return host


@pytest.fixture(scope="module")
def node_url() -> Iterator[str]:
    """The app on uvicorn in a thread of its own (schemathesis calls it synchronously)."""
    ready = threading.Event()
    url: list[str] = []
    stop: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    async def serve() -> None:
        stopped = asyncio.Event()
        async with serve_node(fuzz_host()) as node:
            url.append(node.url)
            stop.append((asyncio.get_running_loop(), stopped))
            ready.set()
            await stopped.wait()

    thread = threading.Thread(target=asyncio.run, args=(serve(),), name="schemathesis-node")
    thread.start()
    try:
        assert ready.wait(30), "the node did not start"
        yield url[0]
    finally:
        if stop:
            loop, stopped = stop[0]
            loop.call_soon_threadsafe(stopped.set)
        thread.join(30)


@pytest.fixture
def api_schema(node_url: str) -> schemathesis.BaseSchema:
    schema = schemathesis.openapi.from_url(f"{node_url}/schema/openapi.json")
    schema.config.update(headers=auth())
    return schema.exclude(path_regex="^/schema")


def _fuzz(operation: Any, mode: GenerationMode, examples: int, counter: list[int]) -> None:
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
        case.validate_response(case.call(), checks=CHECKS)

    fuzz()


def _modes(operation: Any) -> list[tuple[GenerationMode, int]]:
    """Valid requests; and invalid ones where there is something to make invalid."""
    modes = [(GenerationMode.POSITIVE, POSITIVE)]
    if operation.query or operation.body:
        modes.append((GenerationMode.NEGATIVE, NEGATIVE))
    return modes


def test_the_document_is_true(api_schema: schemathesis.BaseSchema) -> None:
    # schemathesis's pytest plugin does not support this pytest; drive Hypothesis directly
    failures: dict[str, str] = {}
    counter = [0]
    operations = [result.ok() for result in api_schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) >= 30
    for operation in operations:
        for mode, examples in _modes(operation):
            try:
                _fuzz(operation, mode, examples, counter)
            except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - collect them all
                failures[f"{operation.label} ({mode.value})"] = str(exc)[:1500]
    assert counter[0] >= 4 * len(operations)
    assert not failures, "\n\n".join(f"{k}:\n{v}" for k, v in failures.items())
