"""Issue 12, item 4: DNS rebinding. A name that answers a public address to the URL check and
127.0.0.1 to the connection must not reach the loopback server — for HTTP tools, webhooks and
LLM endpoints — and the pinned connection keeps the URL's host name for `Host`, TLS SNI and
the certificate check. Errors never name the address a host resolved to. Flow webhooks too."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import socket
import ssl
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from agents.base import AgentContext, TextChunk, UserSaid
from agents.flow.spec import WebhookSpec
from agents.flow.webhook import post_webhook
from agents.llm import LlmAgent
from agents.llm_access import LlmAccess
from agents.spec import AgentSpec, LlmSettings, ToolSpec
from agents.tools import Toolbox, ToolCall
from agents.urlguard import IpAddress, UnsafeUrlError, fetch, guarded_client
from control_api.analytics.sinks import DeliveryError, WebhookSink
from control_api.analytics.tables import OutboxRow
from tests.support.llm_double import LlmDouble, Reply, Route

PUBLIC = "93.184.216.34"
HOST = "rebind.test"


class RebindingResolver:
    """A rebinding DNS: the first answer is public, every later one is 127.0.0.1."""

    def __init__(self, first: str = PUBLIC, then: str = "127.0.0.1") -> None:
        self.answers = [first]
        self.then = then
        self.asked: list[str] = []

    async def resolve(self, host: str, port: int) -> list[IpAddress]:
        self.asked.append(host)
        answer = self.answers.pop(0) if self.answers else self.then
        return [ipaddress.ip_address(answer)]


def rebinding_getaddrinfo(host_name: str) -> Any:
    """The same attack at the system resolver: what every resolution in the process sees."""
    calls = 0
    real = asyncio.get_running_loop().getaddrinfo

    async def getaddrinfo(host: str, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        nonlocal calls
        if host != host_name:
            return await real(host, port, *args, **kwargs)
        calls += 1
        address = PUBLIC if calls == 1 else "127.0.0.1"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, int(port or 0)))]

    return getaddrinfo


class Loopback:
    """A plain HTTP server on 127.0.0.1 that counts what reaches it."""

    def __init__(self) -> None:
        self.requests: list[bytes] = []
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> Loopback:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.requests.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\nconnection: close\r\n\r\nsecret")
        await writer.drain()
        writer.close()


@pytest.fixture
async def loopback() -> AsyncIterator[Loopback]:
    async with Loopback() as server:
        yield server


async def test_a_rebinding_name_does_not_reach_loopback_through_a_tool_fetch(
    loopback: Loopback,
) -> None:
    resolver = RebindingResolver()
    url = f"http://{HOST}:{loopback.port}/internal"
    async with guarded_client(resolver=resolver) as client:
        with pytest.raises(UnsafeUrlError) as refused:
            await fetch(client, "GET", url, resolver=resolver)
    assert resolver.asked == [HOST, HOST]  # checked, then resolved again to connect: refused
    assert loopback.requests == []
    assert "127.0.0.1" not in str(refused.value)


async def test_a_rebinding_system_resolver_does_not_reach_loopback(
    loopback: Loopback, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The node's client for tools and webhooks, with the process's own DNS rebinding."""
    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", rebinding_getaddrinfo(HOST))
    async with guarded_client() as client:
        with pytest.raises(UnsafeUrlError):
            await fetch(client, "GET", f"http://{HOST}:{loopback.port}/internal")
    assert loopback.requests == []


async def test_an_http_tool_refused_by_rebinding_tells_the_model_nothing_internal(
    loopback: Loopback,
) -> None:
    resolver = RebindingResolver(first="127.0.0.1")  # even the first answer is loopback
    tool = ToolSpec(name="lookup", kind="http", method="GET", url=f"http://{HOST}:{loopback.port}/")
    spec = AgentSpec(name="t", kind="llm", llm=LlmSettings(), tools=[tool])
    async with guarded_client(resolver=resolver) as http:
        box = Toolbox(spec, AgentContext(call_id="c", tenant_id="t", http=http))
        outcome = await box.run(ToolCall(id="1", name="lookup", arguments="{}"))
    assert not outcome.result.ok and "127.0.0.1" not in outcome.result.result
    assert loopback.requests == []


def _row() -> OutboxRow:
    return OutboxRow(
        event_id="c1:0", call_id="c1", tenant_id="acme", node="n", seq=0, type="call.started",
        payload='{"type": "call.started"}',
    )  # fmt: skip


async def test_a_webhook_whose_name_rebinds_is_not_delivered_to_loopback(
    loopback: Loopback, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", rebinding_getaddrinfo(HOST))
    async with guarded_client() as http:
        sink = WebhookSink(
            webhook_id="wh_1",
            tenant_id="acme",
            url=f"http://{HOST}:{loopback.port}/hook",
            secret="whsec_x",
            events=(),
            after_outbox_id=0,
            http=http,
            wall=lambda: 1_700_000_000.0,
            timeout_s=5.0,
            allowlist=(),
        )
        with pytest.raises(DeliveryError) as refused:
            await sink.send(_row())
    assert loopback.requests == []
    assert "refused URL" in refused.value.detail and "127.0.0.1" not in refused.value.detail


async def test_a_tenant_llm_base_url_that_rebinds_gets_no_request() -> None:
    async with LlmDouble() as double:
        double.script(Reply(tokens=["never"]))
        settings = LlmSettings(base_url=f"http://{HOST}:{double.port}/v1", fallback_line="Sorry.")
        spec = AgentSpec(name="t", kind="llm", llm=settings)
        access = LlmAccess(api_key="sk-tenant", resolver=RebindingResolver())
        async with httpx.AsyncClient() as http:
            ctx = AgentContext(call_id="c", tenant_id="t", http=http, llm=access)
            agent = LlmAgent(spec, ctx)
            try:
                said = [o async for o in agent.respond([], UserSaid("hi"))]
            finally:
                await agent.aclose()
        client = access.open_client(settings, 5.0)
        try:
            with pytest.raises(openai.APIConnectionError):
                await client.models.list()
        finally:
            await client.close()
    assert [o.text for o in said if isinstance(o, TextChunk)] == ["Sorry."]
    assert double.requests == []


# ---- the pinned connection keeps the host name (Host, SNI, certificate) ----


def _certificate(folder: Path, name: str) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class StaticResolver:
    def __init__(self, addresses: Sequence[str]) -> None:
        self.addresses = [ipaddress.ip_address(a) for a in addresses]

    async def resolve(self, host: str, port: int) -> list[IpAddress]:
        return list(self.addresses)


async def test_the_pinned_connection_keeps_host_sni_and_certificate_name(tmp_path: Path) -> None:
    cert, key = _certificate(tmp_path, HOST)
    server_names: list[str | None] = []
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    context.sni_callback = lambda _sock, name, _ctx: server_names.append(name)
    heads: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        heads.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    try:
        resolver = StaticResolver(["127.0.0.1"])
        trust = ssl.create_default_context(cafile=str(cert))
        async with guarded_client(["127.0.0.1"], resolver=resolver, verify=trust) as client:
            response = await client.get(f"https://{HOST}:{port}/x")
    finally:
        server.close()
        await server.wait_closed()
    assert response.status_code == 200 and response.text == "ok"
    assert server_names == [HOST]
    assert f"Host: {HOST}:{port}".encode() in heads[0]


async def test_an_http_tool_reaches_an_allowlisted_host_through_the_pinned_client() -> None:
    async with LlmDouble() as double:
        double.routes["/hours"] = Route(body=b"nine to five")
        tool = ToolSpec(name="hours", kind="http", method="GET", url=double.url("/hours"))
        spec = AgentSpec(name="t", kind="llm", llm=LlmSettings(), tools=[tool])
        async with guarded_client(["127.0.0.1"]) as http:
            ctx = AgentContext(call_id="c", tenant_id="t", http=http, url_allowlist=("127.0.0.1",))
            outcome = await Toolbox(spec, ctx).run(ToolCall(id="1", name="hours", arguments="{}"))
    assert outcome.result.ok and outcome.result.result == "nine to five"


async def test_a_flow_webhook_whose_name_rebinds_is_not_posted_to_loopback(
    loopback: Loopback, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", rebinding_getaddrinfo(HOST))
    hook = WebhookSpec(url=f"http://{HOST}:{loopback.port}/book")
    async with guarded_client() as http:
        outcome = await post_webhook(http, hook, {"slots": {"name": "Ada"}})
    assert not outcome.ok and "127.0.0.1" not in outcome.detail
    assert loopback.requests == []
