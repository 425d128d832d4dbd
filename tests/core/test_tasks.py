"""`core.tasks.OwnedTasks`: named tasks kept until done, failures logged, closed with a bound.

Every wait here is on an event or a task, bounded by `asyncio.timeout`; none sleeps."""

from __future__ import annotations

import asyncio
import logging

import pytest

from core.tasks import OwnedTasks

BOUND_S = 5.0


async def _forever(started: asyncio.Event, stopped: list[str], name: str) -> None:
    started.set()
    try:
        await asyncio.Event().wait()
    finally:
        stopped.append(name)


async def test_spawn_names_keeps_and_forgets() -> None:
    tasks = OwnedTasks("call-1")
    go = asyncio.Event()

    async def work() -> int:
        await go.wait()
        return 7

    task = tasks.spawn(work(), "inbound")
    assert task.get_name() == "inbound:call-1"
    assert len(tasks) == 1 and task in tasks.members
    go.set()
    async with asyncio.timeout(BOUND_S):
        assert await task == 7
    assert len(tasks) == 0
    assert OwnedTasks().spawn(work(), "plain").get_name() == "plain"


async def test_a_failed_task_is_logged_and_reported(caplog: pytest.LogCaptureFixture) -> None:
    failures: list[tuple[str, BaseException]] = []
    tasks = OwnedTasks(
        "call-2",
        failed="call task failed",
        extra={"call_id": "call-2"},
        on_failure=lambda task, exc: failures.append((task.get_name(), exc)),
    )

    async def boom() -> None:
        raise ValueError("bad frame")

    with caplog.at_level(logging.ERROR, logger="core.tasks"):
        task = tasks.spawn(boom(), "signals")
        async with asyncio.timeout(BOUND_S):
            await asyncio.wait([task])
    assert [(name, str(exc)) for name, exc in failures] == [("signals:call-2", "bad frame")]
    [record] = [r for r in caplog.records if r.message == "call task failed"]
    assert record.__dict__["task"] == "signals:call-2"
    assert record.__dict__["call_id"] == "call-2"
    assert record.exc_info is not None and record.exc_info[0] is ValueError
    assert len(tasks) == 0


async def test_the_owners_log_is_used(caplog: pytest.LogCaptureFixture) -> None:
    mine = logging.getLogger("tests.core.owner")
    tasks = OwnedTasks(log=mine)

    async def boom() -> None:
        raise RuntimeError("x")

    with caplog.at_level(logging.ERROR, logger="tests.core.owner"):
        async with asyncio.timeout(BOUND_S):
            await asyncio.wait([tasks.spawn(boom(), "t")])
    assert [r.name for r in caplog.records if r.message == "owned task failed"] == [mine.name]


async def test_cancelled_is_not_a_failure(caplog: pytest.LogCaptureFixture) -> None:
    failures: list[BaseException] = []
    tasks = OwnedTasks(on_failure=lambda _t, exc: failures.append(exc))
    started, stopped = asyncio.Event(), list[str]()
    with caplog.at_level(logging.ERROR, logger="core.tasks"):
        tasks.spawn(_forever(started, stopped, "a"), "a")
        async with asyncio.timeout(BOUND_S):
            await started.wait()
            assert await tasks.aclose() is True
    assert stopped == ["a"] and failures == [] and len(tasks) == 0
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_aclose_cancels_and_awaits_every_task() -> None:
    tasks = OwnedTasks()
    stopped: list[str] = []
    events = [asyncio.Event() for _ in range(3)]
    for i, started in enumerate(events):
        tasks.spawn(_forever(started, stopped, f"t{i}"), f"t{i}")
    async with asyncio.timeout(BOUND_S):
        for started in events:
            await started.wait()
        assert await tasks.aclose() is True
    assert sorted(stopped) == ["t0", "t1", "t2"]
    assert len(tasks) == 0


async def test_a_task_may_close_its_owner_from_inside() -> None:
    tasks = OwnedTasks()
    started, stopped = asyncio.Event(), list[str]()
    tasks.spawn(_forever(started, stopped, "other"), "other")

    async def closer() -> str:
        await started.wait()
        await tasks.aclose()  # cancels and awaits the other one, not itself
        return "closed"

    closing = tasks.spawn(closer(), "closer")
    async with asyncio.timeout(BOUND_S):
        assert await closing == "closed"
    assert stopped == ["other"]


async def test_cancel_first_then_wait() -> None:
    """As a WebRTC call closes: cancel, close the connection, then await the tasks; a task
    started in between is awaited too (not cancelled)."""
    tasks = OwnedTasks()
    started, stopped = asyncio.Event(), list[str]()
    reader = tasks.spawn(_forever(started, stopped, "reader"), "reader")
    async with asyncio.timeout(BOUND_S):
        await started.wait()
    tasks.cancel_all()
    late_go = asyncio.Event()

    async def late() -> None:
        await late_go.wait()
        stopped.append("late")

    tasks.spawn(late(), "late")
    waiting = asyncio.ensure_future(tasks.wait())
    async with asyncio.timeout(BOUND_S):
        await asyncio.wait([reader])
        assert reader.cancelled() and not waiting.done()  # `late` still waits for its event
        late_go.set()
        assert await waiting is True
    assert stopped == ["reader", "late"]


async def test_wait_is_bounded(caplog: pytest.LogCaptureFixture) -> None:
    tasks = OwnedTasks("n1")
    go = asyncio.Event()

    async def stuck() -> None:
        await go.wait()

    task = tasks.spawn(stuck(), "stuck")
    with caplog.at_level(logging.WARNING, logger="core.tasks"):
        # `stuck` waits on an event nobody sets yet: it cannot be done when the bound ends
        assert await tasks.wait(timeout_s=0.01) is False
    [record] = [r for r in caplog.records if r.message == "owned tasks still running"]
    assert record.__dict__["tasks"] == ["stuck:n1"]
    assert not task.done()
    go.set()
    async with asyncio.timeout(BOUND_S):
        assert await tasks.wait(timeout_s=BOUND_S) is True
    assert await OwnedTasks().wait(timeout_s=0) is True


async def test_a_task_that_ignores_cancel_is_left_after_the_bound() -> None:
    tasks = OwnedTasks()
    started, release = asyncio.Event(), asyncio.Event()

    async def stubborn() -> None:
        started.set()
        while True:
            try:
                await release.wait()
                return
            except asyncio.CancelledError:
                continue  # refuses to stop until released

    task = tasks.spawn(stubborn(), "stubborn")
    async with asyncio.timeout(BOUND_S):
        await started.wait()
    assert await tasks.aclose(timeout_s=0.01) is False
    assert not task.done()
    release.set()
    async with asyncio.timeout(BOUND_S):
        await task
    assert len(tasks) == 0


async def test_a_task_added_to_members_is_closed_with_the_rest() -> None:
    """Code that creates its own tasks (the STT stream's partial decodes) adds them here."""
    tasks = OwnedTasks()
    started, stopped = asyncio.Event(), list[str]()
    own = asyncio.get_running_loop().create_task(_forever(started, stopped, "own"))
    tasks.members.add(own)
    own.add_done_callback(tasks.members.discard)
    async with asyncio.timeout(BOUND_S):
        await started.wait()
        assert await tasks.aclose() is True
    assert stopped == ["own"] and own.cancelled() and len(tasks) == 0
