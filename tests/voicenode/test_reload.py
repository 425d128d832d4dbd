"""Reloading a node: which settings change live and which need a restart (`split_settings`),
the reload itself against a host with a real store (agent files reconciled, a bad
configuration changing nothing, one warning line for restart keys), `POST /v1/admin/reload`
(platform admin only), and `voicenode agents diff|apply`."""

from __future__ import annotations

import io
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import msgspec
import pytest

from config import ConfigError, load_settings
from config.schema import Settings
from control_api.admin_api import RELOAD_STATE
from control_api.app import create_app
from control_api.store import tenants as tenant_rows
from control_api.store.seed import file_specs
from tests.control_api.fakes import FakeHost, temp_store
from tests.control_api.harness import ADMIN_KEY, auth, serve_app
from voicenode.agents_cli import run_agents
from voicenode.cli import _parser
from voicenode.reload import Reloader, split_settings

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
    new = _with(new, "audiosocket", routes={"0001": "demo/receptionist"})
    new = _with(new, "dialplan", allowed_prefixes=("+1",))
    merged, live, restart = split_settings(old, new)
    assert live == ["dialplan.allowed_prefixes", "node.log_level", "node.max_calls"]
    assert restart == ["audiosocket.routes", "http.port", "node.data_dir"]
    assert (merged.node.log_level, merged.node.max_calls) == ("debug", 3)
    assert merged.dialplan.allowed_prefixes == ("+1",)
    assert (merged.http.port, merged.node.data_dir, merged.audiosocket.routes) == (
        old.http.port,
        old.node.data_dir,
        {},
    )


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
