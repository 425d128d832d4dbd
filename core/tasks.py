"""Tasks an object owns: `OwnedTasks`.

A call, the node's live calls and the analytics recorder each start tasks that must not
outlive them. `OwnedTasks` keeps them (asyncio itself keeps only weak references), names them,
logs one that dies with an exception, forgets each once it is done, and cancels and awaits what
is left when its owner closes. A task that closes its own owner may do so from inside: the
calling task is never cancelled or awaited by `cancel_all`, `wait` or `aclose`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, TypeVar

T = TypeVar("T")

_log = logging.getLogger(__name__)

Log = logging.Logger | logging.LoggerAdapter[logging.Logger]


class OwnedTasks:
    """Named tasks one owner keeps until they end; `aclose()` cancels and awaits them.

    `owner` is added to every task's name (`"inbound:<call id>"`). A task that ends with an
    exception is logged on `log` (`failed` is the message; the task's name is in `task`,
    with `extra`) and then passed to `on_failure`. A cancelled task is not a failure."""

    def __init__(
        self,
        owner: str = "",
        *,
        log: Log = _log,
        failed: str = "owned task failed",
        extra: Mapping[str, object] | None = None,
        on_failure: Callable[[asyncio.Task[Any], BaseException], None] | None = None,
    ) -> None:
        self._suffix = f":{owner}" if owner else ""
        self._log = log
        self._failed = failed
        self._extra = dict(extra or {})
        self._on_failure = on_failure
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, T], name: str) -> asyncio.Task[T]:
        """Start `coro` as a task named `name` (and the owner), kept until it is done."""
        task = asyncio.get_running_loop().create_task(coro, name=f"{name}{self._suffix}")
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    @property
    def members(self) -> set[asyncio.Task[Any]]:
        """The set itself, for code that creates its own tasks: a task added here (and
        discarded when it is done) is cancelled and awaited with the others, but its failure
        is not logged. Prefer `spawn`."""
        return self._tasks

    def __len__(self) -> int:
        return len(self._tasks)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled() or (exc := task.exception()) is None:
            return
        self._log.error(self._failed, exc_info=exc, extra={**self._extra, "task": task.get_name()})
        if self._on_failure is not None:
            self._on_failure(task, exc)

    def _others(self) -> list[asyncio.Task[Any]]:
        current = asyncio.current_task()
        return [t for t in self._tasks if t is not current and not t.done()]

    def cancel_all(self) -> None:
        """Ask every task but the calling one to stop (`wait` awaits them)."""
        for task in self._others():
            task.cancel()

    async def wait(self, timeout_s: float | None = None) -> bool:
        """Wait until every task but the calling one is done, tasks started meanwhile too;
        at most `timeout_s` (None: no bound). False when some were still running then (they
        are logged and left running)."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout_s is None else loop.time() + timeout_s
        while pending := self._others():
            left = None if deadline is None else max(0.0, deadline - loop.time())
            _done, late = await asyncio.wait(pending, timeout=left)
            if late:
                self._log.warning(
                    "owned tasks still running",
                    extra={**self._extra, "tasks": sorted(t.get_name() for t in late)},
                )
                return False
        return True

    async def aclose(self, timeout_s: float | None = None) -> bool:
        """Cancel every task but the calling one and wait for them (`wait`)."""
        self.cancel_all()
        return await self.wait(timeout_s)
