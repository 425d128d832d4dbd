"""Agent spec files: load TOML into validated `AgentSpec`s, with errors that name file and field.

Embedded specs ship in the `config/agents/` package folder (the demo `receptionist`); an
operator's folder of `*.toml` files adds agents and replaces embedded ones of the same name.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import msgspec

from agents.spec import AgentSpec
from core.destination import parse as parse_destination
from core.errors import VoicenodeError


class SpecError(VoicenodeError, ValueError):
    """An agent spec file is invalid; the message names the file, the field and the problem."""


_AT = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_UNKNOWN_FIELD = re.compile(r"unknown field `(?P<field>[^`]+)`")


def parse_spec(text: str, origin: str) -> AgentSpec:
    """Validate TOML text as an `AgentSpec`; `origin` (a file name) prefixes every error."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{origin}: not valid TOML: {exc}") from exc
    try:
        spec = msgspec.convert(raw, AgentSpec, strict=True)
    except msgspec.ValidationError as exc:
        raise SpecError(f"{origin}: {_explain(str(exc), raw)}") from exc
    if spec.flow is not None and spec.flow.uses_default_transfer() and not spec.transfer_target:
        raise SpecError(
            f'{origin}: transfer_target: must be set, the flow has `transfer = ""` actions'
            " (transfer to the agent's transfer_target)"
        )
    _check_transfer_targets(spec, origin)
    return spec


def _check_transfer_targets(spec: AgentSpec, origin: str) -> None:
    """Every transfer target the spec names is a destination (`core.destination`); the dial
    plan decides at transfer time whether it may be reached."""
    targets = [("transfer_target", spec.transfer_target)] if spec.transfer_target else []
    if spec.flow is not None:
        targets += spec.flow.transfer_targets()
    for where, target in targets:
        try:
            parse_destination(target)
        except ValueError as exc:
            raise SpecError(f"{origin}: {where}: not a transfer destination: {exc}") from None


def load_spec(path: str | os.PathLike[str] | Traversable) -> AgentSpec:
    """Read and validate one agent spec TOML file."""
    where = path if isinstance(path, Traversable) else Path(path)
    try:
        text = where.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"{where}: cannot read agent spec: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise SpecError(f"{where}: not UTF-8 text: {exc}") from exc
    return parse_spec(text, str(where))


def embedded_specs() -> dict[str, AgentSpec]:
    """The agent specs shipped in the `config/agents/` package folder, by name."""
    folder = files("config") / "agents"
    return _by_name(
        sorted(
            (f for f in folder.iterdir() if f.name.endswith(".toml") and f.is_file()),
            key=lambda f: f.name,
        )
    )


def load_specs(extra_dir: str | os.PathLike[str] | None = None) -> dict[str, AgentSpec]:
    """Embedded specs plus every `*.toml` in `extra_dir` (which wins on equal names)."""
    specs = embedded_specs()
    if extra_dir is None:
        return specs
    folder = Path(extra_dir)
    if not folder.is_dir():
        raise SpecError(f"{folder}: agent spec folder does not exist")
    specs.update(_by_name(sorted(folder.glob("*.toml"))))
    return specs


def _by_name(paths: Iterable[Path | Traversable]) -> dict[str, AgentSpec]:
    out: dict[str, AgentSpec] = {}
    origin: dict[str, str] = {}
    for path in paths:
        spec = load_spec(path)
        if spec.name in out:
            raise SpecError(
                f"{path}: name: agent {spec.name!r} is also defined in {origin[spec.name]}"
            )
        out[spec.name] = spec
        origin[spec.name] = str(path)
    return out


def _explain(message: str, raw: Mapping[str, Any]) -> str:
    """Rewrite msgspec's "... - at `$.a[...].b`" as "a.<key>.b: ...", naming the dict key where
    the raw data shows which one it is (msgspec writes `[...]` for dict keys)."""
    m = _AT.search(message)
    what = message[: m.start()] if m else message
    path = m.group("path").lstrip(".") if m else ""
    unknown = _UNKNOWN_FIELD.search(what)
    if unknown is not None:
        path = f"{path}.{unknown.group('field')}" if path else unknown.group("field")
    if "[...]" in path:
        found = _expand(raw, path.replace("[...]", "[*]").split("."))
        if len(found) == 1:
            path = found[0]
        elif found:
            path = f"{path} (one of: {', '.join(found[:5])})"
    if path and what.startswith(path + "."):
        return what  # the message already names the full field (flow checks do)
    return f"{path or '(top level)'}: {what}"


def _expand(node: Any, parts: list[str], prefix: str = "") -> list[str]:
    """Concrete dotted paths in `node` matching `parts`; `key[*]` means any key of a dict."""
    if not parts:
        return [prefix]
    head, rest = parts[0], parts[1:]
    if head.endswith("[*]"):
        key = head[: -len("[*]")]
        child = node.get(key) if isinstance(node, Mapping) else None
        if not isinstance(child, Mapping):
            return []
        base = f"{prefix}.{key}" if prefix else key
        out: list[str] = []
        for name, value in child.items():
            out.extend(_expand(value, rest, f"{base}.{name}"))
        return out
    index = re.fullmatch(r"(?P<key>[^\[]+)\[(?P<i>\d+)\]", head)
    if index is not None:
        seq = node.get(index.group("key")) if isinstance(node, Mapping) else None
        i = int(index.group("i"))
        if not isinstance(seq, list) or i >= len(seq):
            return []
        return _expand(seq[i], rest, f"{prefix}.{head}" if prefix else head)
    if not isinstance(node, Mapping) or head not in node:
        return []
    return _expand(node[head], rest, f"{prefix}.{head}" if prefix else head)
