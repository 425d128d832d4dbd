"""The SSRF guard: schemes, literal and resolved addresses, allowlists, no redirects."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Any

import httpx
import pytest

from agents.urlguard import UnsafeUrlError, check_url, fetch, is_public_address


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://127.0.0.1:8000/v1",
        "http://localhost/",
        "http://LOCALHOST.:8080/x",
        "http://10.0.0.1/",
        "http://172.16.5.4/",
        "http://192.168.1.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://100.64.0.1/",
        "http://0.0.0.0/",
        "http://224.0.0.1/",
        "http://240.0.0.1/",
        "http://[::1]/",
        "http://[::]/",
        "http://[fe80::1]/",
        "http://[fc00::1]/",
        "http://[ff02::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:169.254.169.254]/",
        "ftp://example.com/file",
        "file:///etc/passwd",
        "gopher://127.0.0.1/",
        "http:///no-host",
        "http://[::1/",
        "http://example.com:99999/",
        "example.com/no-scheme",
    ],
)
async def test_refused(url: str) -> None:
    with pytest.raises(UnsafeUrlError):
        await check_url(url)


@pytest.mark.parametrize(
    "url", ["http://93.184.216.34/", "https://8.8.8.8:8443/x?y=1", "https://[2606:4700::1111]/"]
)
async def test_public_literals_are_allowed(url: str) -> None:
    await check_url(url)


@pytest.mark.parametrize(
    ("url", "allowlist"),
    [
        ("http://127.0.0.1:9000/hook", ["127.0.0.0/8"]),
        ("http://127.0.0.1/", ["127.0.0.1"]),
        ("http://10.1.2.3/", ["10.0.0.0/8"]),
        ("http://[::1]:8080/", ["::1/128"]),
        ("http://[::ffff:10.0.0.5]/", ["10.0.0.0/24"]),
        ("http://localhost:8000/", ["127.0.0.0/8", "::1"]),
        ("http://crm.internal/api", ["crm.internal"]),
        ("http://CRM.Internal./api", ["crm.internal"]),
    ],
)
async def test_allowlisted(url: str, allowlist: list[str]) -> None:
    await check_url(url, allowlist)


async def test_allowlist_is_not_broader_than_its_entries() -> None:
    with pytest.raises(UnsafeUrlError):
        await check_url("http://127.0.0.1/", ["10.0.0.0/8", "example.com"])
    with pytest.raises(UnsafeUrlError):
        await check_url("http://169.254.169.254/", ["169.254.169.0/30"])


async def test_unsafe_url_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        await check_url("http://localhost/")


def _fake_resolver(
    answers: dict[str, list[str]],
) -> Any:
    async def getaddrinfo(host: str, port: int, **kwargs: Any) -> list[Any]:
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "unknown")
        out = []
        for addr in answers[host]:
            family = socket.AF_INET6 if ":" in addr else socket.AF_INET
            sockaddr = (addr, port, 0, 0) if family == socket.AF_INET6 else (addr, port)
            out.append((family, socket.SOCK_STREAM, 6, "", sockaddr))
        return out

    return getaddrinfo


async def test_every_resolved_address_must_be_public(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = {
        "public.example": ["93.184.216.34", "2606:2800:220:1::1"],
        "rebind.example": ["93.184.216.34", "10.0.0.7"],
        "scoped.example": ["fe80::1%eth0"],
    }
    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", _fake_resolver(answers))
    await check_url("https://public.example/x")
    with pytest.raises(UnsafeUrlError, match="non-public"):
        await check_url("https://rebind.example/x")
    with pytest.raises(UnsafeUrlError):
        await check_url("https://scoped.example/x")
    await check_url("https://rebind.example/x", ["10.0.0.0/24"])
    with pytest.raises(UnsafeUrlError, match="does not resolve"):
        await check_url("https://nowhere.example/")


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2606:4700::1111", True),
        ("::ffff:8.8.8.8", True),
        ("127.0.0.1", False),
        ("100.127.255.255", False),
        ("198.18.0.1", False),
        ("::ffff:10.0.0.1", False),
        ("64:ff9b::a9fe:a9fe", False),  # NAT64 of 169.254.169.254
        ("2002:a00:1::1", False),  # 6to4 of 10.0.0.1
    ],
)
def test_is_public_address(address: str, public: bool) -> None:
    assert is_public_address(ipaddress.ip_address(address)) is public


async def test_fetch_does_not_follow_redirects() -> None:
    seen: list[httpx.URL] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        return httpx.Response(302, headers={"location": "http://169.254.169.254/"})

    async with httpx.AsyncClient(
        transport=httpx.MockTransport(handler), follow_redirects=True
    ) as client:
        response = await fetch(client, "GET", "http://93.184.216.34/start")
    assert response.status_code == 302
    assert not response.ok
    assert [str(u) for u in seen] == ["http://93.184.216.34/start"]


async def test_fetch_checks_the_url_first() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError("must not be reached")

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(UnsafeUrlError):
            await fetch(client, "POST", "http://169.254.169.254/latest/meta-data/")
