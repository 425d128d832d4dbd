"""The baresip helper picks new ports when one it was given is taken by the time baresip binds
it (checked free, then bound a moment later: another program can take it in between)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.support import baresip as baresip_module
from tests.support.baresip import baresip
from tests.support.ports import free_udp_tcp_port


async def test_a_port_taken_before_baresip_binds_it_is_picked_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    taken = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    ports = iter([int(taken.getsockname()[1])])
    monkeypatch.setattr(
        baresip_module, "free_udp_tcp_port", lambda: next(ports, None) or free_udp_tcp_port()
    )
    try:
        async with baresip(tmp_path / "baresip") as peer:
            assert peer.sip_port != taken.getsockname()[1]
            assert b"baresip is ready." in peer.output
    finally:
        taken.close()
