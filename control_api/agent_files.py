"""Agent files against the store, as a plan: which file agent becomes a new version, which is
unchanged, refused, kept as the API left it, or has lost its file.

The files are the source of truth for what they define (the embedded `config/agents/*.toml`
plus `agents.dir/*.toml`, which wins on equal names). `read_files` reads and validates each one
on its own, so one bad file refuses only its agent. `diff` is pure: the files and what the
store holds (`StoredAgent`) in, a `Plan` out; `control_api.store.file_agents` applies it.

A stored version came from a file when its note is "seeded" or "file". An agent changed
through the API since its last file version (updated, rolled back, deleted, or created
through the API under a name a file now defines) is in conflict when its file changes: the
file wins (`file-wins`, the default) or the API version stays (`keep-api`).
"""

from __future__ import annotations

import tomllib
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Final, Literal

import msgspec

from agents.catalog import SpecError, parse_spec
from config import ConfigError

FILE_NOTES: Final = frozenset({"seeded", "file"})
"""Notes of versions that came from an agent file."""

ConflictPolicy = Literal["file-wins", "keep-api"]
Action = Literal["create", "update", "unchanged", "refused", "kept-api", "removed"]


class AgentFile(msgspec.Struct, frozen=True, kw_only=True):
    """A valid agent file."""

    name: str
    path: str
    text: str


class FileRefused(msgspec.Struct, frozen=True, kw_only=True):
    """An agent file that failed validation; `agent` is its name where it could be read."""

    path: str
    agent: str | None
    error: str


class StoredAgent(msgspec.Struct, frozen=True, kw_only=True):
    """One agent of the tenant files seed: its current version and its last file version."""

    name: str
    version: int
    spec: str
    deleted: bool = False
    file_version: int | None = None
    file_spec: str | None = None


class Step(msgspec.Struct, frozen=True, kw_only=True):
    """What the reconcile does (or did) for one agent."""

    action: Action
    agent: str
    path: str = ""
    text: str = ""
    """The file's spec, for create and update."""
    version: int | None = None
    """The agent's current version (None: it has none yet)."""
    fields: tuple[str, ...] = ()
    """Top-level fields the file changes against the current version."""
    overwrites: int | None = None
    """The API-made version a file-wins update replaces."""
    overwritten_fields: tuple[str, ...] = ()
    """Fields the API changed since the last file version (lost by a file-wins update)."""
    error: str = ""


class Plan(msgspec.Struct, frozen=True, kw_only=True):
    steps: tuple[Step, ...] = ()

    @property
    def writes(self) -> tuple[Step, ...]:
        """The steps that append a version."""
        return tuple(s for s in self.steps if s.action in ("create", "update"))

    @property
    def refused(self) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if s.action == "refused")


def _sources(extra_dir: str | None) -> list[tuple[Path | Traversable, bool]]:
    """The files, embedded ones first, each with whether it is in `extra_dir`."""
    embedded = files("config") / "agents"
    sources: list[tuple[Path | Traversable, bool]] = [
        (f, False)
        for f in sorted(embedded.iterdir(), key=lambda f: f.name)
        if f.name.endswith(".toml") and f.is_file()
    ]
    if extra_dir:
        folder = Path(extra_dir)
        if not folder.is_dir():
            raise ConfigError(f"agents.dir: {folder}: agent spec folder does not exist")
        sources.extend((f, True) for f in sorted(folder.glob("*.toml")))
    return sources


def _name_in(text: str, path: str) -> str:
    """The `name` a file that failed validation means, where it can be told; else its stem."""
    try:
        name = tomllib.loads(text).get("name")
    except tomllib.TOMLDecodeError:
        name = None
    return name if isinstance(name, str) and name else Path(path).stem


def read_files(extra_dir: str | None = None) -> tuple[list[AgentFile], list[FileRefused]]:
    """Every agent file, each validated alone (`ConfigError` if `extra_dir` is missing).
    A later file of a name replaces an earlier one only across folders (`agents.dir` over the
    embedded ones); two files of one name in `agents.dir` refuse the second."""
    found: dict[str, AgentFile] = {}
    refused: list[FileRefused] = []
    from_dir: set[str] = set()
    for source, in_dir in _sources(extra_dir):
        path = str(source)
        try:
            text = source.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            refused.append(FileRefused(path=path, agent=None, error=f"{path}: cannot read: {exc}"))
            continue
        try:
            name = parse_spec(text, path).name
        except SpecError as exc:
            refused.append(FileRefused(path=path, agent=_name_in(text, path), error=str(exc)))
            continue
        if name in from_dir:
            error = f"{path}: name: agent {name!r} is also defined in {found[name].path}"
            refused.append(FileRefused(path=path, agent=name, error=error))
            continue
        if in_dir:
            from_dir.add(name)
        found[name] = AgentFile(name=name, path=path, text=text)
    return list(found.values()), refused


def _table(text: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return {}


def changed_fields(old: str, new: str) -> tuple[str, ...]:
    """Top-level fields whose values differ between two spec texts."""
    a, b = _table(old), _table(new)
    return tuple(sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k)))


def _same(a: str, b: str) -> bool:
    return a == b or _table(a) == _table(b)


def _step_for(file: AgentFile, stored: StoredAgent | None, policy: ConflictPolicy) -> Step:
    name, path = file.name, file.path
    if stored is None:
        fields = changed_fields("", file.text)
        return Step(action="create", agent=name, path=path, text=file.text, fields=fields)
    version = stored.version
    if stored.file_spec is not None and _same(stored.file_spec, file.text):
        return Step(action="unchanged", agent=name, path=path, version=version)
    since_file = stored.file_spec is None or not _same(stored.spec, stored.file_spec)
    api_changed = stored.deleted or (since_file and not _same(stored.spec, file.text))
    current = "" if stored.deleted else stored.spec
    fields = changed_fields(current, file.text)
    if api_changed and policy == "keep-api":
        return Step(action="kept-api", agent=name, path=path, version=version, fields=fields)
    overwritten = changed_fields(stored.file_spec or "", current) if api_changed else ()
    return Step(
        action="update",
        text=file.text,
        version=version,
        fields=fields,
        overwrites=version if api_changed else None,
        overwritten_fields=overwritten,
        agent=name,
        path=path,
    )


def diff(
    agent_files: list[AgentFile],
    refused: list[FileRefused],
    stored: list[StoredAgent],
    policy: ConflictPolicy = "file-wins",
) -> Plan:
    """What reconciling `agent_files` with `stored` does, agent by agent (sorted by name)."""
    by_name = {s.name: s for s in stored}
    steps = [_step_for(f, by_name.get(f.name), policy) for f in agent_files]
    named = {f.name for f in agent_files}
    for bad in refused:
        have = by_name.get(bad.agent) if bad.agent else None
        steps.append(
            Step(
                action="refused",
                agent=bad.agent or "",
                path=bad.path,
                version=None if have is None or have.deleted else have.version,
                error=bad.error,
            )
        )
        named.add(bad.agent or "")
    for s in stored:
        if s.name not in named and s.file_version is not None and not s.deleted:
            steps.append(Step(action="removed", agent=s.name, version=s.version))
    return Plan(steps=tuple(sorted(steps, key=lambda s: (s.agent, s.path))))
