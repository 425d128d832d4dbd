"""The SIP thread's loop with a fake poll: jobs run on the thread, a waker ends a blocked
poll when a job comes (so an idle poll may block long), and the waker found for a pjsua2
endpoint sends its UDP transport one byte.

The fake poll blocks until it is woken (whatever timeout it is given) and records the
timeouts: a job that needed a wake and got none would hang the test (bounded by the
futures' timeouts), never pass by luck."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from types import SimpleNamespace

import pytest

from sip.thread import (
    POLL_MS,
    WAKE_POLL_MS,
    SipThread,
    SipThreadError,
    UdpWaker,
    endpoint_waker,
)


class FakePoll:
    """`libHandleEvents` as seen by the thread: blocks until woken, records each timeout."""

    def __init__(self, block: bool = True) -> None:
        self.block = block
        self.timeouts: list[int] = []
        self._woken = threading.Event()

    def __call__(self, ms: int) -> int:
        self.timeouts.append(ms)
        if ms and self.block:
            self._woken.wait(30)
        self._woken.clear()
        return 0

    def wake(self) -> None:
        self._woken.set()


@pytest.fixture
def sip_thread() -> Iterator[SipThread]:
    thread = SipThread("test-sip")
    yield thread
    thread.stop(timeout=5)


def start(thread: SipThread, poll: FakePoll, waker: Callable[[], None] | None) -> None:
    thread.set_waker(waker)
    thread.start(lambda: poll)


def test_jobs_run_on_the_thread_and_a_blocked_poll_is_woken(sip_thread: SipThread) -> None:
    poll = FakePoll()
    start(sip_thread, poll, poll.wake)
    for n in range(20):

        def job(n: int = n) -> tuple[int, bool]:
            return n, sip_thread.on_thread()

        assert sip_thread.submit(job).result(5) == (n, True)
    assert WAKE_POLL_MS in poll.timeouts  # an idle poll may block long
    assert 1 <= sip_thread.wakes <= 20


def test_a_job_queued_before_the_poll_starts_is_run_without_blocking() -> None:
    poll = FakePoll()
    thread = SipThread("test-sip")
    thread.set_waker(lambda: None)  # a waker that wakes nothing: only the loop's own look
    done: list[object] = []

    def setup() -> FakePoll:
        # On the thread, before its loop: no wake is sent, as for a job that a pjsua2
        # callback queues during a poll.
        done.append(thread.submit(lambda: "ran"))
        return poll

    thread.start(setup)
    try:
        assert done[0].result(5) == "ran"  # type: ignore[attr-defined]
        assert poll.timeouts[0] == 0
    finally:
        poll.block = False
        poll.wake()
        thread.stop(timeout=5)


def test_without_a_waker_the_poll_is_short(sip_thread: SipThread) -> None:
    poll = FakePoll(block=False)
    start(sip_thread, poll, None)
    assert sip_thread.submit(lambda: 42).result(5) == 42
    assert set(poll.timeouts) <= {0, POLL_MS}
    assert sip_thread.wakes == 0


def test_a_job_submitted_on_the_thread_does_not_wake_it(sip_thread: SipThread) -> None:
    poll = FakePoll()
    woken: list[int] = []

    def waker() -> None:
        woken.append(1)
        poll.wake()

    start(sip_thread, poll, waker)

    def outer() -> int:
        inner = sip_thread.submit(lambda: 7)  # as pjsua2 callbacks do during a poll
        assert not inner.done()
        return 1

    wakes_before = len(woken)
    assert sip_thread.submit(outer).result(5) == 1
    assert len(woken) == wakes_before + 1  # the outer job's wake only


async def test_call_awaits_the_result_and_the_exception(sip_thread: SipThread) -> None:
    poll = FakePoll()
    start(sip_thread, poll, poll.wake)
    assert await sip_thread.call(lambda: "ok") == "ok"

    def fail() -> None:
        raise ValueError("pjsua2 said no")

    with pytest.raises(ValueError, match="said no"):
        await sip_thread.call(fail)


def test_stop_runs_the_teardown_on_the_thread_then_refuses_jobs() -> None:
    poll = FakePoll()
    thread = SipThread("test-sip")
    start(thread, poll, poll.wake)
    seen: list[bool] = []
    thread.stop(lambda: seen.append(thread.on_thread()), timeout=5)
    assert seen == [True]
    with pytest.raises(SipThreadError):
        thread.submit(lambda: None)
    thread.stop()  # idempotent


def test_a_failed_setup_is_raised_and_the_thread_ends() -> None:
    thread = SipThread("test-sip")

    def setup() -> FakePoll:
        raise OSError("port in use")

    with pytest.raises(OSError, match="port in use"):
        thread.start(setup)
    with pytest.raises(SipThreadError):
        thread.submit(lambda: None)


# -- wakers ----------------------------------------------------------------------------


def test_udp_waker_sends_one_byte_to_the_transport() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as transport:
        transport.bind(("127.0.0.1", 0))
        transport.settimeout(5)
        waker = UdpWaker("0.0.0.0", transport.getsockname()[1])  # bound to all: loopback
        try:
            waker()
            data, _ = transport.recvfrom(64)
        finally:
            waker.close()
    assert data == b"\0"
    waker()  # closed: ignored, never raised into the caller


class FakeEndpoint:
    """The part of `pjsua2.Endpoint` the waker looks at."""

    def __init__(self, transports: list[tuple[str, str]]) -> None:
        self._transports = transports

    def transportEnum(self) -> list[int]:  # noqa: N802
        return list(range(len(self._transports)))

    def transportGetInfo(self, tid: int) -> SimpleNamespace:  # noqa: N802
        kind, address = self._transports[tid]
        return SimpleNamespace(typeName=kind, localAddress=address, localName="203.0.113.5:5060")

    def libHandleEvents(self, ms: int) -> int:  # noqa: N802
        return 0


def test_endpoint_waker_finds_the_udp_transport_by_its_bound_address() -> None:
    # localName is the published address (sip.public_address behind NAT): never woken there.
    endpoint = FakeEndpoint([("TCP", "127.0.0.1:5060"), ("UDP", "127.0.0.1:5062")])
    waker = endpoint_waker(endpoint.libHandleEvents)
    assert waker is not None
    try:
        assert waker.address == ("127.0.0.1", 5062)
    finally:
        waker.close()
    ipv6 = endpoint_waker(FakeEndpoint([("UDP6", "[::1]:5070")]).libHandleEvents)
    assert ipv6 is not None
    try:
        assert ipv6.address == ("::1", 5070)
    finally:
        ipv6.close()


def test_no_waker_without_a_udp_transport_or_an_endpoint() -> None:
    assert endpoint_waker(FakeEndpoint([("TCP", "127.0.0.1:5060")]).libHandleEvents) is None
    assert endpoint_waker(FakePoll()) is None


def test_the_thread_finds_its_waker_from_the_poll() -> None:
    thread = SipThread("test-sip")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as transport:
        transport.bind(("127.0.0.1", 0))
        transport.settimeout(5)
        endpoint = FakeEndpoint([("UDP", f"127.0.0.1:{transport.getsockname()[1]}")])

        def handle(self: FakeEndpoint, ms: int) -> int:
            if ms:  # block until a datagram arrives, as pjsip's select would
                transport.recvfrom(64)
            return 0

        # A bound method of the endpoint, as `ep.libHandleEvents` is.
        thread.start(lambda: handle.__get__(endpoint))
        try:
            assert thread.submit(lambda: "done").result(5) == "done"
            assert thread.wakes >= 1
        finally:
            thread.stop(timeout=5)
