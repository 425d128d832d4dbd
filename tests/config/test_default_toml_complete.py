"""config/default.toml is the complete list of settings (docs/operations.md says so): every
field of every section is there, as a key or named in a comment of its section (secrets and
optional files are comments), and the file loads as the schema's defaults."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import msgspec

from config.schema import Settings

DEFAULT = Path(__file__).resolve().parents[2] / "config" / "default.toml"


def sections(text: str) -> dict[str, str]:
    """Each `[section]`'s text (its header's dotted name → the lines up to the next header);
    commented headers (`# [dialplan.tenants.acme]`) stay inside the section they are in."""
    out: dict[str, str] = {}
    name = ""
    for line in text.splitlines():
        m = re.match(r"^\[([a-z_.]+)\]", line)
        if m:
            name = m.group(1)
            out.setdefault(name, "")
        else:
            out[name] = out.get(name, "") + line + "\n"
    return out


def fields(obj: object, prefix: str = "") -> list[tuple[str, str]]:
    """(section, field) of every leaf setting."""
    out: list[tuple[str, str]] = []
    for name in obj.__struct_fields__:  # type: ignore[attr-defined]
        value = getattr(obj, name)
        if hasattr(value, "__struct_fields__"):
            out += fields(value, f"{prefix}{name}.")
        else:
            out.append((prefix.rstrip("."), name))
    return out


def test_every_setting_is_in_default_toml() -> None:
    text = sections(DEFAULT.read_text())
    missing = [
        f"{section}.{name}"
        for section, name in fields(Settings())
        if f"{section}.{name}" not in text  # a table of its own: [audiosocket.routes]
        and not re.search(rf"(^|[\s#\[.]){re.escape(name)}\b", text.get(section, ""), re.M)
    ]
    assert not missing, f"settings missing from config/default.toml: {missing}"


def test_default_toml_is_the_schema_s_defaults() -> None:
    loaded = msgspec.convert(tomllib.loads(DEFAULT.read_text()), Settings)
    assert loaded == Settings()
