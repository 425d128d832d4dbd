"""Load settings: embedded default.toml, then an optional file, then VOICENODE_<SECTION>__<KEY>.

Every error names where the bad value came from (file or variable), the key, the value and
what was expected, so `voicenode` can exit non-zero with a message a person can act on.
"""

from __future__ import annotations

import os
import re
import tomllib
import typing
from collections.abc import Mapping
from importlib.resources import files
from pathlib import Path
from typing import Any

import msgspec

from config.clickhouse import PASSWORD_ENV
from config.schema import Settings
from core.errors import ConfigError as ConfigError  # the node's kind; `config.ConfigError`

ENV_PREFIX = "VOICENODE_"


def default_toml() -> str:
    return files("config").joinpath("default.toml").read_text(encoding="utf-8")


def _parse_toml(text: str, origin: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{origin}: not valid TOML: {exc}") from exc


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _lookup(raw: Mapping[str, Any], path: str) -> Any:
    node: Any = raw
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _validate(raw: dict[str, Any], origin: str) -> Settings:
    try:
        return msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as exc:
        msg = str(exc)
        key = msg.rsplit("`$.", 1)[-1].rstrip("`") if "`$." in msg else ""
        unknown = re.search(r"unknown field `([^`]+)`", msg)
        if unknown:
            field = f"{key}.{unknown.group(1)}" if key else unknown.group(1)
            section = _lookup(raw, key) if key else raw
            known = sorted(set(section) - {unknown.group(1)}) if isinstance(section, dict) else []
            raise ConfigError(
                f"{origin}: unknown setting {field} = {_lookup(raw, field)!r}; "
                f"expected one of {known}"
            ) from exc
        value = _redact(_lookup(raw, key), key) if key else None
        shown = f" = {value!r}" if value is not None else ""
        where = f" {key}{shown}" if key else ""
        choices = _choices(key)
        expected = f"; expected one of {choices}" if choices else ""
        raise ConfigError(f"{origin}: invalid setting{where}: {msg}{expected}") from exc


_SECRET = re.compile(r"password|secret|token|(^|_)key$", re.IGNORECASE)


def _redact(value: Any, key: str = "") -> Any:
    """A setting's value for an error message, with passwords, secrets and keys starred out."""
    if isinstance(value, dict):
        return {k: _redact(v, k) for k, v in value.items()}
    if _SECRET.search(key.rsplit(".", 1)[-1]) and value:
        return "***"
    return value


def _choices(key: str) -> list[str]:
    """The allowed values of a Literal-typed setting such as `stt.device` or `sip.codecs[1]`."""
    hint = _field_type(re.sub(r"\[\d+\]", "", key).split("."))
    if typing.get_origin(hint) in (list, tuple):
        hint = typing.get_args(hint)[0]
    if typing.get_origin(hint) is typing.Literal:
        return [str(a) for a in typing.get_args(hint)]
    return []


def _env_overrides(env: Mapping[str, str]) -> list[tuple[str, dict[str, Any]]]:
    """VOICENODE_<SECTION>__<KEY>[__<KEY>...] as nested overrides (`SIP__TRUNK__URI`)."""
    out: list[tuple[str, dict[str, Any]]] = []
    sections = set(Settings.__struct_fields__)
    for name, value in sorted(env.items()):
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        path = name[len(ENV_PREFIX) :].lower().split("__")
        if path[0] not in sections:
            raise ConfigError(
                f"{name}: unknown settings section {path[0]!r}; expected one of {sorted(sections)}"
            )
        override: Any = _env_value(name, path, value)
        for part in reversed(path):
            override = {part: override}
        out.append((name, override))
    return out


def _field_type(path: list[str]) -> Any:
    """The declared type of a setting (None when the path names no field)."""
    hint: Any = Settings
    for part in path:
        if not (isinstance(hint, type) and issubclass(hint, msgspec.Struct)):
            return None
        hint = typing.get_type_hints(hint, include_extras=True).get(part)
        while typing.get_origin(hint) is typing.Annotated:
            hint = typing.get_args(hint)[0]
    return hint


def _env_value(name: str, path: list[str], value: str) -> Any:
    """A variable's text as the setting's kind: lists from a TOML array or comma-separated."""
    if typing.get_origin(_field_type(path)) not in (list, tuple):
        return value
    text = value.strip()
    if text.startswith("["):
        try:
            return tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(
                f"{name}: invalid list {value!r}: {exc}; expected a TOML array like "
                '["a", "b"] or comma-separated values like a,b'
            ) from exc
    return [item.strip() for item in text.split(",") if item.strip()]


def load_settings(
    path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None
) -> Settings:
    """Embedded defaults, then `path` (if given), then VOICENODE_* variables from `env`."""
    env = os.environ if env is None else env
    raw = _parse_toml(default_toml(), "default.toml")
    if path is not None:
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{p}: cannot read config file: {exc.strerror}") from exc
        from_file = _parse_toml(text, str(p))
        if _lookup(from_file, "analytics.clickhouse.password"):
            raise ConfigError(
                f"{p}: analytics.clickhouse.password is read from the environment only "
                f"({PASSWORD_ENV}), never from a file"
            )
        raw = _merge(raw, from_file)
        _validate(raw, str(p))
    for var, override in _env_overrides(env):
        raw = _merge(raw, override)
        _validate(raw, var)
    settings = _validate(raw, "settings")
    if not settings.http.admin_key and env.get("VOICENODE_ADMIN_KEY"):
        try:
            http = msgspec.structs.replace(settings.http, admin_key=env["VOICENODE_ADMIN_KEY"])
        except ValueError as exc:
            raise ConfigError(f"VOICENODE_ADMIN_KEY: invalid setting {exc}") from None
        settings = msgspec.structs.replace(settings, http=http)
    return settings
