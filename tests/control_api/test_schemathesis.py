"""Property-based API fuzzing: schemathesis generates requests from the app's OpenAPI schema
(every /v1 route, as the platform admin) against a node with a fake host and a real SQLite
store; no request may make the server answer 5xx. Examples per operation are bounded."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from tests.control_api.fakes import FakeHost
from tests.control_api.harness import auth, serve_node

MAX_EXAMPLES = 25


@pytest.fixture(scope="module")
def node_url() -> Iterator[str]:
    """The app on uvicorn in a thread of its own (schemathesis calls it synchronously)."""
    ready = threading.Event()
    url: list[str] = []
    stop: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    async def serve() -> None:
        stopped = asyncio.Event()
        async with serve_node(FakeHost(max_calls=4)) as node:
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
    return schemathesis.openapi.from_url(f"{node_url}/schema/openapi.json").include(
        path_regex="^/v1/"
    )


def test_no_request_makes_the_server_fail(api_schema: schemathesis.BaseSchema) -> None:
    # schemathesis's pytest plugin does not support this pytest; drive Hypothesis directly
    failures: dict[str, str] = {}
    calls = 0
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 15
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case: schemathesis.Case) -> None:
            nonlocal calls
            calls += 1
            response = case.call(headers=auth())
            case.validate_response(response, checks=[not_a_server_error])

        try:
            fuzz()
        except Exception as exc:  # noqa: BLE001 - collect every operation's failure
            failures[operation.label] = str(exc)[:2000]
    assert calls >= 5 * len(operations)
    assert not failures, "\n\n".join(f"{k}:\n{v}" for k, v in failures.items())
