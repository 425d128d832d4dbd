"""The one thread that owns pjsua2.

pjsua2 runs with `threadCnt=0`: no SIP worker threads of its own; this thread polls
`libHandleEvents` and runs every job marshalled to it from asyncio (`call`) in between polls,
so all SIP state is touched by one thread. Callbacks pjsua2 makes during a poll run here too
and hand their results to the event loop with `call_soon_threadsafe`.

What the poll is for: SIP messages on the signalling transports and pjsip's timers (the poll
itself waits no longer than the next timer). Media does not need it: RTP is read by pjmedia's
own worker thread and the conference bridge runs on its clock thread. So the poll may block
for long; what bounds it is how soon a marshalled job starts. With a waker (`set_waker`; one
is installed by itself when the poll is a pjsua2 Endpoint's `libHandleEvents` and the
endpoint has a UDP transport), `submit` wakes a blocked poll by sending the SIP UDP transport
one byte (pjsip ignores datagrams too short to be a SIP message) and an idle poll blocks up to
`WAKE_POLL_MS`; without one it blocks at most `POLL_MS`, the most a job waits to start.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import queue
import socket
import threading
import traceback
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from core.errors import TransportError

log = logging.getLogger(__name__)

T = TypeVar("T")

POLL_MS = 5
"""Without a waker: how long one poll may block, the most a marshalled job waits to start."""
WAKE_POLL_MS = 200
"""With a waker: how long an idle poll may block (a bound in case a wake datagram is lost)."""


class SipThreadError(TransportError, RuntimeError):
    """The SIP thread is not running (not started, stopped, or its start failed)."""


class UdpWaker:
    """Wakes a poll blocked in pjsip's ioqueue by sending its UDP transport one byte.

    pjsip drops UDP datagrams shorter than a SIP message without a log line, so the byte
    only makes `libHandleEvents` return."""

    def __init__(self, host: str, port: int) -> None:
        addr = ipaddress.ip_address(host)
        if addr.is_unspecified:  # bound to every address: loopback is one of them
            addr = ipaddress.ip_address("::1" if addr.version == 6 else "127.0.0.1")
        family = socket.AF_INET6 if addr.version == 6 else socket.AF_INET
        self.address = (str(addr), port)
        self._sock = socket.socket(family, socket.SOCK_DGRAM)
        self._sock.setblocking(False)

    def __call__(self) -> None:
        try:
            self._sock.sendto(b"\0", self.address)
        except OSError:
            pass  # the transport is gone (stopping) or the socket buffer is full: the poll
            # returns by itself within WAKE_POLL_MS

    def close(self) -> None:
        self._sock.close()


def endpoint_waker(poll: Callable[[int], object]) -> UdpWaker | None:
    """A waker for `poll` when it is a pjsua2 Endpoint's `libHandleEvents` and the endpoint
    has a UDP SIP transport; else None. Runs on the SIP thread (it asks the endpoint)."""
    endpoint: Any = getattr(poll, "__self__", None)
    if endpoint is None or not hasattr(endpoint, "transportEnum"):
        return None
    try:
        for tid in endpoint.transportEnum():
            info = endpoint.transportGetInfo(tid)
            if not str(info.typeName).upper().startswith("UDP"):  # UDP or UDP6
                continue
            # The bound address, not `localName`: that is the published one (NAT).
            host, _, port = str(info.localAddress).rpartition(":")
            return UdpWaker(host.strip("[]"), int(port))
    except (ValueError, OSError, RuntimeError) as exc:
        log.info("sip: no poll waker, polling every %d ms", POLL_MS, extra={"error": str(exc)})
    except Exception as exc:  # pjsua2.Error does not derive from the above
        log.info("sip: no poll waker, polling every %d ms", POLL_MS, extra={"error": repr(exc)})
    return None


def release_frames(exc: BaseException) -> None:
    """Drop the local variables of the frames `exc` (and what it chains) went through.

    A job's exception goes to another thread (the awaiting coroutine); its traceback would
    carry the job's locals with it, pjsua2 objects among them, and free them there: pjsua2
    objects must die on the SIP thread (`sip.lifetime`). The line numbers stay."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        item = pending.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        traceback.clear_frames(item.__traceback__)
        pending += [item.__cause__, item.__context__]


class SipThread:
    """Runs `poll(ms)` in a loop on a dedicated thread and executes submitted jobs between polls."""

    def __init__(self, name: str = "sip") -> None:
        self._name = name
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]] | None] = (
            queue.SimpleQueue()
        )
        self._thread: threading.Thread | None = None
        self._poll: Callable[[int], object] | None = None
        self._stopping = False
        self._waker: Callable[[], None] | None = None
        self._blocked = False  # the thread is in (or about to enter) a poll
        self._woken = False  # a wake was sent for the current poll
        self.wakes = 0
        """Wakes sent (a diagnostic)."""

    @property
    def ident(self) -> int | None:
        return self._thread.ident if self._thread is not None else None

    @property
    def ended(self) -> bool:
        """The thread was started and has finished (everything it held is released)."""
        return self._thread is not None and not self._thread.is_alive()

    def on_thread(self) -> bool:
        return threading.get_ident() == self.ident

    def set_waker(self, waker: Callable[[], None] | None) -> None:
        """Use `waker()` (callable from any thread) to end a blocked poll when a job comes;
        idle polls then block up to WAKE_POLL_MS. None: poll every POLL_MS."""
        self._waker = waker

    def start(self, setup: Callable[[], Callable[[int], object]]) -> None:
        """Start the thread; `setup()` runs first on it and returns the poll function.

        Blocks until setup has finished; re-raises what setup raised (the thread then ends)."""
        if self._thread is not None:
            raise SipThreadError("the SIP thread was already started")
        started: Future[None] = Future()
        self._thread = threading.Thread(
            target=self._main, args=(setup, started), name=self._name, daemon=True
        )
        self._thread.start()
        started.result()

    def _main(self, setup: Callable[[], Callable[[int], object]], started: Future[None]) -> None:
        try:
            self._poll = setup()
            if self._waker is None:
                self._waker = endpoint_waker(self._poll)
        except BaseException as exc:
            self._stopping = True
            started.set_exception(exc)
            return
        started.set_result(None)
        poll = self._poll
        jobs = self._jobs
        try:
            while True:
                self._blocked = True
                # A job queued before `_blocked` was set saw no reason to wake us: look.
                ms = 0 if not jobs.empty() else WAKE_POLL_MS if self._waker else POLL_MS
                try:
                    poll(ms)
                except Exception:
                    log.exception("SIP event poll failed")
                self._blocked = False
                self._woken = False
                if not self._run_jobs() or self._stopping:
                    return
        finally:
            # The poll function may hold pjsua2 objects: they must die on this thread.
            self._poll = poll = None  # type: ignore[assignment]
            waker, self._waker = self._waker, None
            close = getattr(waker, "close", None)
            if close is not None:
                close()

    def _run_jobs(self) -> bool:
        jobs = self._jobs
        while not jobs.empty():
            item = jobs.get_nowait()
            if item is None:
                return False
            job, future = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(job())
            except BaseException as exc:
                release_frames(exc)
                future.set_exception(exc)
        return True

    def _wake(self) -> None:
        waker = self._waker
        if waker is not None and self._blocked and not self._woken and not self.on_thread():
            self._woken = True
            self.wakes += 1
            waker()

    def submit(self, job: Callable[[], T]) -> Future[T]:
        """Run `job` on the SIP thread; the future holds its result or exception."""
        if self._thread is None or self._stopping:
            raise SipThreadError("the SIP thread is not running")
        future: Future[T] = Future()
        self._jobs.put((job, future))
        self._wake()
        return future

    async def call(self, job: Callable[[], T]) -> T:
        """Run `job` on the SIP thread and await its result from asyncio."""
        if self.on_thread():
            return job()
        return await asyncio.wrap_future(self.submit(job))

    def stop(self, teardown: Callable[[], object] | None = None, timeout: float = 10.0) -> None:
        """Run `teardown` on the thread, end the loop and join (blocking; idempotent)."""
        thread = self._thread
        if thread is None or not thread.is_alive():
            self._stopping = True
            return
        if not self._stopping:

            def last() -> None:
                try:
                    if teardown is not None:
                        teardown()
                finally:
                    self._stopping = True  # no poll after teardown: pjlib is gone

            try:
                self.submit(last).result(timeout)
            except Exception:
                log.exception("SIP teardown failed")
        self._stopping = True
        self._jobs.put(None)
        self._wake()
        thread.join(timeout)
        if thread.is_alive():
            log.error("the SIP thread did not stop", extra={"timeout_s": timeout})
