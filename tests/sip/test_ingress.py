"""SIP ingress (`sip.allowed_sources`): an INVITE from a source outside the list gets 403 from
the real user agent (pjsua2) before any routing or admission; listed sources are routed as
usual. sipp is the caller (from 127.0.0.1)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from tests.support.sipp import run_sipp
from voicenode.sip_listener import sip_listener

from .test_ua import SignalHost, sip_settings, stored

pytestmark = pytest.mark.timeout(120)


def refused_for_source() -> float:
    sample = REGISTRY.get_sample_value("voicenode_calls_refused_total", {"reason": "source"})
    return sample or 0.0


@pytest.fixture
async def host() -> AsyncIterator[SignalHost]:
    async with stored(SignalHost(max_calls=2)) as h:
        yield h


async def test_invite_from_a_source_not_allowed_gets_403(host: SignalHost, tmp_path: Path) -> None:
    before = refused_for_source()
    settings = sip_settings(allowed_sources=["192.0.2.0/24", "10.9.0.0/16"])
    async with sip_listener(settings, host) as ua:  # type: ignore[arg-type]
        assert ua is not None
        result = await run_sipp(
            "uac_refused.xml", ua.port, tmp_path, fill={"STATUS": "403", "HEADER_RE": "403"}
        )
    assert result.returncode == 0, result.explain()
    assert refused_for_source() == before + 1
    assert host.started.empty()  # nothing ran, nothing was admitted
    assert host.active_calls() == 0


async def test_invite_from_an_allowed_source_is_routed(host: SignalHost, tmp_path: Path) -> None:
    settings = sip_settings(allowed_sources=["192.0.2.0/24", "127.0.0.0/8"])
    async with sip_listener(settings, host) as ua:  # type: ignore[arg-type]
        assert ua is not None
        # routed: the unknown number's 404 comes from the number lookup, past the source check
        unknown = await run_sipp(
            "uac_refused.xml",
            ua.port,
            tmp_path / "unknown",
            service="999",
            fill={"STATUS": "404", "HEADER_RE": "404"},
        )
        assert unknown.returncode == 0, unknown.explain()
        options = await run_sipp(
            "uac_options.xml", ua.port, tmp_path / "options", fill={"STATUS": "200"}
        )
        assert options.returncode == 0, options.explain()
