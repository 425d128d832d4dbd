"""Who may destroy a pjsua2 object, and when: the rule, and a watch that makes a break loud.

pjsua2 objects are C++ objects with a Python face (SWIG directors). Destroying one at the wrong
moment crashes the process, usually much later and somewhere else, so the node keeps one rule
for every pjsua2 object it creates (`PjCall`, `FramePort`, the accounts):

- **One thread.** The SIP thread (`sip.thread.SipThread`) creates, uses and destroys it. The
  conference bridge's clock thread only runs a port's frame callbacks; the event loop only
  holds keys and posts jobs.
- **Not inside a pjsua2 callback, with one exception.** A callback may create (an incoming
  call's `PjCall`, a call's `FramePort` when its stream comes up); ports and accounts end in
  jobs that run after the callback returned (`UserAgent._retire_ports`). The exception is the
  call itself, as pjsua2 documents: a `PjCall` is let go in its own DISCONNECTED callback
  (freed as it returns), because pjsua gives its call id to the next INVITE right after, and a
  `Call` freed later would clear that new call's link to its object and hang it up.
- **Off the bridge before the last reference.** A `FramePort` leaves the conference bridge by
  an explicit `retire()`: its C++ destructor runs while the Python object is still whole, takes
  the port off the bridge and waits out a frame callback in flight, so the clock thread can
  never call into a half-destroyed object. Only then may the Python object go. Nothing ever
  calls `stopTransmit` on another party's slot: a stream's connections go with the stream, a
  port's with the port.
- **All gone before `libDestroy()`.** Calls are released, ports retired and accounts shut down
  first; `libDestroy()` comes last (it would otherwise delete the C++ halves under Python).

`LIFETIMES` watches the objects: each is `track`ed when made, `released` when it left the
bridge (ports), and checked when it is freed. A free on another thread, a port freed while on
the bridge, or an object still alive when its endpoint stopped is a *violation*: logged at error
level with the object's type and kept in `LIFETIMES.violations` (the test suite fails the test
in which one happened).
"""

from __future__ import annotations

import logging
import threading
import weakref
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass
class _Entry:
    kind: str
    thread: int
    released: bool
    finalizer: weakref.finalize = field(init=False)  # type: ignore[type-arg]


class Lifetimes:
    """The pjsua2 objects alive in this process, and the rule breaks seen (thread-safe)."""

    def __init__(self) -> None:
        self._entries: dict[int, _Entry] = {}
        self._next = 0
        self._lock = threading.Lock()
        self.violations: list[str] = []

    def track(self, obj: object, thread: int, *, on_bridge: bool = False) -> None:
        """Watch `obj`, owned by the SIP thread `thread`; `on_bridge`: it must be `released`
        (leave the conference bridge) before it may be freed."""
        with self._lock:
            self._next += 1
            key = self._next
            entry = _Entry(type(obj).__name__, thread, released=not on_bridge)
            self._entries[key] = entry
        entry.finalizer = weakref.finalize(obj, self._freed, key)
        setattr(obj, "_lifetime_key", key)  # noqa: B010 (SWIG proxies take attributes)

    def released(self, obj: object) -> None:
        """`obj` has left the bridge: freeing it is now safe (on the SIP thread)."""
        key = getattr(obj, "_lifetime_key", None)
        with self._lock:
            entry = self._entries.get(key) if isinstance(key, int) else None
            if entry is not None:
                entry.released = True

    def alive(self, thread: int) -> list[str]:
        """Types of the watched objects of SIP thread `thread` not freed yet."""
        with self._lock:
            return sorted(e.kind for e in self._entries.values() if e.thread == thread)

    def tracked(self) -> int:
        """How many watched objects are alive (any thread)."""
        with self._lock:
            return len(self._entries)

    def endpoint_stopped(self, thread: int) -> None:
        """The endpoint of SIP thread `thread` is destroyed: whatever is still alive broke
        the rule (its C++ half is gone or going)."""
        for kind in self.alive(thread):
            self._violation(f"{kind} still alive after its endpoint stopped")

    def _freed(self, key: int) -> None:
        with self._lock:
            entry = self._entries.pop(key, None)
        if entry is None:
            return
        if not entry.released:
            self._violation(f"{entry.kind} freed while still on the conference bridge")
        if threading.get_ident() != entry.thread:
            name = threading.current_thread().name
            self._violation(f"{entry.kind} freed on thread {name!r}, not the SIP thread")

    def _violation(self, text: str) -> None:
        with self._lock:
            self.violations.append(text)
        log.error("sip: pjsua2 lifetime rule broken", extra={"violation": text})


LIFETIMES = Lifetimes()
"""The process's watch (pjsua2 allows one endpoint per process)."""
