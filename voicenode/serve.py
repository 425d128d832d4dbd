"""`voicenode serve`: the control API and WebRTC on uvicorn, in the node's own event loop.

On start it prints the /phone URL with a phone token in the fragment: it places WebRTC calls to
the demo tenant's agents and nothing else, for `http.phone_token_ttl_s` (the admin key is never
printed; with none configured there is no platform admin this run). The first SIGTERM or SIGINT
drains: the host refuses new calls (503 + Retry-After), /readyz answers 503, live calls run to
their end for up to `node.drain_timeout_s`, then the server stops and `serve` returns 0.
A second signal stops at once (returns 1: live calls were cut). SIGHUP reloads: the
configuration is read again through `load` and the agent files reconciled (`voicenode.reload`);
new calls get what changed live, live calls keep theirs; `POST /v1/admin/reload` does the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import signal
import socket
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractAsyncContextManager
from typing import TextIO

import uvicorn
import uvloop

from config.schema import Settings
from control_api.admin_api import RELOAD_STATE
from control_api.app import create_app
from control_api.host import CallHost
from control_api.phone import PhoneTokens
from media.clock import MonotonicClock
from media.webrtc import WebRtcOptions
from voicenode.logs import console_line
from voicenode.reload import Reloader

log = logging.getLogger(__name__)

HostFactory = Callable[[Settings], AbstractAsyncContextManager[CallHost]]
SettingsSource = Callable[[], Settings]
"""Reads the configuration again (the same file and environment the node started with)."""


class AppServer(uvicorn.Server):
    """uvicorn without its own signal handling (`serve` installs the node's)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def server_config(app: object, settings: Settings) -> uvicorn.Config:
    return uvicorn.Config(
        app,  # type: ignore[arg-type]
        host=settings.http.host,
        port=settings.http.port,
        lifespan="on",
        log_config=None,
        access_log=False,  # a /phone?key=... query must never reach a log
        ws_max_size=settings.http.max_ws_message_bytes,  # larger messages: closed, 1009
        server_header=False,
        timeout_graceful_shutdown=5,
    )


def bind_listener(host: str, port: int, backlog: int = 2048) -> socket.socket:
    """A listening TCP socket on host:port (0: any free port); OSError names the address."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    return sock


def phone_url(host: str, port: int, key: str) -> str:
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        shown = host
    else:
        if addr.is_unspecified:
            shown = "127.0.0.1" if addr.version == 4 else "[::1]"
        else:
            shown = f"[{host}]" if addr.version == 6 else host
    return f"http://{shown}:{port}/phone#key={key}"


class _Drain:
    """The node's reaction to SIGTERM/SIGINT: drain on the first, stop on the second."""

    def __init__(self, server: AppServer, host: CallHost, timeout_s: float) -> None:
        self._server = server
        self._host = host
        self._timeout_s = timeout_s
        self._task: asyncio.Task[None] | None = None
        self.exit_code = 0

    def on_signal(self, sig: signal.Signals) -> None:
        if self._task is None:
            log.info("signal: draining", extra={"signal": sig.name, "timeout_s": self._timeout_s})
            self._host.start_drain()
            self._task = asyncio.get_running_loop().create_task(self._drain(), name="drain")
            return
        log.warning("second signal: stopping now", extra={"signal": sig.name})
        self.exit_code = 1
        self._task.cancel()
        self._server.force_exit = True
        self._server.should_exit = True

    async def _drain(self) -> None:
        try:
            async with asyncio.timeout(self._timeout_s):
                await self._host.wait_idle()
        except TimeoutError:
            log.warning(
                "drain timeout: ending the remaining calls",
                extra={"active_calls": self._host.active_calls()},
            )
        else:
            log.info("drained: no live calls")
        self._server.should_exit = True

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task])


class _Hangup:
    """SIGHUP: one reload task at a time (the reloader serialises them), owned and ended."""

    def __init__(self, reloader: Reloader | None) -> None:
        self._reloader = reloader
        self._tasks: set[asyncio.Task[None]] = set()

    def on_signal(self) -> None:
        if self._reloader is None:
            log.warning("SIGHUP: this node has no configuration source to reload from")
            return
        task = asyncio.get_running_loop().create_task(self._reload(self._reloader))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _reload(reloader: Reloader) -> None:
        try:
            await reloader.reload("SIGHUP")
        except Exception:
            log.exception("reload failed")

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks)


async def serve(
    settings: Settings,
    host: CallHost,
    *,
    webrtc: WebRtcOptions | None = None,
    out: TextIO | None = None,
    load: SettingsSource | None = None,
) -> int:
    """Serve until drained (exit code 0) or stopped by a second signal (1). WebRTC calls are
    answered with `webrtc`, by default the settings' `[webrtc]` section; `load` reads the
    configuration again on SIGHUP and `POST /v1/admin/reload` (None: no reload).

    Raises OSError when the HTTP address cannot be bound."""
    out = out or sys.stdout
    if not settings.http.admin_key:
        text = "no admin key configured (VOICENODE_ADMIN_KEY): no platform admin this run"
        print(console_line(f"voicenode: {text}", __name__, text), file=out)
    clock = MonotonicClock()
    phone = PhoneTokens(settings.http.phone_token_ttl_s)
    app = create_app(settings, host, webrtc=webrtc, clock=clock, phone=phone)
    reloader = None if load is None else Reloader(settings, host, load)
    app.state[RELOAD_STATE] = None if reloader is None else reloader.reload
    config = server_config(app, settings)
    sock = bind_listener(settings.http.host, settings.http.port, config.backlog)
    port = sock.getsockname()[1]
    server = AppServer(config)
    drain = _Drain(server, host, settings.node.drain_timeout_s)
    hangup = _Hangup(reloader)
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT)
    for sig in signals:
        loop.add_signal_handler(sig, drain.on_signal, sig)
    loop.add_signal_handler(signal.SIGHUP, hangup.on_signal)
    log.info("serving", extra={"host": settings.http.host, "port": port})
    link = phone_url(settings.http.host, port, phone.issue(clock.now()))
    minutes = round(settings.http.phone_token_ttl_s / 60)
    text = f"voicenode: call the node at {link} (for {minutes} min)"
    print(console_line(text, __name__, "call the node", url=link, minutes=minutes), file=out)
    out.flush()
    try:
        await server.serve(sockets=[sock])
    finally:
        for sig in (*signals, signal.SIGHUP):
            loop.remove_signal_handler(sig)
        await drain.close()
        await hangup.close()
        sock.close()
    log.info("stopped", extra={"exit_code": drain.exit_code})
    return drain.exit_code


def main_serve(
    settings: Settings,
    host_factory: HostFactory,
    *,
    webrtc: WebRtcOptions | None = None,
    load: SettingsSource | None = None,
) -> int:
    """The process entry for `voicenode serve`: uvloop, the host's lifetime, then `serve`.

    WebRTC calls are answered with `webrtc`, by default the settings' `[webrtc]` section;
    `load` reads the configuration again for a reload."""

    async def run() -> int:
        async with host_factory(settings) as host:
            return await serve(settings, host, webrtc=webrtc, load=load)

    return uvloop.run(run())
