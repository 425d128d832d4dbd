"""With `sip.port = 0` the kernel picks UDP's port and TCP must bind the same number: when TCP
finds it taken, the pair is picked again instead of the start failing (CI run #5's failure)."""

from __future__ import annotations

from typing import Any

import pjsua2 as pj
import pytest

from config.schema import SipSettings
from sip.endpoint import PORT_PICKS, create_transports


def _error(reason: str) -> pj.Error:
    exc = pj.Error()
    exc.reason = reason
    return exc


class _Info:
    def __init__(self, port: int) -> None:
        self.localName = f"127.0.0.1:{port}"


class _Endpoint:
    """Stands in for pjsua2's Endpoint at the transport calls: UDP gets port 40000 + n; TCP
    fails with `tcp_error` for the first `tcp_failures` tries."""

    def __init__(self, tcp_failures: int, tcp_error: str = "Address already in use") -> None:
        self.tcp_failures = tcp_failures
        self.tcp_error = tcp_error
        self.open: dict[int, tuple[int, int]] = {}
        self.closed: list[int] = []
        self._next = 0

    def transportCreate(self, ttype: int, tc: Any) -> int:  # noqa: N802 (pjsua2's name)
        self._next += 1
        if ttype == pj.PJSIP_TRANSPORT_TCP and self.tcp_failures > 0:
            self.tcp_failures -= 1
            raise _error(self.tcp_error)
        port = tc.port or 40_000 + self._next
        self.open[self._next] = (ttype, port)
        return self._next

    def transportGetInfo(self, tid: int) -> _Info:  # noqa: N802
        return _Info(self.open[tid][1])

    def transportClose(self, tid: int) -> None:  # noqa: N802
        self.closed.append(tid)
        del self.open[tid]


def _settings(port: int = 0) -> SipSettings:
    return SipSettings(enabled=True, host="127.0.0.1", port=port, transports=["udp", "tcp"])


def test_a_taken_tcp_port_makes_the_pair_be_picked_again() -> None:
    ep = _Endpoint(tcp_failures=2)
    port = create_transports(ep, _settings())
    assert ep.closed == [1, 3]  # the two UDP transports whose TCP twin failed
    assert sorted(ep.open.values()) == [
        (pj.PJSIP_TRANSPORT_UDP, port),
        (pj.PJSIP_TRANSPORT_TCP, port),
    ]


def test_picking_gives_up_after_its_tries() -> None:
    ep = _Endpoint(tcp_failures=PORT_PICKS)
    with pytest.raises(pj.Error):
        create_transports(ep, _settings())
    assert len(ep.closed) == PORT_PICKS - 1  # the last try's UDP is left to the failed start


def test_other_errors_and_configured_ports_are_not_retried() -> None:
    ep = _Endpoint(tcp_failures=1, tcp_error="Permission denied")
    with pytest.raises(pj.Error):
        create_transports(ep, _settings())
    assert ep.closed == []
    ep = _Endpoint(tcp_failures=1)
    with pytest.raises(pj.Error):
        create_transports(ep, _settings(port=5070))  # an operator's port: taken is taken
    assert ep.closed == []
