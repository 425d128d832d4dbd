"""An Asterisk Manager Interface (AMI) client: pure signalling, over panoramisk's AMI protocol.

panoramisk's `AMIProtocol` frames the line protocol (`Key: value` lines, a blank line ends a
message) and correlates responses with actions by `ActionID`. Its `Manager` is not used: it
reconnects at a fixed interval from loop callbacks and runs event callbacks as unowned tasks.
Here one owned task connects, logs in, and reconnects with exponential backoff (at the longest
delay after a refused login, so a wrong secret does not hammer the PBX); events go to a plain
callback as `AmiEvent`s; `action()` sends one action and returns its response, or raises.

The secret is sent in the Login action only and is never logged; panoramisk's own wire log
(which prints messages) is silenced.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import msgspec
from panoramisk.actions import Action
from panoramisk.ami_protocol import AMIProtocol

from core.backoff import backoff
from core.errors import TransportError

__all__ = [
    "AmiActionFailed",
    "AmiClient",
    "AmiError",
    "AmiEvent",
    "AmiFieldInvalid",
    "AmiLoginFailed",
    "AmiNotConnected",
    "AmiOptions",
    "AmiResponse",
    "check_fields",
]

log = logging.getLogger(__name__)
# panoramisk logs every message it parses (caller numbers: PII) and a failed send with the
# action (a Login carries the secret): its protocol objects get this logger, which drops all.
_WIRE_LOG = logging.Logger("sip.ami.wire", level=logging.CRITICAL + 1)
_WIRE_LOG.propagate = False


class AmiError(TransportError):
    """An AMI action or the AMI connection failed."""


class AmiNotConnected(AmiError):
    """No logged-in AMI connection right now (it reconnects by itself)."""

    retryable = True


class AmiLoginFailed(AmiError):
    """Asterisk refused the username or secret."""


class AmiActionFailed(AmiError):
    """Asterisk answered an action with an error (`response` holds its headers)."""

    def __init__(self, message: str, response: AmiResponse | None = None) -> None:
        super().__init__(message)
        self.response = response


class AmiFieldInvalid(AmiError):
    """An action field holds CR, LF or NUL (it would end the field, or the action, early and
    let the rest be read as headers or actions of its own): nothing was sent."""


_UNSAFE = frozenset("\r\n\x00")


def check_fields(name: str, fields: Mapping[str, str | Sequence[str]]) -> None:
    """`AmiFieldInvalid` unless every header name and value of the action is one line."""
    for key, value in (("Action", name), *fields.items()):
        values = [value] if isinstance(value, str) else list(value)
        if not key or ":" in key or _UNSAFE.intersection(key):
            raise AmiFieldInvalid(f"AMI {name.splitlines()[0][:40]!r}: invalid header name")
        for item in values:
            if not isinstance(item, str) or _UNSAFE.intersection(item):
                raise AmiFieldInvalid(
                    f"AMI action field {key!r} holds a line break or NUL: not sent"
                )


class AmiOptions(msgspec.Struct, frozen=True, kw_only=True):
    host: str
    port: int = 5038
    username: str
    secret: str = msgspec.field(default="")
    connect_timeout_s: float = 5.0
    action_timeout_s: float = 10.0
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0

    def __repr__(self) -> str:  # never show the secret
        return f"AmiOptions(host={self.host!r}, port={self.port}, username={self.username!r})"


def _headers(message: Mapping[str, Any]) -> dict[str, str]:
    """Lower-cased header names; repeated headers joined with newlines."""
    out: dict[str, str] = {}
    for key, value in message.items():
        if key == "content":
            continue
        out[key.lower()] = "\n".join(value) if isinstance(value, list) else str(value)
    return out


def _variables(message: Mapping[str, Any]) -> dict[str, str]:
    """Channel variables an event carries: `ChanVariable: NAME=value` (Asterisk 12+, from
    `channelvars` in manager.conf) or `ChanVariable(NAME): value` (older)."""
    out: dict[str, str] = {}
    for key, value in message.items():
        low = key.lower()
        values = value if isinstance(value, list) else [value]
        if low == "chanvariable":
            for item in values:
                name, eq, val = str(item).partition("=")
                if eq:
                    out[name] = val
        elif low.startswith("chanvariable(") and low.endswith(")"):
            out[key[len("chanvariable(") : -1]] = str(values[-1])
    return out


class AmiEvent(msgspec.Struct, frozen=True):
    """One AMI event: its name, headers (lower-cased names) and channel variables."""

    name: str
    headers: dict[str, str]
    variables: dict[str, str] = msgspec.field(default_factory=dict)

    def get(self, header: str, default: str = "") -> str:
        return self.headers.get(header.lower(), default)

    @classmethod
    def from_message(cls, message: Mapping[str, Any]) -> AmiEvent:
        headers = _headers(message)
        return cls(headers.get("event", ""), headers, _variables(message))


class AmiResponse(msgspec.Struct, frozen=True):
    headers: dict[str, str]

    def get(self, header: str, default: str = "") -> str:
        return self.headers.get(header.lower(), default)


class _Link:
    """What panoramisk's protocol calls back into for one connection (its "factory")."""

    forgetable_actions = ("ping", "login")

    def __init__(self, on_event: Callable[[Mapping[str, Any]], None]) -> None:
        self.awaiting_actions: deque[Action] = deque()
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._on_event = on_event

    def dispatch(self, message: Mapping[str, Any]) -> None:
        self._on_event(message)

    def connection_lost(self, exc: object) -> None:
        if not self.lost.done():
            self.lost.set_result(None)


Fields = Mapping[str, str | Sequence[str]]


class AmiClient:
    """A logged-in AMI connection, kept up by an owned task while started."""

    def __init__(
        self, options: AmiOptions, on_event: Callable[[AmiEvent], None] | None = None
    ) -> None:
        self._options = options
        self._on_event = on_event
        self._protocol: AMIProtocol | None = None
        self._link: _Link | None = None
        self._task: asyncio.Task[None] | None = None
        self._state = asyncio.Condition()
        self.connected = False
        self.logins = 0
        """Successful logins so far (a reconnect adds one)."""
        self.last_error: AmiError | None = None
        self._extra = {"ami_host": options.host, "ami_port": options.port}

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="ami")

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task])
        self._drop_connection()

    async def __aenter__(self) -> AmiClient:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def wait_connected(self) -> None:
        """Wait until logged in; raises `AmiLoginFailed` if the last login was refused."""
        async with self._state:
            while not self.connected:
                if isinstance(self.last_error, AmiLoginFailed):
                    raise self.last_error
                await self._state.wait()

    async def action(self, name: str, fields: Fields | None = None) -> AmiResponse:
        """Send one action and return its response; `AmiActionFailed` when Asterisk refuses it,
        `AmiNotConnected` when there is no connection (or it drops before the answer)."""
        check_fields(name, fields or {})
        protocol, link = self._protocol, self._link
        if not self.connected or protocol is None or link is None:
            raise AmiNotConnected(f"AMI is not connected: cannot send {name}")
        action = Action({"Action": name, **(fields or {})}, as_list=False)
        future = protocol.send(action)
        try:
            async with asyncio.timeout(self._options.action_timeout_s):
                done, _ = await asyncio.wait([future, link.lost], return_when="FIRST_COMPLETED")
        except TimeoutError:
            protocol.responses.pop(action.id, None)
            future.cancel()
            raise AmiNotConnected(f"AMI {name}: no response in time") from None
        if future not in done or future.cancelled():
            future.cancel()
            raise AmiNotConnected(f"AMI connection lost during {name}")
        message = future.result()
        response = AmiResponse(_headers(message))
        if not message.success:
            reason = response.get("message", "refused")
            raise AmiActionFailed(f"AMI {name} failed: {reason}", response)
        return response

    # -- connection ------------------------------------------------------------------------
    async def _run(self) -> None:
        failures = 0
        while True:
            delay = 0.0
            try:
                await self._connect_and_login()
                failures = 0
                assert self._link is not None
                await self._link.lost
                log.warning("AMI connection lost", extra=self._extra)
            except AmiLoginFailed as exc:
                log.error("AMI login refused", extra={**self._extra, "error": str(exc)})
                await self._set_state(connected=False, error=exc)
                delay = self._options.backoff_max_s
            except (OSError, TimeoutError, AmiNotConnected) as exc:
                failures += 1
                log.warning("AMI connect failed", extra={**self._extra, "error": str(exc)})
                await self._set_state(connected=False, error=AmiNotConnected(str(exc)))
            finally:
                self._drop_connection()
            await self._set_state(connected=False)
            if not delay:  # 0 after a connection that was up: reconnect at once
                delay = backoff(
                    failures, self._options.backoff_initial_s, self._options.backoff_max_s
                )
            await asyncio.sleep(delay)

    async def _connect_and_login(self) -> None:
        fields = {
            "Username": self._options.username,
            "Secret": self._options.secret,
            "Events": "on",
        }
        try:
            check_fields("Login", fields)
        except AmiFieldInvalid:  # never sent, never logged
            raise AmiLoginFailed("ami.username or ami.secret holds a line break or NUL") from None
        loop = asyncio.get_running_loop()
        link = _Link(self._dispatch)
        async with asyncio.timeout(self._options.connect_timeout_s):
            _, protocol = await loop.create_connection(
                AMIProtocol, self._options.host, self._options.port
            )
        protocol.factory = link
        protocol.log = _WIRE_LOG
        protocol.encoding = "utf8"
        self._protocol, self._link = protocol, link
        login = Action({"Action": "Login", **fields}, as_list=False)
        future = protocol.send(login)
        async with asyncio.timeout(self._options.action_timeout_s):
            done, _ = await asyncio.wait([future, link.lost], return_when="FIRST_COMPLETED")
        if future not in done or future.cancelled():
            future.cancel()
            raise AmiNotConnected("the connection closed during login")
        reply = future.result()
        if not reply.success:
            raise AmiLoginFailed(f"login refused: {reply.get('message', '')}")
        self.logins += 1
        log.info("AMI logged in", extra={**self._extra, "logins": self.logins})
        await self._set_state(connected=True, error=None)

    async def _set_state(self, *, connected: bool, error: AmiError | None = None) -> None:
        async with self._state:
            self.connected = connected
            if error is not None or connected:
                self.last_error = error
            self._state.notify_all()

    def _drop_connection(self) -> None:
        """Close the socket and fail every action still waiting for an answer."""
        protocol, link = self._protocol, self._link
        self._protocol = self._link = None
        self.connected = False
        if protocol is not None:
            pending = list(protocol.responses.values())
            protocol.responses.clear()
            if not protocol.closed:
                protocol.close()
            for action in pending:
                if not action.future.done():
                    action.future.cancel()
        if link is not None:
            while link.awaiting_actions:
                action = link.awaiting_actions.popleft()
                if not action.future.done():
                    action.future.cancel()
            if not link.lost.done():
                link.lost.set_result(None)

    def _dispatch(self, message: Mapping[str, Any]) -> None:
        event = AmiEvent.from_message(message)
        if event.name.lower() == "shutdown":
            log.warning("Asterisk is shutting down", extra=self._extra)
        if self._on_event is not None:
            try:
                self._on_event(event)
            except Exception:
                log.exception(
                    "AMI event handler failed", extra={**self._extra, "event": event.name}
                )
