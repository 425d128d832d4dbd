"""Reloading a node: which settings change live and which need a restart (`split_settings`),
the reload itself against a host with a real store (agent files reconciled, a bad
configuration changing nothing, one warning line for restart keys), the live keys reaching a
real node's next calls (SIP networks, AudioSocket routes, the webhook URL allowlist),
`POST /v1/admin/reload` (platform admin only), and `voicenode agents diff|apply`."""

from __future__ import annotations

import datetime
import io
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import msgspec
import pytest

from agents.urlguard import guarded_client
from config import ConfigError, load_settings
from config.schema import Settings
from control_api.admin_api import RELOAD_STATE
from control_api.analytics.events import AnalyticsEvent, CallTrack
from control_api.analytics.outbox import write_events
from control_api.analytics.relay import Relay
from control_api.analytics.tables import WebhookRow
from control_api.app import create_app
from control_api.store import Store
from control_api.store import tenants as tenant_rows
from control_api.store.seed import file_specs
from media.audiosocket import ErrorCode
from media.audiosocket_server import CallRefused as AudioSocketRefused
from media.clock import VirtualClock
from sip.message import parse_request
from sip.ua import IncomingInvite, Reject
from tests.support.analytics import NODE, T0, Receiver, WallClock, call_info, opening
from tests.support.harness import ADMIN_KEY, auth, serve_app
from tests.support.host import FakeHost, temp_store
from voicenode.agents_cli import run_agents
from voicenode.audiosocket_listener import NodeAudioSocketRouter
from voicenode.cli import _parser
from voicenode.node import Node
from voicenode.reload import Reloader, split_settings
from voicenode.sip_listener import SipRouter

RECEPTIONIST = file_specs()["receptionist"]
GREETING = "Thanks for calling Bright Smile Dental."


def _with(s: Settings, section: str, **values: object) -> Settings:
    return msgspec.structs.replace(
        s, **{section: msgspec.structs.replace(getattr(s, section), **values)}
    )


def test_live_keys_change_and_restart_keys_keep_their_old_value() -> None:
    old = load_settings(env={})
    new = _with(old, "node", log_level="debug", max_calls=3, data_dir="elsewhere")
    new = _with(new, "http", port=9999)
    new = _with(new, "audiosocket", routes={"0001": "demo/receptionist"}, port=4001)
    new = _with(new, "dialplan", allowed_prefixes=("+1",))
    new = _with(new, "sip", trusted_proxies=["10.0.0.0/8"], tenant_header="X-Other")
    merged, live, restart = split_settings(old, new)
    assert live == [
        "audiosocket.routes",
        "dialplan.allowed_prefixes",
        "node.log_level",
        "node.max_calls",
        "sip.trusted_proxies",
    ]
    assert restart == ["audiosocket.port", "http.port", "node.data_dir", "sip.tenant_header"]
    assert (merged.node.log_level, merged.node.max_calls) == ("debug", 3)
    assert merged.dialplan.allowed_prefixes == ("+1",)
    assert merged.audiosocket.routes == {"0001": "demo/receptionist"}
    assert merged.sip.trusted_proxies == ["10.0.0.0/8"]
    assert (merged.http.port, merged.node.data_dir, merged.audiosocket.port) == (
        old.http.port,
        old.node.data_dir,
        old.audiosocket.port,
    )
    assert merged.sip.tenant_header == old.sip.tenant_header


@pytest.fixture
async def host() -> AsyncIterator[FakeHost]:
    async with temp_store() as store:
        h = FakeHost()
        await h.attach_store(store)
        yield h


def _base(folder: Path) -> Settings:
    s = _with(load_settings(env={}), "agents", dir=str(folder))
    return _with(s, "http", host="127.0.0.1", port=0, admin_key=ADMIN_KEY)


async def test_a_reload_reconciles_the_files_and_applies_live_settings(
    host: FakeHost, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    start = _base(tmp_path)
    edited = _with(_with(start, "node", tenant_share=1.0), "sip", port=5099)
    reloader = Reloader(start, host, lambda: edited)
    (tmp_path / "r.toml").write_text(RECEPTIONIST.replace(GREETING, "Version two."))
    caplog.set_level(logging.INFO)
    report = await reloader.reload("test")
    assert report.ok and report.live == ["node.tenant_share"] and report.restart == ["sip.port"]
    (change,) = report.agents
    assert (change.agent, change.action, change.version, change.new_version) == (
        "receptionist",
        "update",
        1,
        2,
    )
    assert host.quotas.tenant_cap == start.node.max_calls
    assert reloader.settings.sip.port == start.sip.port
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.restart == ["sip.port"]  # type: ignore[attr-defined]
    ref = await host.find_agent("demo", "receptionist")
    assert ref is not None and ref.spec.greeting == "Version two."


async def test_logging_settings_change_the_log_setup(
    host: FakeHost, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, str, bool]] = []
    monkeypatch.setattr(
        "voicenode.reload.setup_logging",
        lambda level, fmt, *, redact_pii: calls.append((level, fmt, redact_pii)),
    )
    start = _base(tmp_path)
    louder = _with(start, "node", log_level="debug", log_format="text")
    report = await Reloader(start, host, lambda: louder).reload("test")
    assert report.live == ["node.log_format", "node.log_level"] and report.restart == []
    assert calls == [("debug", "text", True)]
    await Reloader(start, host, lambda: start).reload("test")  # nothing changed: left alone
    assert len(calls) == 1


async def test_a_bad_configuration_changes_nothing(
    host: FakeHost, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    start = _base(tmp_path)

    def broken() -> Settings:
        raise ConfigError("node.toml: node.max_calls: Expected `int`, got `str`")

    (tmp_path / "r.toml").write_text(RECEPTIONIST.replace(GREETING, "Never applied."))
    report = await Reloader(start, host, broken).reload("test")
    assert not report.ok and "node.max_calls" in report.error
    gone = _with(start, "agents", dir=str(tmp_path / "missing"))
    report = await Reloader(start, host, lambda: gone).reload("test")
    assert not report.ok and "agents.dir" in report.error
    ref = await host.find_agent("demo", "receptionist")
    assert ref is not None and ref.version == 1
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR] == [
        "reload refused, nothing changed"
    ] * 2


# ---- the live keys reach a real node's next calls ----


@asynccontextmanager
async def _node(settings: Settings) -> AsyncIterator[Node]:
    """A real node on a temporary store (no models: calls are routed, not run)."""
    async with temp_store() as store, guarded_client(settings.analytics.url_allowlist) as http:
        node = Node(settings, store, http)
        try:
            yield node
        finally:
            await node.close()


def _invite(source: str, tenant: str | None = None) -> IncomingInvite:
    header = f"X-Voicenode-Tenant: {tenant}\r\n" if tenant else ""
    text = f"INVITE sip:1000@node SIP/2.0\r\nVia: SIP/2.0/UDP {source}\r\n{header}\r\n"
    return IncomingInvite(request=parse_request(text), source=source)


async def test_sip_networks_and_audiosocket_routes_change_for_the_next_call(
    tmp_path: Path,
) -> None:
    start = _with(_base(tmp_path), "sip", trusted_proxies=["10.0.0.0/8"])
    start = _with(start, "sip", allowed_sources=["10.0.0.0/8", "192.0.2.0/24"])
    edited = _with(start, "sip", trusted_proxies=["192.0.2.0/24"], allowed_sources=["192.0.2.0/24"])
    edited = _with(edited, "audiosocket", routes={"0000-0001": "demo/sales"}, default_agent="")
    routed, other = uuid.UUID(int=1 << 96), uuid.UUID(int=2 << 96)  # 00000001-..., 00000002-...
    async with _node(start) as node:
        sip = SipRouter(start.sip, node)  # what the listeners built at start; 1000 is demo's
        audiosocket = NodeAudioSocketRouter(start, node)
        assert (sip.allowed("10.1.2.3"), sip.trusted("192.0.2.9")) == (True, False)
        mine = await sip.target(_invite("192.0.2.9", "acme"))  # untrusted: the header ignored
        assert mine is not None and mine[0] == "demo"
        assert audiosocket.target(routed) == audiosocket.target(other) == ("demo", "receptionist")

        report = await Reloader(start, node, lambda: edited).reload("test")
        assert report.restart == [] and report.live == [
            "audiosocket.default_agent",
            "audiosocket.routes",
            "sip.allowed_sources",
            "sip.trusted_proxies",
        ]
        assert await sip.route(_invite("10.1.2.3")) == Reject(403, "Forbidden")
        assert sip.trusted("192.0.2.9") and not sip.trusted("10.1.2.3")
        assert await sip.target(_invite("192.0.2.9", "acme")) is None  # trusted now: not acme's
        assert audiosocket.target(routed) == ("demo", "sales")
        assert audiosocket.target(other) is None  # no default agent any more
        with pytest.raises(AudioSocketRefused) as refused:
            await audiosocket.route(other)
        assert refused.value.code == ErrorCode.UNKNOWN_CALL


async def _call_and_webhook(store: Store, call_id: str, url: str) -> None:
    """A call's first events in the outbox and a webhook of its tenant at `url`."""
    track = CallTrack(call_info(call_id), agent="receptionist", node=NODE)
    events: list[AnalyticsEvent] = [track.started(WallClock()())]
    events += [e for e in (track.feed(ev, WallClock()()) for ev in opening()) if e is not None]
    async with store.session() as session:
        await write_events(session, events, NODE)
        session.add(
            WebhookRow(
                id="wh_reload",
                tenant_id="demo",
                url=url,
                events=[],
                secret="whsec_test",
                after_outbox_id=0,
                created_at=T0,
            )
        )


async def test_webhook_deliveries_follow_the_reloaded_url_allowlist(tmp_path: Path) -> None:
    start = _base(tmp_path)  # no allowlist: a webhook on 127.0.0.1 is refused
    edited = _with(start, "analytics", url_allowlist=("127.0.0.1",))
    clock = VirtualClock()
    async with _node(start) as node, Receiver() as receiver:
        await _call_and_webhook(node.store, "c1", receiver.url())
        agents_before = node.tenant_urls()
        relay = Relay(
            start.analytics,
            store=node.store,
            node=NODE,
            clock=clock,
            wall=lambda: datetime.datetime.now(datetime.UTC),
            http=agents_before[1],
            urls=node.tenant_urls,  # how open_node wires it
        )
        due = await relay.pass_once()
        assert receiver.requests == [] and due is not None  # refused, to be retried

        report = await Reloader(start, node, lambda: edited).reload("test")
        assert report.live == ["analytics.url_allowlist"]
        allowlist, client = node.tenant_urls()
        assert allowlist == ("127.0.0.1",) and client is not agents_before[1]
        assert not agents_before[1].is_closed  # calls already running keep theirs
        await clock.advance(due - clock.now())
        assert await relay.pass_once() is None
        assert [r.headers["x-voicenode-event-id"] for r in receiver.requests] == [
            "c1:0",
            "c1:1",
            "c1:2",
        ]
    assert client.is_closed  # the node closed the client the reload gave it


async def test_the_reload_route_is_for_the_platform_admin(host: FakeHost, tmp_path: Path) -> None:
    settings = _base(tmp_path)
    async with host.store.session() as session:
        _, key = await tenant_rows.create_key(session, "demo", "admin")
    reloader = Reloader(settings, host, lambda: settings)
    async with serve_app(host, settings) as url, httpx.AsyncClient(base_url=url) as http:
        assert (await http.post("/v1/admin/reload", headers=auth())).status_code == 409
    # the app the node serves carries its reload
    app = create_app(settings, host)
    app.state[RELOAD_STATE] = reloader.reload
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://node") as http:
        assert (await http.post("/v1/admin/reload")).status_code == 401
        assert (await http.post("/v1/admin/reload", headers=auth(key))).status_code == 403
        response = await http.post("/v1/admin/reload", headers=auth())
        assert response.status_code == 200, response.text
        assert response.json()["ok"] is True


def test_agents_diff_then_apply_then_agree(tmp_path: Path) -> None:
    folder = tmp_path / "agents"
    folder.mkdir()
    (folder / "sales.toml").write_text(RECEPTIONIST.replace('"receptionist"', '"sales"', 1))
    settings = _with(load_settings(env={}), "node", data_dir=str(tmp_path / "data"))

    def run(*argv: str) -> tuple[int, str]:
        out = io.StringIO()
        args = _parser().parse_args(["agents", *argv, "--dir", str(folder)])
        return run_agents(settings, args, out), out.getvalue()

    code, text = run("diff")
    lines = text.splitlines()
    assert code == 0 and [line.split(" from ")[0] for line in lines] == [
        "+ receptionist: new agent",  # an empty store: seeded with every file agent
        "+ sales: new agent",
    ], text
    assert run("diff")[1] == text  # diff changed nothing
    assert run("apply")[0] == 0
    assert run("diff") == (0, "agent files and store agree\n")
    (folder / "bad.toml").write_text('name = "bad"\nkind = "nope"\n')
    code, text = run("diff")
    assert code == 2 and text.startswith("! bad: refused:") and "kind" in text
