"""Agent files as the source of truth: the pure plan (`agent_files.diff`), reading a folder
(each file validated alone), and the reconcile against a real SQLite store — new versions noted
"file", API edits overwritten or kept, refused files, removed files, pinned versions."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest

from config import ConfigError, load_settings
from config.schema import Settings
from control_api.agent_files import AgentFile, FileRefused, StoredAgent, diff, read_files
from control_api.store import Store
from control_api.store import agents as agent_rows
from control_api.store.directory import Directory
from control_api.store.file_agents import reconcile
from control_api.store.seed import file_specs, node_store
from tests.support.host import temp_store

RECEPTIONIST = file_specs()["receptionist"]
GREETING = 'greeting = "Thanks for calling Bright Smile Dental.'


def spec(name: str, greeting: str = "") -> str:
    """The receptionist's spec under another name, its greeting optionally replaced."""
    text = RECEPTIONIST.replace('name = "receptionist"', f'name = "{name}"', 1)
    assert text.count("greeting = ") >= 1
    if greeting:
        start = text.index("greeting = ")
        end = text.index("\n", start)
        text = text[:start] + f"greeting = {greeting!r}".replace("'", '"') + text[end:]
    return text


def file(name: str, greeting: str = "") -> AgentFile:
    return AgentFile(name=name, path=f"/agents/{name}.toml", text=spec(name, greeting))


def stored(name: str, version: int, text: str, **kw: object) -> StoredAgent:
    return StoredAgent(name=name, version=version, spec=text, **kw)  # type: ignore[arg-type]


# ---- the plan ------------------------------------------------------------------------------


def test_a_new_file_is_created_and_an_unchanged_one_does_nothing() -> None:
    a = file("sales")
    same = stored("sales", 1, a.text, file_version=1, file_spec=a.text)
    assert [s.action for s in diff([a], [], []).steps] == ["create"]
    assert [s.action for s in diff([a], [], [same]).steps] == ["unchanged"]
    # a comment is not a change: the parsed spec is compared
    commented = msgspec.structs.replace(a, text="# reviewed\n" + a.text)
    assert [s.action for s in diff([commented], [], [same]).steps] == ["unchanged"]


def test_a_changed_file_is_a_new_version_naming_the_changed_fields() -> None:
    old, new = file("sales"), file("sales", "Hello from version two.")
    agent = stored("sales", 3, old.text, file_version=3, file_spec=old.text)
    (step,) = diff([new], [], [agent]).steps
    assert (step.action, step.version, step.overwrites) == ("update", 3, None)
    assert step.fields == ("greeting",)


def test_an_api_change_is_overwritten_by_the_file_or_kept_with_keep_api() -> None:
    base, api = file("sales"), spec("sales", "Changed through the API.")
    new = file("sales", "Changed in the file.")
    agent = stored("sales", 2, api, file_version=1, file_spec=base.text)
    (step,) = diff([new], [], [agent]).steps
    assert (step.action, step.overwrites, step.overwritten_fields) == ("update", 2, ("greeting",))
    (kept,) = diff([new], [], [agent], "keep-api").steps
    assert (kept.action, kept.version) == ("kept-api", 2)
    # the file unchanged since its last version: the API's version stays, nothing to do
    assert [s.action for s in diff([base], [], [agent]).steps] == ["unchanged"]
    # an agent the API made under a name a file now defines, and a deleted one: conflicts too
    (made,) = diff([new], [], [stored("sales", 1, api)], "keep-api").steps
    assert made.action == "kept-api"
    gone = stored("sales", 1, base.text, deleted=True, file_version=1, file_spec=base.text)
    (revived,) = diff([new], [], [gone]).steps
    assert (revived.action, revived.overwrites) == ("update", 1)


def test_a_refused_file_keeps_the_version_and_a_removed_file_is_reported() -> None:
    a = file("sales")
    bad = FileRefused(path="/agents/sales.toml", agent="sales", error="greeting: bad")
    other = stored("other", 4, spec("other"), file_version=4, file_spec=spec("other"))
    api_only = stored("mine", 1, spec("mine"))
    plan = diff([], [bad], [stored("sales", 2, a.text, file_version=2, file_spec=a.text), other])
    by = {s.agent: s for s in plan.steps}
    assert (by["sales"].action, by["sales"].version, by["sales"].error) == (
        "refused",
        2,
        "greeting: bad",
    )
    assert (by["other"].action, by["other"].version) == ("removed", 4)
    assert diff([], [], [api_only]).steps == ()  # never a file agent: not "removed"


# ---- reading the files ---------------------------------------------------------------------


def test_each_file_is_validated_alone_and_the_folder_wins_over_embedded(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text(spec("sales"))
    (tmp_path / "b.toml").write_text(spec("broken").replace("greeting = ", "greetin = ", 1))
    (tmp_path / "c.toml").write_text(spec("sales"))
    (tmp_path / "d.toml").write_text(spec("receptionist", "Our own receptionist."))
    found, refused = read_files(str(tmp_path))
    assert {f.name: Path(f.path).name for f in found} == {
        "receptionist": "d.toml",
        "sales": "a.toml",
    }
    errors = {Path(r.path).name: (r.agent, r.error) for r in refused}
    assert errors["b.toml"][0] == "broken" and "greetin" in errors["b.toml"][1]
    assert str(tmp_path / "b.toml") in errors["b.toml"][1]
    assert "also defined in" in errors["c.toml"][1]
    with pytest.raises(ConfigError, match="agents.dir"):
        read_files(str(tmp_path / "missing"))


# ---- against the store ---------------------------------------------------------------------


@pytest.fixture
async def store() -> AsyncIterator[Store]:
    async with temp_store() as s:  # seeded: demo/receptionist v1 ("seeded")
        yield s


async def test_reconcile_appends_file_versions_and_calls_keep_their_pin(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    new = AgentFile(name="receptionist", path="r.toml", text=spec("receptionist", "Version two."))
    caplog.set_level(logging.INFO)
    plan = await reconcile(store, [new], [])
    assert [s.action for s in plan.steps] == ["update"]
    (line,) = [r for r in caplog.records if r.getMessage() == "agent file changed: new version"]
    assert (line.agent, line.old_version, line.new_version, line.fields) == (  # type: ignore[attr-defined]
        "receptionist",
        1,
        2,
        ["greeting"],
    )
    async with store.session() as session:
        versions = await agent_rows.list_versions(session, "demo", "receptionist")
    assert versions is not None
    assert [(v.version, v.note, v.operator) for v in versions] == [
        (2, "file", True),
        (1, "seeded", True),
    ]
    directory = Directory(store)
    current = await directory.find_agent("demo", "receptionist")
    pinned = await directory.find_agent("demo", "receptionist", 1)  # a call started before
    assert current is not None and pinned is not None
    assert current.pinned == "receptionist@2" and current.spec.greeting == "Version two."
    assert pinned.spec.greeting.startswith(GREETING.split('"')[1])
    # again with the same file: nothing
    assert [s.action for s in (await reconcile(store, [new], [])).steps] == ["unchanged"]


async def test_reconcile_overwrites_an_api_edit_and_logs_it_or_keeps_it(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    async with store.session() as session:
        await agent_rows.update_agent(session, "demo", "receptionist", spec("receptionist", "API"))
    edited = AgentFile(name="receptionist", path="r.toml", text=spec("receptionist", "File."))
    caplog.set_level(logging.INFO)
    await reconcile(store, [edited], [], "keep-api")
    assert any("API version is kept" in r.getMessage() for r in caplog.records)
    ref = await Directory(store).find_agent("demo", "receptionist")
    assert ref is not None and (ref.version, ref.spec.greeting) == (2, "API")
    await reconcile(store, [edited], [])
    (warn,) = [r for r in caplog.records if "overrides changes made through the API" in r.msg]
    assert warn.overwritten_fields == ["greeting"] and warn.old_version == 2  # type: ignore[attr-defined]
    ref = await Directory(store).find_agent("demo", "receptionist")
    assert ref is not None and (ref.version, ref.spec.greeting) == (3, "File.")


async def test_reconcile_logs_a_refused_file_and_a_removed_one(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    bad = FileRefused(path="r.toml", agent="receptionist", error="r.toml: greeting: bad")
    await reconcile(store, [], [bad])
    (line,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert line.path == "r.toml" and line.error == "r.toml: greeting: bad"  # type: ignore[attr-defined]
    assert line.version == 1  # type: ignore[attr-defined]
    await reconcile(store, [], [])
    assert any(r.getMessage().startswith("agent file removed") for r in caplog.records)
    ref = await Directory(store).find_agent("demo", "receptionist")
    assert ref is not None and ref.version == 1


def _settings(tmp: Path, folder: Path, **agents: object) -> Settings:
    s = load_settings(env={})
    return msgspec.structs.replace(
        s,
        node=msgspec.structs.replace(s.node, data_dir=str(tmp / "data")),
        agents=msgspec.structs.replace(s.agents, dir=str(folder), **agents),
    )


async def test_the_node_store_refuses_a_bad_file_only_when_strict(tmp_path: Path) -> None:
    folder = tmp_path / "agents"
    folder.mkdir()
    (folder / "sales.toml").write_text(spec("sales"))
    async with node_store(_settings(tmp_path, folder)) as s:
        assert await Directory(s).find_agent("demo", "sales") is not None
    (folder / "sales.toml").write_text(spec("sales").replace("greeting = ", "greetin = ", 1))
    with pytest.raises(ConfigError, match="sales.toml"):
        async with node_store(_settings(tmp_path, folder, strict=True)):
            pass
    async with node_store(_settings(tmp_path, folder)) as s:  # not strict: the agent stays
        ref = await Directory(s).find_agent("demo", "sales")
        assert ref is not None and ref.version == 1
