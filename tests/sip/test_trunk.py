"""Outbound calls and registration through `[sip.trunk]`, against sipp playing the trunk.

sipp challenges the node's INVITE (401 or 407) and REGISTER (401) and checks the digest the
node answers with: sipp's own `verifyauth` for `Authorization`, and the test (RFC 2617, from
sipp's message log) for `Proxy-Authorization`, which `verifyauth` does not read. Wrong
credentials: the trunk answers 403, `POST /v1/calls` answers 502 naming the status, and no
log line (nor pjsua2's console output) carries the password."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import msgspec
import pytest

from config.schema import DialPlanSettings, Settings, SipTrunkSettings
from media.call import Direction
from sip.ua import UserAgent
from tests.support.harness import Node, auth, node_settings, serve_node
from tests.support.host import FakeHost
from tests.support.ports import free_port
from tests.support.sipp import SipMessage, SippResult, node_rtp_ports, run_sipp
from voicenode.sip_listener import sip_listener

pytestmark = pytest.mark.timeout(90)

USER = "vn-trunk"
PASSWORD = "s3cret-Pa55word"
REALM = "trunk.voicenode.test"


def trunk_settings(trunk_port: int, password: str = PASSWORD, **trunk: object) -> Settings:
    s = node_settings()
    sip = msgspec.structs.replace(
        s.sip,
        port=0,
        **node_rtp_ports(),
        trunk=msgspec.structs.replace(
            s.sip.trunk,
            uri=f"sip:127.0.0.1:{trunk_port}",
            **{"username": USER, "password": password, "realm": REALM, **trunk},
        ),
    )
    return msgspec.structs.replace(
        s, sip=sip, dialplan=DialPlanSettings(allowed_prefixes=("+1555",))
    )


@asynccontextmanager
async def api_node(settings: Settings) -> AsyncIterator[tuple[Node, UserAgent]]:
    host = FakeHost(max_calls=2)
    async with serve_node(host, settings) as node, sip_listener(settings, host) as ua:  # type: ignore[arg-type]
        assert ua is not None
        yield node, ua


class LogWatch(logging.Handler):
    """Every record logged while attached; `wait(match, n)` waits (in the loop) for the n-th
    record whose message is `match`, from any thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self._loop = loop
        self._changed = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self._loop.call_soon_threadsafe(self._changed.set)

    def matching(self, message: str) -> list[logging.LogRecord]:
        return [r for r in self.records if r.getMessage() == message]

    async def wait(self, message: str, count: int = 1, timeout_s: float = 15) -> None:
        async with asyncio.timeout(timeout_s):
            while len(self.matching(message)) < count:
                self._changed.clear()
                await self._changed.wait()

    def everything(self) -> str:
        """Every record's message and attributes (extras included), as text."""
        return "\n".join(f"{r.getMessage()} {vars(r)!r}" for r in self.records)


@pytest.fixture
async def logs() -> AsyncIterator[LogWatch]:
    watch = LogWatch(asyncio.get_running_loop())
    root = logging.getLogger()
    level = root.level
    root.addHandler(watch)
    root.setLevel(logging.INFO)
    try:
        yield watch
    finally:
        root.removeHandler(watch)
        root.setLevel(level)


def trunk(
    tmp: Path, port: int, fill: dict[str, str], timeout_s: float = 20
) -> asyncio.Task[SippResult]:
    return asyncio.create_task(
        run_sipp("uas_auth.xml", 1, tmp, fill={"REALM": REALM, **fill}, timeout_s=timeout_s,
                 extra=["-p", str(port)])
    )  # fmt: skip


VERIFY_AUTHORIZATION = (
    f'<verifyauth assign_to="authvalid" username="{USER}" password="{PASSWORD}"/>'
)
SEEN_PROXY_AUTHORIZATION = (
    '<ereg regexp="Digest .*" search_in="hdr" header="Proxy-Authorization:" '
    'check_it="true" assign_to="authvalid"/>'
)


def digest_params(header: str) -> dict[str, str]:
    assert header.startswith("Digest "), header
    return {k: v.strip('"') for k, v in re.findall(r'(\w+)=("[^"]*"|[^,\s]+)', header[7:])}


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def digest_ok(header: str, method: str, password: str) -> bool:
    """RFC 2617 (qop=auth, MD5): does `header`'s response prove `password`?"""
    p = digest_params(header)
    ha1 = md5(f"{p['username']}:{p['realm']}:{password}")
    ha2 = md5(f"{method}:{p['uri']}")
    return p["response"] == md5(f"{ha1}:{p['nonce']}:{p['nc']}:{p['cnonce']}:{p['qop']}:{ha2}")


def invites(result: SippResult) -> list[SipMessage]:
    return result.received("INVITE ")


async def test_post_calls_through_a_trunk_that_challenges_401(tmp_path: Path) -> None:
    port = free_port()
    async with api_node(trunk_settings(port)) as (node, ua):
        uas = trunk(tmp_path, port, {"STATUS": "401", "CHALLENGE": "WWW-Authenticate",
                                     "VERIFY": VERIFY_AUTHORIZATION})  # fmt: skip
        placed = await node.http.post(
            "/v1/calls", json={"agent": "receptionist", "to": "+15551234"}, headers=auth()
        )
        assert placed.status_code == 201, placed.text
        info = await asyncio.wait_for(node.host.started.get(), 10)
        assert info.direction == Direction.OUTBOUND
        assert info.to_uri == f"sip:+15551234@127.0.0.1:{port}"
        hung = await node.http.post(f"/v1/calls/{info.call_id}/hangup", headers=auth())
        assert hung.status_code == 204
        await asyncio.wait_for(node.host.finished.get(), 5)
        result = await uas
        assert result.returncode == 0, result.explain()
        assert await ua.call_count() == 0
    first, second = invites(result)
    assert first.header("Authorization") is None
    assert first.start_line.startswith(f"INVITE sip:+15551234@127.0.0.1:{port} ")
    credentials = second.header("Authorization")
    assert credentials is not None
    params = digest_params(credentials)
    assert (params["username"], params["realm"], params["qop"]) == (USER, REALM, "auth")
    assert PASSWORD not in second.text
    assert result.sent("SIP/2.0 200 OK") and not result.sent("SIP/2.0 403")


async def test_a_407_proxy_challenge_is_answered_with_proxy_authorization(
    tmp_path: Path,
) -> None:
    port = free_port()
    async with api_node(trunk_settings(port)) as (node, _):
        uas = trunk(tmp_path, port, {"STATUS": "407", "CHALLENGE": "Proxy-Authenticate",
                                     "VERIFY": SEEN_PROXY_AUTHORIZATION})  # fmt: skip
        dialer = node.host.dialers["sip"]
        await dialer.dial(call_id="t407", tenant_id="demo", agent="receptionist", to="2000")
        info = await asyncio.wait_for(node.host.started.get(), 10)
        assert info.call_id == "t407"
        await node.http.post("/v1/calls/t407/hangup", headers=auth())
        await asyncio.wait_for(node.host.finished.get(), 5)
        result = await uas
        assert result.returncode == 0, result.explain()
    _, second = invites(result)
    credentials = second.header("Proxy-Authorization")
    assert credentials is not None and second.header("Authorization") is None
    assert digest_params(credentials)["realm"] == REALM
    assert digest_ok(credentials, "INVITE", PASSWORD)
    assert not digest_ok(credentials, "INVITE", PASSWORD + "x")


async def test_a_wrong_trunk_password_fails_the_call_with_a_clear_error(
    tmp_path: Path, logs: LogWatch, capfd: pytest.CaptureFixture[str]
) -> None:
    wrong = "not-the-Pa55word"
    port = free_port()
    async with api_node(trunk_settings(port, password=wrong)) as (node, ua):
        uas = trunk(tmp_path, port, {"STATUS": "401", "CHALLENGE": "WWW-Authenticate",
                                     "VERIFY": VERIFY_AUTHORIZATION})  # fmt: skip
        placed = await node.http.post(
            "/v1/calls", json={"agent": "receptionist", "to": "+15551234"}, headers=auth()
        )
        assert placed.status_code == 502, placed.text
        detail = placed.json()["detail"]
        # a fixed outcome for the API; the status and the hint are the operator's, in the log
        assert detail == "the call did not connect: the call was refused", detail
        assert wrong not in placed.text
        result = await uas
        assert result.returncode == 0, result.explain()
        assert result.sent("SIP/2.0 403") and not result.sent("SIP/2.0 200")
        assert node.host.started.empty()
        assert node.host.active_calls() == 0
        assert await ua.call_count() == 0
    (refused,) = logs.matching("outbound sip call refused")
    assert (refused.status, refused.levelno) == (403, logging.WARNING)  # type: ignore[attr-defined]
    assert any("sip.trunk.username" in r.getMessage() for r in logs.records)
    out, err = capfd.readouterr()
    for text in (logs.everything(), out, err):
        assert wrong not in text


def challenger(tmp: Path, port: int, realm: str) -> asyncio.Task[SippResult]:
    """A server that challenges the INVITE with `realm` and expects no second INVITE."""
    header = f'WWW-Authenticate: Digest realm="{realm}", nonce="n0nce", algorithm=MD5, qop="auth"'
    fill = {"STATUS": "401", "REASON": "Unauthorized", "HEADERS": header}
    return asyncio.create_task(
        run_sipp("uas_refuse.xml", 1, tmp, fill=fill, timeout_s=20, extra=["-p", str(port)])
    )


async def test_trunk_credentials_answer_only_the_trunks_realm(tmp_path: Path) -> None:
    """With the default realm (the trunk's host), a challenge for any other realm gets no
    digest: the trunk's password is never offered to a server that merely asks for it."""
    assert SipTrunkSettings().realm == ""
    port = free_port()
    async with api_node(trunk_settings(port, realm=SipTrunkSettings().realm)) as (node, ua):
        sipp = challenger(tmp_path, port, realm="evil.example")
        placed = await node.http.post(
            "/v1/calls", json={"agent": "receptionist", "to": "+15551234"}, headers=auth()
        )
        assert placed.status_code == 502, placed.text
        assert "evil" not in placed.text and "401" not in placed.text
        result = await sipp
        assert result.returncode == 0, result.explain()
        assert node.host.active_calls() == 0 and await ua.call_count() == 0
    (invite,) = invites(result)  # no retry with credentials
    assert invite.header("Authorization") is None


async def test_an_empty_realm_answers_the_trunks_host(tmp_path: Path) -> None:
    port = free_port()
    async with api_node(trunk_settings(port, realm="")) as (node, _):
        uas = asyncio.create_task(
            run_sipp("uas_auth.xml", 1, tmp_path, timeout_s=20, extra=["-p", str(port)],
                     fill={"REALM": "127.0.0.1", "STATUS": "401",
                           "CHALLENGE": "WWW-Authenticate", "VERIFY": VERIFY_AUTHORIZATION})
        )  # fmt: skip
        placed = await node.http.post(
            "/v1/calls", json={"agent": "receptionist", "to": "+15551234"}, headers=auth()
        )
        assert placed.status_code == 201, placed.text
        info = await asyncio.wait_for(node.host.started.get(), 10)
        await node.http.post(f"/v1/calls/{info.call_id}/hangup", headers=auth())
        await asyncio.wait_for(node.host.finished.get(), 5)
        result = await uas
        assert result.returncode == 0, result.explain()
    _, second = invites(result)
    credentials = second.header("Authorization")
    assert credentials is not None and digest_params(credentials)["realm"] == "127.0.0.1"


def test_a_wildcard_realm_is_refused() -> None:
    with pytest.raises(ValueError, match="any server that challenges"):
        SipTrunkSettings(uri="sip:trunk.example.com", username="u", realm="*")


def registrar(
    tmp: Path, port: int, expires_s: int, password: str = PASSWORD
) -> asyncio.Task[SippResult]:
    fill = {
        "REALM": REALM, "USER": USER, "PASSWORD": password, "EXPIRES": str(expires_s),
        "REFRESH_TIMEOUT_MS": "15000", "UNREGISTER_TIMEOUT_MS": "20000",
    }  # fmt: skip
    return asyncio.create_task(
        run_sipp("uas_registrar.xml", 1, tmp, fill=fill, timeout_s=30, extra=["-p", str(port)])
    )


async def test_the_node_registers_refreshes_and_unregisters_on_stop(
    tmp_path: Path, logs: LogWatch
) -> None:
    port = free_port()
    sipp = registrar(tmp_path, port, expires_s=7)
    async with api_node(trunk_settings(port, register=True)):
        # The registrar grants 7 s: pjsua refreshes it 5 s before it runs out.
        await logs.wait("sip trunk registered", count=2, timeout_s=20)
    result = await sipp
    assert result.returncode == 0, result.explain()
    registers = result.received("REGISTER ")
    assert len(registers) == 6, [m.start_line for m in registers]
    # Register, refresh, unregister: each challenged, then retried with valid credentials.
    for challenged, retried in zip(registers[::2], registers[1::2], strict=True):
        assert challenged.header("Authorization") is None
        credentials = retried.header("Authorization")
        assert credentials is not None and digest_params(credentials)["username"] == USER
        assert digest_ok(credentials, "REGISTER", PASSWORD)
    expires = [m.header("Expires") for m in registers[1::2]]
    assert expires == ["300", "300", "0"]  # register_expires_s asked; 0 removes the binding
    assert [r.expires_s for r in logs.matching("sip trunk registered")] == [7, 7]  # type: ignore[attr-defined]
    assert not result.sent("SIP/2.0 403")


async def test_a_wrong_registration_password_is_logged_without_the_password(
    tmp_path: Path, logs: LogWatch, capfd: pytest.CaptureFixture[str]
) -> None:
    wrong = "wr0ng-Registrar-pw"
    port = free_port()
    sipp = registrar(tmp_path, port, expires_s=60)
    async with api_node(trunk_settings(port, password=wrong, register=True)):
        await logs.wait("sip trunk registration failed")
    result = await sipp
    assert result.returncode == 0, result.explain()
    assert result.sent("SIP/2.0 403") and not result.sent("SIP/2.0 200")
    (failed,) = logs.matching("sip trunk registration failed")
    assert failed.status == 403  # type: ignore[attr-defined]
    assert not logs.matching("sip trunk registered")
    out, err = capfd.readouterr()
    for text in (logs.everything(), out, err):
        assert wrong not in text
