"""An offer's ICE candidates are filtered before aiortc sees them: only addresses the node may
send connectivity checks to (`CandidatePolicy`, `webrtc.allowed_networks`) and at most
`webrtc.max_candidates` of them. Otherwise an offer could point the node's STUN checks at
cloud metadata, link-local or internal hosts, or at thousands of addresses at once."""

from __future__ import annotations

import re

import numpy as np
import pytest

from media.call import CallInfo, Direction
from media.webrtc import WebRtcCall, WebRtcOptions, answer_offer
from media.webrtc_sdp import CandidatePolicy, keep_candidates
from tests.support.webrtc_peer import LOOPBACK, TestPeer

INFO = CallInfo(call_id="c1", tenant_id="t1", direction=Direction.INBOUND, transport="webrtc")

REFUSED_ALWAYS = [
    "169.254.169.254",  # cloud metadata
    "fe80::1",
    "224.0.0.251",
    "ff02::1",
    "0.0.0.0",
    "0.1.2.3",
    "240.0.0.1",
    "255.255.255.255",
    "::",
    "::ffff:169.254.169.254",
    "metadata.google.internal",  # a host name that is not mDNS
]


@pytest.mark.parametrize("host", REFUSED_ALWAYS)
def test_never_allowed_addresses(host: str) -> None:
    assert not CandidatePolicy().allows(host)
    assert not CandidatePolicy(loopback=True).allows(host)
    assert not CandidatePolicy(["0.0.0.0/0", "::/0"]).allows(host)


def test_default_policy_allows_public_private_and_mdns_but_not_loopback() -> None:
    policy = CandidatePolicy()
    for host in ("8.8.8.8", "192.168.1.20", "10.0.0.5", "2001:db8::5", "1f2e-3d.local"):
        assert policy.allows(host), host
    assert not policy.allows("127.0.0.1") and not policy.allows("::1")
    assert CandidatePolicy(loopback=True).allows("127.0.0.1")


def test_listed_networks_only() -> None:
    policy = CandidatePolicy(["10.20.0.0/16", "127.0.0.1/32"])
    assert policy.allows("10.20.3.4") and policy.allows("127.0.0.1")
    for host in ("10.21.0.1", "8.8.8.8", "127.0.0.2", "abc.local"):
        assert not policy.allows(host), host


def candidate(i: int, host: str, port: int = 40000) -> str:
    return f"a=candidate:{i} 1 udp {2130706431 - i} {host} {port + i} typ host\r\n"


def test_keep_candidates_caps_the_count() -> None:
    sdp = "v=0\r\n" + "".join(candidate(i, "10.0.0.1") for i in range(40)) + "a=mid:0\r\n"
    kept = keep_candidates(sdp, CandidatePolicy().allows, 16)
    assert kept.count("a=candidate:") == 16
    assert kept.endswith("a=mid:0\r\n") and kept.startswith("v=0\r\n")
    assert "a=candidate:15 " in kept and "a=candidate:16 " not in kept


def remote_hosts(call: WebRtcCall) -> list[str]:
    ice = call._pc.getTransceivers()[0].receiver.transport.transport
    return [c.ip for c in ice.getRemoteCandidates()]


def with_extra_candidates(sdp: str, lines: list[str]) -> str:
    """The offer with `lines` after its own last candidate."""
    last = max(m.end() for m in re.finditer(r"a=candidate:[^\r\n]*\r\n", sdp))
    return sdp[:last] + "".join(lines) + sdp[last:]


@pytest.mark.parametrize("networks", [("127.0.0.1/32",), ()])
async def test_offer_candidates_are_filtered_and_capped_before_ice(
    networks: tuple[str, ...],
) -> None:
    """300 extra loopback candidates (and metadata, a private host): with the node's own ICE
    on loopback, only 127.0.0.1 passes a listed 127.0.0.1/32; with no list, loopback passes
    but at most 16 candidates reach ICE. The call still connects on the peer's own."""
    peer = TestPeer(np.zeros(16000, dtype=np.int16))
    options = WebRtcOptions(host_addresses=LOOPBACK, allowed_networks=networks, max_candidates=16)
    try:
        offer = (await peer.offer())["sdp"]
        own = offer.count("a=candidate:")
        assert 0 < own < 16
        junk = [candidate(100 + i, f"127.0.{i // 250}.{2 + i % 250}") for i in range(300)]
        junk += [candidate(999, "169.254.169.254"), candidate(998, "10.0.0.1")]
        call = await answer_offer(with_extra_candidates(offer, junk), INFO, options)
        try:
            await peer.accept(call.answer_sdp)
            await peer.wait_state("connected")  # the peer's own candidates still work
            assert await call.wait_media()
            hosts = remote_hosts(call)
            assert 0 < len(hosts) <= 16
            assert "127.0.0.1" in hosts
            assert "169.254.169.254" not in hosts and "10.0.0.1" not in hosts
            if networks:
                assert set(hosts) == {"127.0.0.1"}
        finally:
            await call.close()
    finally:
        await peer.close()
