"""A mock LLM: an OpenAI-compatible streaming chat-completions server (a real HTTP server),
for reproducible bench runs with LLM agents and for tests.

`LlmDouble` (alias `MockLlm`) listens on `host` (127.0.0.1, a free port unless `port` is
given) in the caller's event loop and answers `POST /v1/chat/completions` with SSE
`chat.completion.chunk` events, following the `Reply` scripts queued with `script(...)` (one
per request, in order; `per_turn=True`: one per turn, a request that re-asks the previous
one's turn gets its reply again, `bench.mock_llm_turns`; once they run out, `reply_source()`
when given, else `default_reply`: the bench passes `bench.mock_replies.varied_reply_source`
so each request gets a new reply). Other paths answer from `routes` (for HTTP tools). Every
request is recorded in `requests` (`record=False`: not kept, for long bench runs).

Timing: `ttft_s` after the request arrived the first token goes out, then `tokens_per_s`
tokens a second (None: all at once), on the injected clock. Defaults: no delay.

Scripts can: stream text token by token, stream tool calls in argument fragments, wait for a
test-controlled `asyncio.Event` before the first token or before finishing, answer HTTP 500,
drop the connection mid-stream (chunked body cut short) or send a malformed event.
Each response is `Connection: close`, chunked.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import re
from collections import deque
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from bench.mock_llm_turns import TurnScript
from media.clock import Clock, MonotonicClock

__all__ = [
    "LlmDouble",
    "MockLlm",
    "RecordedRequest",
    "Reply",
    "Route",
    "ScriptedToolCall",
    "tokens_of",
]


@dataclasses.dataclass(frozen=True)
class ScriptedToolCall:
    name: str
    arguments: dict[str, Any] | str = dataclasses.field(default_factory=dict)
    """Sent as JSON (a str is sent as is, e.g. to send broken JSON)."""
    id: str = "call_1"
    fragments: int = 3
    """Number of pieces the arguments JSON is streamed in."""

    def arguments_json(self) -> str:
        if isinstance(self.arguments, str):
            return self.arguments
        return json.dumps(self.arguments)


@dataclasses.dataclass
class Reply:
    """How the double answers one chat-completions request."""

    tokens: Sequence[str] = ()
    tool_calls: Sequence[ScriptedToolCall] = ()
    status: int = 200
    before_headers: asyncio.Event | None = None
    """Wait for this before sending the response headers."""
    before_first: asyncio.Event | None = None
    """Wait for this (after the response headers) before the first token."""
    before_done: asyncio.Event | None = None
    """Wait for this after the last token, before finishing the stream."""
    drop_after: int | None = None
    """Cut the connection (no end of the chunked body, no [DONE]) after this many tokens."""
    malformed_after: int | None = None
    """Send a `data:` line that is not JSON after this many tokens."""


@dataclasses.dataclass(frozen=True)
class Route:
    """A canned answer for a non-chat path (HTTP tools)."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


_REASONS = {200: "OK", 302: "Found", 404: "Not Found", 500: "Internal Server Error"}
_TOKEN = re.compile(r"\s*\S+")


def tokens_of(text: str) -> list[str]:
    """`text` as streamed tokens: each word with the whitespace before it."""
    return _TOKEN.findall(text)


class LlmDouble:
    def __init__(
        self,
        *,
        ttft_s: float = 0.0,
        tokens_per_s: float | None = None,
        default_reply: Reply | None = None,
        clock: Clock | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        record: bool = True,
        reply_source: Callable[[], Reply] | None = None,
        per_turn: bool = False,
    ) -> None:
        if ttft_s < 0:
            raise ValueError(f"time to first token must be >= 0 s, got {ttft_s}")
        if tokens_per_s is not None and not tokens_per_s > 0:
            raise ValueError(f"tokens per second must be > 0, got {tokens_per_s}")
        self.replies: deque[Reply] = deque()
        self._turns = TurnScript(self.replies, per_turn=per_turn)
        self.routes: dict[str, Route] = {}
        self.requests: list[RecordedRequest] = []
        self.client_gone = asyncio.Event()
        """Set when a client hung up before its stream finished."""
        self.finished_streams = 0
        self.chat_count = 0
        self.ttft_s = ttft_s
        self.tokens_per_s = tokens_per_s
        self.default_reply = default_reply or Reply(tokens=["(no script)"])
        self.reply_source = reply_source
        self.clock: Clock = clock or MonotonicClock()
        self.record = record
        self._host = host
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self.port = port

    # ---- lifecycle ----

    async def __aenter__(self) -> LlmDouble:
        self._server = await asyncio.start_server(self._handle, self._host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._handlers):
            task.cancel()
        for task in list(self._handlers):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._server.wait_closed()

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self.port}/v1"

    def url(self, path: str) -> str:
        return f"http://{self._host}:{self.port}{path}"

    def schedule(self, n_tokens: int) -> list[float]:
        """Seconds after the request at which each of `n_tokens` tokens is due."""
        step = 0.0 if self.tokens_per_s is None else 1.0 / self.tokens_per_s
        return [self.ttft_s + i * step for i in range(n_tokens)]

    def script(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    @property
    def chat_requests(self) -> list[dict[str, Any]]:
        """The JSON bodies of the chat-completions requests, in order."""
        return [r.json() for r in self.requests if r.path == "/v1/chat/completions"]

    @property
    def turn_requests(self) -> list[dict[str, Any]]:
        """`chat_requests` less those a later request re-asked about the same turn (a
        preemptive request the caller went on past; `bench.mock_llm_turns`)."""
        gone = self._turns.superseded
        return [body for i, body in enumerate(self.chat_requests) if i not in gone]

    # ---- HTTP ----

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            request = await self._read_request(reader)
            if request is None:
                return
            if self.record:
                self.requests.append(request)
            if request.path == "/v1/chat/completions" and request.method == "POST":
                await self._chat(request, reader, writer)
            else:
                route = self.routes.get(request.path, Route(status=404, body=b"not found"))
                await self._plain(writer, route.status, route.body, route.headers)
        except (ConnectionError, asyncio.IncompleteReadError):
            self.client_gone.set()
        finally:
            self._handlers.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _read_request(self, reader: asyncio.StreamReader) -> RecordedRequest | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None
        lines = head.decode("latin-1").split("\r\n")
        method, target, _version = lines[0].split(" ", 2)
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        body = await reader.readexactly(length) if length else b""
        parts = urlsplit(target)
        return RecordedRequest(
            method=method,
            path=parts.path,
            query=parse_qs(parts.query),
            headers=headers,
            body=body,
        )

    async def _plain(
        self,
        writer: asyncio.StreamWriter,
        status: int,
        body: bytes,
        headers: dict[str, str] | None = None,
    ) -> None:
        all_headers = {
            "content-type": "application/json",
            "content-length": str(len(body)),
            "connection": "close",
            **(headers or {}),
        }
        writer.write(self._status_line(status) + self._header_block(all_headers) + body)
        await writer.drain()

    @staticmethod
    def _status_line(status: int) -> bytes:
        return f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}\r\n".encode()

    @staticmethod
    def _header_block(headers: dict[str, str]) -> bytes:
        return ("".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n").encode()

    async def _chat(
        self, request: RecordedRequest, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        arrived = self.clock.now()
        self.chat_count += 1
        reply = self._next_reply(request, self.chat_count - 1)
        if reply.before_headers is not None:
            await self._wait(reply.before_headers, reader)
        if reply.status != 200:
            error = {"error": {"message": "scripted failure", "type": "server_error"}}
            await self._plain(writer, reply.status, json.dumps(error).encode())
            return
        stream = await self._open_stream(request, writer)
        if reply.before_first is not None:
            await self._wait(reply.before_first, reader)
        if not await self._stream_text(reply, stream, arrived):
            return  # the finally closes the socket mid-body
        await _stream_tool_calls(reply.tool_calls, stream)
        if reply.before_done is not None:
            await self._wait(reply.before_done, reader)
        await stream.send({}, finish="tool_calls" if reply.tool_calls else "stop")
        await stream.send_raw(b"data: [DONE]\n\n")
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        self.finished_streams += 1

    def _next_reply(self, request: RecordedRequest, index: int) -> Reply:
        if (scripted := self._turns.next(request.body, index)) is not None:
            return scripted
        return self.reply_source() if self.reply_source is not None else self.default_reply

    async def _open_stream(self, request: RecordedRequest, writer: asyncio.StreamWriter) -> _Sse:
        """Send the headers of a chunked event stream; its chunks name the requested model."""
        writer.write(
            self._status_line(200)
            + self._header_block(
                {
                    "content-type": "text/event-stream",
                    "transfer-encoding": "chunked",
                    "connection": "close",
                }
            )
        )
        await writer.drain()
        try:
            model = str(request.json().get("model", "double"))
        except (ValueError, AttributeError):
            model = "double"
        return _Sse(writer, model)

    async def _stream_text(self, reply: Reply, stream: _Sse, arrived: float) -> bool:
        """The assistant role, then the reply's tokens on schedule. False: the script drops the
        connection here (after `drop_after` tokens)."""
        due = self.schedule(len(reply.tokens))
        timed = self.ttft_s > 0 or self.tokens_per_s is not None
        if timed and due:
            await self.clock.sleep_until(arrived + due[0])
        await stream.send({"role": "assistant", "content": ""})
        for sent, token in enumerate(reply.tokens):
            if timed:
                await self.clock.sleep_until(arrived + due[sent])
            if reply.drop_after is not None and sent == reply.drop_after:
                return False
            if reply.malformed_after is not None and sent == reply.malformed_after:
                await stream.send_raw(b"data: {this is not json\n\n")
            await stream.send({"content": token})
        return reply.drop_after is None or reply.drop_after < len(reply.tokens)

    async def _wait(self, event: asyncio.Event, reader: asyncio.StreamReader) -> None:
        """Wait for the test's event; notice a client hanging up meanwhile."""
        waiter = asyncio.ensure_future(event.wait())
        hangup = asyncio.ensure_future(reader.read(1))
        try:
            await asyncio.wait({waiter, hangup}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            hangup.cancel()
            await asyncio.gather(waiter, hangup, return_exceptions=True)
        if hangup.done() and not hangup.cancelled() and hangup.result() == b"":
            raise ConnectionResetError("client hung up")


class _Sse:
    """One chunked `text/event-stream` body of `chat.completion.chunk` events."""

    def __init__(self, writer: asyncio.StreamWriter, model: str) -> None:
        self._writer = writer
        self._model = model

    async def send(self, delta: dict[str, Any], finish: str | None = None) -> None:
        chunk = {
            "id": "chatcmpl-double",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": self._model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        await self.send_raw(f"data: {json.dumps(chunk)}\n\n".encode())

    async def send_raw(self, data: bytes) -> None:
        self._writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        await self._writer.drain()


async def _stream_tool_calls(calls: Sequence[ScriptedToolCall], stream: _Sse) -> None:
    """Each tool call: its id and name, then its arguments JSON in `fragments` pieces."""
    for index, call in enumerate(calls):
        args = call.arguments_json()
        step = max(1, -(-len(args) // max(1, call.fragments)))
        pieces = [args[i : i + step] for i in range(0, len(args), step)] or [""]
        await stream.send(
            {
                "tool_calls": [
                    {
                        "index": index,
                        "id": call.id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": ""},
                    }
                ]
            }
        )
        for piece in pieces:
            await stream.send({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})


MockLlm = LlmDouble
