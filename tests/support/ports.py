"""Free ports on 127.0.0.1 for the programs a test starts (sipp, baresip, Kamailio, Redis, ...).

Every port handed out is remembered for the test process: a port is only reserved by binding it,
and the programs under test bind theirs late (RTP at call time), so without this two helpers
could hand the same free port to two programs in one test.
"""

from __future__ import annotations

import socket

_HANDED_OUT: set[int] = set()
"""Every port `free_port`, `free_udp_tcp_port` and `free_port_run` gave this test process."""


def _fresh(port: int, count: int = 1) -> bool:
    return not _HANDED_OUT.intersection(range(port, port + count))


def _kernel_port(kind: int = socket.SOCK_DGRAM) -> int:
    """A port the kernel picks as free on 127.0.0.1 (released again at once)."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    """A port free on 127.0.0.1 now, and never handed out before in this process."""
    for _ in range(200):
        port = _kernel_port(kind)
        if _fresh(port):
            _HANDED_OUT.add(port)
            return port
    raise RuntimeError("no fresh free port on 127.0.0.1")


def free_udp_tcp_port() -> int:
    """A port free on 127.0.0.1 for both UDP and TCP now (a SIP listener binds both), and never
    handed out before in this process."""
    for _ in range(200):
        port = _kernel_port()
        if not _fresh(port):
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            try:
                tcp.bind(("127.0.0.1", port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port
    raise RuntimeError("no fresh UDP+TCP port on 127.0.0.1")


def free_port_run(count: int) -> int:
    """An even UDP port `p` with `p` .. `p + count - 1` all free on 127.0.0.1 (and fresh)."""
    for _ in range(200):
        port = _kernel_port()
        if port % 2 or port + count > 65_535 or not _fresh(port, count):
            continue
        socks: list[socket.socket] = []
        try:
            for other in range(port, port + count):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(sock)
                sock.bind(("127.0.0.1", other))
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
        _HANDED_OUT.update(range(port, port + count))
        return port
    raise RuntimeError(f"no {count} consecutive free UDP ports on 127.0.0.1")


def udp_port_bound(port: int) -> bool:
    """Whether some process holds UDP `port` on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False
