"""Calls over Asterisk AudioSocket: an asyncio TCP server that turns each connection into an
`AudioSocketCall` (`media/audiosocket_call.py`).

Asterisk connects (dialplan `AudioSocket(UUID,HOST:PORT)`) and sends the call's UUID first.
A connection from outside `AudioSocketOptions.allowed_sources` (when set) is closed at accept,
before anything is read from it.
The server's owner routes the UUID (`AudioSocketRouter.route`: which tenant and agent, admission
included) and starts the call (`AudioSocketRouter.start`); an unknown UUID or a refused call gets
the error kind and the connection is closed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Protocol

import msgspec

from core.errors import Refused
from media.audiosocket import CallUuid, Error, ErrorCode, Framer, Hangup, Message
from media.audiosocket_call import (
    AudioSocketCall,
    AudioSocketOptions,
    FarEndControl,
    close_writer,
)
from media.call import CallInfo
from media.clock import Clock, MonotonicClock

__all__ = [
    "AudioSocketRouter",
    "AudioSocketServer",
    "CallRefused",
    "CallRoute",
    "serve_audiosocket",
]

log = logging.getLogger(__name__)


class CallRefused(Refused):
    """The router will not take this call; the caller gets the error kind with `code`."""

    def __init__(self, reason: str, code: ErrorCode = ErrorCode.REFUSED) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


class CallRoute(msgspec.Struct, frozen=True, kw_only=True):
    """Where a connection goes: its call info, the agent (opaque here) and far-end control."""

    info: CallInfo
    agent: str
    control: FarEndControl | None = None


class AudioSocketRouter(Protocol):
    async def route(self, call_uuid: uuid.UUID) -> CallRoute:
        """Decide who answers `call_uuid` (and admit it), or raise `CallRefused`."""
        ...

    def start(self, call: AudioSocketCall, route: CallRoute) -> None:
        """Run the call (the owner closes it when it ends), or raise `CallRefused`; a refusal
        must undo what `route` took (the admission)."""
        ...


class AudioSocketServer:
    """Accepts AudioSocket connections and turns each routed one into an `AudioSocketCall`."""

    def __init__(
        self,
        router: AudioSocketRouter,
        *,
        options: AudioSocketOptions | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._router = router
        self._options = options or AudioSocketOptions()
        self._clock = clock or MonotonicClock()
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[Any]] = set()
        self._allowed = [
            ipaddress.ip_network(n, strict=False) for n in self._options.allowed_sources
        ]
        self.port = 0
        self.refused_sources = 0
        """Connections closed at accept because their source is not allowed."""

    @property
    def connections(self) -> int:
        """Connections being served (routed or not yet)."""
        return len(self._connections)

    async def wait_connections_closed(self, keep: int = 0) -> None:
        """Return once at most `keep` connections are still open."""
        while len(self._connections) > keep:
            await asyncio.wait(list(self._connections), return_when=asyncio.FIRST_COMPLETED)

    async def start(self, host: str, port: int) -> None:
        self._server = await asyncio.start_server(self._serve, host, port)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("audiosocket listening", extra={"host": host, "port": self.port})

    async def close(self) -> None:
        """Stop listening and close every connection (their calls end as hung up)."""
        if self._server is not None:
            self._server.close()
        tasks = list(self._connections)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    def allowed(self, peer: object) -> bool:
        """Whether a connection from `peer` (its peername) may be served."""
        if not self._allowed:
            return True
        try:
            addr = ipaddress.ip_address(peer[0] if isinstance(peer, tuple) else "")
        except ValueError:
            return False
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        return any(addr in net for net in self._allowed)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        if not self.allowed(peer):
            self.refused_sources += 1
            source = peer[0] if isinstance(peer, tuple) else str(peer)
            log.warning(
                "audiosocket connection from a source not allowed", extra={"source": source}
            )
            writer.transport.abort()
            return
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await self._serve_connection(reader, writer)
        except Exception:
            log.exception("audiosocket connection failed")
        finally:
            self._connections.discard(task)
            if not writer.is_closing():
                await close_writer(writer, self._options.close_timeout_s)

    async def _refuse(self, writer: asyncio.StreamWriter, code: ErrorCode) -> None:
        if not writer.is_closing():
            writer.write(bytes(Error(bytes((code,)))))
        await close_writer(writer, self._options.close_timeout_s)

    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        framer = Framer()
        try:
            async with asyncio.timeout(self._options.uuid_timeout_s):
                first = await self._read_uuid(reader, framer)
        except TimeoutError:
            log.info("audiosocket connection sent no UUID in time")
            await self._refuse(writer, ErrorCode.TIMEOUT)
            return
        except ValueError as exc:
            log.info("audiosocket connection refused", extra={"error": str(exc)})
            await self._refuse(writer, ErrorCode.PROTOCOL)
            return
        except (ConnectionError, OSError):
            return
        if first is None:
            return  # closed before sending anything useful
        call_uuid, rest = first
        try:
            route = await self._router.route(call_uuid)
        except CallRefused as exc:
            log.info(
                "audiosocket call refused",
                extra={"call_uuid": str(call_uuid), "reason": exc.reason},
            )
            await self._refuse(writer, exc.code)
            return
        call = AudioSocketCall(
            route.info,
            reader,
            writer,
            framer,
            options=self._options,
            clock=self._clock,
            far_end=route.control,
        )
        try:
            self._router.start(call, route)
        except CallRefused as exc:
            log.info("audiosocket call not started", extra={**_extra(route), "reason": exc.reason})
            await self._refuse(writer, exc.code)
            await call.close("refused")
            return
        await call.run(rest)

    async def _read_uuid(
        self, reader: asyncio.StreamReader, framer: Framer
    ) -> tuple[uuid.UUID, list[Message]] | None:
        """Read until the first message; it must be the UUID. None: closed before it."""
        while True:
            data = await reader.read(self._options.read_chunk)
            if not data:
                return None
            messages = framer.feed(data)
            if not messages:
                continue
            match messages[0]:
                case CallUuid(uuid=call_uuid):
                    return call_uuid, messages[1:]
                case Hangup():
                    return None
                case other:
                    raise ValueError(f"expected the call's UUID first, got {type(other).__name__}")


def _extra(route: CallRoute) -> dict[str, str]:
    return {"call_id": route.info.call_id, "tenant_id": route.info.tenant_id}


@asynccontextmanager
async def serve_audiosocket(
    router: AudioSocketRouter,
    host: str,
    port: int,
    *,
    options: AudioSocketOptions | None = None,
    clock: Clock | None = None,
) -> AsyncIterator[AudioSocketServer]:
    """Run an `AudioSocketServer` while the context is entered (port 0: a free port)."""
    server = AudioSocketServer(router, options=options, clock=clock)
    await server.start(host, port)
    try:
        yield server
    finally:
        await server.close()
