"""Handing a worker thread's result back to the event loop that asked for it."""

from __future__ import annotations

import asyncio
from typing import TypeVar

T = TypeVar("T")


def _resolve(fut: asyncio.Future[T], value: T | None, exc: BaseException | None) -> None:
    if fut.done():  # cancelled meanwhile (barge-in, hangup)
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(value)  # type: ignore[arg-type]


def deliver(
    loop: asyncio.AbstractEventLoop,
    fut: asyncio.Future[T],
    value: T | None = None,
    exc: BaseException | None = None,
) -> None:
    """Resolve `fut` on its loop from a worker thread. A loop that has closed since the request
    (its call is over) is skipped: the worker must outlive every caller."""
    try:
        loop.call_soon_threadsafe(_resolve, fut, value, exc)
    except RuntimeError:  # "Event loop is closed"
        pass
