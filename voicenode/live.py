"""The settings a node runs, in one holder its parts read for each new call.

`Live` holds a value that a reload replaces whole (`voicenode.reload`): whoever read it keeps
what it read (a live call its agent, its route), the next reader sees the new value. The node
holds its settings in one (`Node.live`); the listeners' routers find it on the node they are
given (`live_part`), so a reload reaches them without rebuilding any listener. Keys that need
a restart keep their old values in what a reload puts in, so reading through the holder
changes only what may change live.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from config.schema import Settings

__all__ = ["Live", "live_part"]

T = TypeVar("T")


class Live(Generic[T]):
    """One value, replaced whole (`value = new`), never changed in place."""

    __slots__ = ("value",)

    def __init__(self, value: T) -> None:
        self.value = value


def live_part(host: object, part: Callable[[Settings], T], fixed: T) -> Callable[[], T]:
    """A reader of `part` of the settings `host` (the node) holds live in `host.live`; for a
    host that holds none (a test's fake), of `fixed` for good."""
    held = getattr(host, "live", None)
    if isinstance(held, Live):
        return lambda: part(held.value)
    return lambda: fixed
