"""A UDP socket for one call's RTP that stamps every datagram with the kernel's receive time.

On Linux the socket asks for `SO_TIMESTAMPNS`: each datagram comes with the time the kernel
took it off the network (CLOCK_REALTIME, ns), which is turned into `time.monotonic()` terms with
the two clocks' offset read at that moment (to a few microseconds). So the arrival
time does not depend on when the event loop got round to reading the socket. Where the kernel
gives no timestamp, the time of the read is used.
"""

from __future__ import annotations

import asyncio
import logging
import math
import socket
import struct
import sys
import time
from collections.abc import Callable
from typing import Final

log = logging.getLogger(__name__)

SO_TIMESTAMPNS: Final = getattr(socket, "SO_TIMESTAMPNS", 35 if sys.platform == "linux" else 0)
"""Linux's SO_TIMESTAMPNS (= SCM_TIMESTAMPNS), which Python's socket module does not name."""
_TIMESPEC: Final = struct.Struct("@qq")
_MAX_DATAGRAM: Final = 2048
_MAX_PER_READ: Final = 64
_OFFSET_TRIES: Final = 5
_OFFSET_SPREAD_S: Final = 20e-6

OnDatagram = Callable[[float, bytes, tuple[str, int]], None]
"""(arrival on the monotonic clock, datagram, source address)."""


class RtpSocket:
    """A non-blocking UDP socket bound to `host` (a free port) read by the running loop."""

    def __init__(self, host: str, on_datagram: OnDatagram) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_DGRAM)
        self._sock.setblocking(False)
        self.kernel_stamps = False
        try:
            self._sock.bind((host, 0))
            if SO_TIMESTAMPNS:
                try:
                    self._sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
                    self.kernel_stamps = True
                except OSError:
                    log.info("no kernel receive timestamps: arrival is the read time")
        except BaseException:
            self._sock.close()
            raise
        self.address: tuple[str, int] = self._sock.getsockname()[:2]
        self._on_datagram = on_datagram
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._sock.fileno(), self._read)
        self._ancillary = socket.CMSG_SPACE(_TIMESPEC.size)

    def fileno(self) -> int:
        return self._sock.fileno()

    def sendto(self, data: bytes, address: tuple[str, int]) -> None:
        try:
            self._sock.sendto(data, address)
        except (BlockingIOError, InterruptedError):
            log.info("rtp send buffer full: a packet was dropped")
        except OSError as exc:  # e.g. ICMP unreachable reported on a later send
            log.info("rtp send failed", extra={"error": str(exc)})

    def close(self) -> None:
        if self._sock.fileno() >= 0:
            self._loop.remove_reader(self._sock.fileno())
            self._sock.close()

    def _read(self) -> None:
        for _ in range(_MAX_PER_READ):
            try:
                data, ancdata, _flags, source = self._sock.recvmsg(_MAX_DATAGRAM, self._ancillary)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.info("rtp receive failed", extra={"error": str(exc)})
                return
            self._on_datagram(_arrival(ancdata), data, source[:2])


def _arrival(ancdata: list[tuple[int, int, bytes]]) -> float:
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(payload) >= _TIMESPEC.size:
            seconds, nanos = _TIMESPEC.unpack_from(payload)
            return int(seconds) + int(nanos) * 1e-9 - _realtime_offset()
    return time.monotonic()


def _realtime_offset() -> float:
    """`time.time() - time.monotonic()`, from two readings close enough together (a thread
    preempted between them would shift every arrival by the time it lost)."""
    best = math.inf, 0.0
    for _ in range(_OFFSET_TRIES):
        before = time.monotonic()
        real = time.time()
        after = time.monotonic()
        spread = after - before
        if spread < best[0]:
            best = spread, real - (before + after) / 2
        if spread < _OFFSET_SPREAD_S:
            break
    return best[1]
