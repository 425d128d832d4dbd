"""Sans-IO checks and edits of WebRTC session descriptions, and the ICE host-address choice.

`check_offer` turns a browser's offer into a specific `SdpError` before any peer connection
exists; `keep_candidates` drops remote candidates a restricted node cannot reach;
`CandidatePolicy` drops those the node must not send to (and caps their number); and
`ice_host_addresses` picks the local addresses aioice gathers host candidates on (by default
every interface but loopback), so a node or a test can keep its media on chosen addresses.
"""

from __future__ import annotations

import contextlib
import contextvars
import ipaddress
from collections.abc import Callable, Iterator, Sequence

import aioice.ice
from aiortc import sdp

from core.errors import TransportError

SUPPORTED_CODECS = ("audio/opus", "audio/PCMU")
LOOPBACK = ("127.0.0.1",)
"""ICE host addresses that keep a call's media on this machine (`ice_host_addresses`)."""


class SdpError(TransportError, ValueError):
    """The offer cannot be answered; the message names the problem."""


def check_offer(text: str) -> None:
    """Raise `SdpError` naming the first problem that makes `text` unanswerable."""
    if not text.strip():
        raise SdpError("the offer SDP is empty")
    if not text.lstrip().startswith("v=0"):
        raise SdpError("the offer SDP must start with 'v=0'")
    try:
        desc = sdp.SessionDescription.parse(text)
    except (ValueError, IndexError, KeyError, TypeError) as exc:
        raise SdpError(f"the offer SDP cannot be parsed: {exc}") from exc
    for m in desc.media:
        if not m.rtp.muxId:
            raise SdpError(f"the offer's m={m.kind} line has no media id (a=mid)")
    mids = [m.rtp.muxId for m in desc.media]
    if len(mids) != len(set(mids)):
        dup = next(mid for mid in mids if mids.count(mid) > 1)
        raise SdpError(f"the offer repeats the media id a=mid:{dup}")
    audio = [m for m in desc.media if m.kind == "audio"]
    if not audio:
        raise SdpError("the offer has no audio m-line (m=audio)")
    media = audio[0]
    offered = [c.mimeType for c in media.rtp.codecs]
    wanted = {c.lower() for c in SUPPORTED_CODECS}
    if not any(c.lower() in wanted for c in offered):
        shown = ", ".join(offered) or "none"
        raise SdpError(f"the offer's audio codecs ({shown}) include neither Opus nor PCMU")
    if media.direction in ("recvonly", "inactive"):
        raise SdpError(f"the offer's audio is {media.direction}; the caller must send audio")
    if media.ice is None or not (media.ice.usernameFragment and media.ice.password):
        raise SdpError("the offer's audio has no ICE credentials (a=ice-ufrag, a=ice-pwd)")
    if media.dtls is None or not media.dtls.fingerprints:
        raise SdpError("the offer's audio has no DTLS fingerprint (a=fingerprint)")


def encoder_format(text: str) -> tuple[int, int] | None:
    """(rate, channels) of the audio encoder a session description sends with: its audio
    m-line's first codec, the one aiortc's sender encodes with (Opus: 48 kHz stereo, PCMU:
    8 kHz mono). None when it has no audio codec."""
    try:
        desc = sdp.SessionDescription.parse(text)
    except (ValueError, IndexError, KeyError, TypeError):
        return None
    for m in desc.media:
        if m.kind == "audio" and m.rtp.codecs:
            codec = m.rtp.codecs[0]
            return codec.clockRate, codec.channels or 1
    return None


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a hostname, e.g. an mDNS `.local` candidate


def keep_candidates(text: str, keep: Callable[[str], bool], limit: int | None = None) -> str:
    """Drop `a=candidate` lines whose connection address fails `keep`, and any past the first
    `limit` kept ones."""
    out: list[str] = []
    kept = 0
    for line in text.splitlines(keepends=True):
        if line.startswith("a=candidate:"):
            fields = line.split()
            if len(fields) < 6 or not keep(fields[4]) or (limit is not None and kept >= limit):
                continue
            kept += 1
        out.append(line)
    return "".join(out)


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class CandidatePolicy:
    """Which remote ICE candidate addresses a node may send connectivity checks to.

    `networks` empty: any public or private unicast address, and mDNS `.local` names (they
    resolve on the local link only). Listed: only addresses inside them. Never: link-local
    (169.254.169.254 is cloud metadata), multicast, unspecified or reserved addresses, other
    host names; loopback only inside a listed network or when `loopback` is set (the node's
    own ICE addresses are loopback)."""

    def __init__(self, networks: Sequence[str] = (), *, loopback: bool = False) -> None:
        self._networks: list[Network] = [ipaddress.ip_network(n, strict=False) for n in networks]
        self._loopback = loopback

    def allows(self, host: str) -> bool:
        try:
            addr = ipaddress.ip_address(host)
        except ValueError:
            return not self._networks and host.lower().endswith(".local")
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        if addr.is_link_local or addr.is_multicast or addr.is_unspecified or addr.is_reserved:
            return False
        if addr.version == 4 and addr.packed[0] == 0:  # 0.0.0.0/8: "this network"
            return False
        if self._networks:
            return any(addr in net for net in self._networks)
        return self._loopback or not addr.is_loopback


_HOST_ADDRESSES: contextvars.ContextVar[tuple[str, ...] | None] = contextvars.ContextVar(
    "voicenode_ice_host_addresses", default=None
)
_original_get_host_addresses = aioice.ice.get_host_addresses


def _get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    chosen = _HOST_ADDRESSES.get()
    if chosen is None:
        return _original_get_host_addresses(use_ipv4=use_ipv4, use_ipv6=use_ipv6)
    return list(chosen)


# aioice looks its host addresses up through this module-level function when gathering; the
# replacement defers to the original unless `ice_host_addresses` chose addresses in this context.
aioice.ice.get_host_addresses = _get_host_addresses


@contextlib.contextmanager
def ice_host_addresses(addresses: Sequence[str] | None) -> Iterator[None]:
    """Within the block (and tasks it starts), ICE gathers host candidates on `addresses` only.

    `None` keeps aioice's default (every interface but loopback).
    """
    token = _HOST_ADDRESSES.set(None if addresses is None else tuple(addresses))
    try:
        yield
    finally:
        _HOST_ADDRESSES.reset(token)
