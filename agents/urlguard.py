"""SSRF guard for URLs that tenant-configured tools and webhooks fetch.

`check_url` refuses anything but http(s) URLs whose host resolves only to public addresses,
unless the host name or the resolved address is in the allowlist (host names, IPs or CIDRs).
`fetch` is how tool calls make the request: the URL is checked first and redirects are never
followed (a redirect could point anywhere, including the cloud metadata address).

Known limit: the address is resolved here and again by the HTTP client (DNS rebinding could
flip it in between). Pinning the checked address would need a custom transport; the usual
deployment also blocks private egress at the network level.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import socket
from collections.abc import Mapping, Sequence
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_SHARED_ADDRESS_SPACE = ipaddress.IPv4Network("100.64.0.0/10")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")

DEFAULT_MAX_BYTES = 16_384
"""How much of a response body `fetch` reads (the rest is dropped, `truncated` is set)."""


class UnsafeUrlError(ValueError):
    """The URL is not http(s), has no host, or reaches a non-public address."""


def is_public_address(addr: IpAddress) -> bool:
    """True when `addr` is a globally routable unicast address (IPv4 embedded in IPv6 too)."""
    if isinstance(addr, ipaddress.IPv6Address):
        embedded = addr.ipv4_mapped or addr.sixtofour
        if embedded is None and addr in _NAT64:
            embedded = ipaddress.IPv4Address(int(addr) & 0xFFFF_FFFF)
        if embedded is None and addr.teredo is not None:
            embedded = addr.teredo[1]
        if embedded is not None and not is_public_address(embedded):
            return False
        if addr.ipv4_mapped is not None:
            return True  # judged by the IPv4 address it carries
    if (
        addr.is_loopback
        or addr.is_private
        or addr.is_link_local
        or addr.is_multicast
        or addr.is_unspecified
        or addr.is_reserved
        or not addr.is_global
    ):
        return False
    return not (isinstance(addr, ipaddress.IPv4Address) and addr in _SHARED_ADDRESS_SPACE)


def _parse_allowlist(allowlist: Sequence[str]) -> tuple[set[str], list[IpNetwork]]:
    hosts: set[str] = set()
    networks: list[IpNetwork] = []
    for entry in allowlist:
        item = entry.strip()
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item.strip("[]"), strict=False))
        except ValueError:
            hosts.add(_normalise_host(item))
    return hosts, networks


def _normalise_host(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


def _in_networks(addr: IpAddress, networks: Sequence[IpNetwork]) -> bool:
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        if _in_networks(addr.ipv4_mapped, networks):
            return True
    return any(addr.version == net.version and addr in net for net in networks)


async def check_url(url: str, allowlist: Sequence[str] = ()) -> None:
    """Raise `UnsafeUrlError` unless `url` is http(s) and every address its host resolves to is
    public or allow-listed (or the host name itself is allow-listed)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port
    except ValueError as exc:
        raise UnsafeUrlError(f"malformed URL: {exc}") from exc
    if parts.scheme not in ("http", "https"):
        raise UnsafeUrlError(f"scheme {parts.scheme!r} is not allowed (http or https only)")
    if not host:
        raise UnsafeUrlError("URL has no host")
    host = _normalise_host(host)
    allowed_hosts, allowed_networks = _parse_allowlist(allowlist)
    if host in allowed_hosts:
        return
    if port is None:
        port = 443 if parts.scheme == "https" else 80
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise UnsafeUrlError(f"host {host!r} does not resolve") from exc
    if not infos:
        raise UnsafeUrlError(f"host {host!r} does not resolve")
    for _family, _type, _proto, _canon, sockaddr in infos:
        raw = str(sockaddr[0]).split("%", 1)[0]  # drop an IPv6 scope id
        try:
            addr = ipaddress.ip_address(raw)
        except ValueError as exc:
            raise UnsafeUrlError(f"host {host!r} resolved to an unusable address") from exc
        if _in_networks(addr, allowed_networks):
            continue
        if not is_public_address(addr):
            raise UnsafeUrlError(f"host {host!r} resolves to non-public address {addr}")


@dataclasses.dataclass(frozen=True, slots=True)
class FetchedResponse:
    status_code: int
    text: str
    """The body, decoded leniently, at most `max_bytes` of it."""
    truncated: bool

    @property
    def ok(self) -> bool:
        return 200 <= self.status_code < 300


async def fetch(
    client: httpx.AsyncClient,
    method: Literal["GET", "POST"],
    url: str,
    *,
    allowlist: Sequence[str] = (),
    params: Mapping[str, str] | None = None,
    json: Any = None,
    timeout_s: float = 5.0,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> FetchedResponse:
    """Check `url`, then make one request without following redirects and read at most
    `max_bytes` of the body. Raises `UnsafeUrlError` or `httpx.HTTPError`."""
    await check_url(url, allowlist)
    body = bytearray()
    truncated = False
    async with client.stream(
        method,
        url,
        params=params,
        json=json,
        timeout=timeout_s,
        follow_redirects=False,
    ) as response:
        async for chunk in response.aiter_bytes():
            room = max_bytes - len(body)
            if len(chunk) > room:
                body.extend(chunk[:room])
                truncated = True
                break
            body.extend(chunk)
        encoding = response.encoding or "utf-8"
        status = response.status_code
    try:
        text = body.decode(encoding, errors="replace")
    except LookupError:
        text = body.decode("utf-8", errors="replace")
    return FetchedResponse(status_code=status, text=text, truncated=truncated)
