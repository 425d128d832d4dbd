"""The bodies of the agent routes (`control_api.agents_api`), and the agent spec's types as
the OpenAPI document shows them.

A JSON spec is validated by `agents.catalog.parse_spec` (written as TOML first, so that a 400
names the field as a bad spec file would); the document shows it as the `AgentSpec` component,
msgspec's JSON Schema of the very Struct `parse_spec` decodes into (`SPEC_TYPES`, added to the
document's components by `control_api.openapi_doc`).
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Final

import msgspec
from msgspec import Meta

from agents.spec import AgentSpec, Name


class AgentSpecUpdate(AgentSpec, frozen=True, kw_only=True):
    """The spec of `PUT /v1/agents/{name}`: an `AgentSpec` whose name may be left out (it is
    the path's). For the document only: a JSON spec is validated by `parse_spec`."""

    name: Name | msgspec.UnsetType = msgspec.UNSET  # type: ignore[assignment]  # may be left out


SPEC_TYPES: Final = (AgentSpec, AgentSpecUpdate)
"""The spec's types, components of the document (a body names them by reference)."""


def _as(component: str) -> Meta:
    """Documents a JSON object as the spec `component`; it is validated by `parse_spec`
    (written as TOML, so that a 400 names the field as a bad file would)."""
    return Meta(extra_json_schema={"allOf": [{"$ref": f"#/components/schemas/{component}"}]})


SpecObject = Annotated[dict[str, Any], _as("AgentSpec")]
SpecUpdateObject = Annotated[dict[str, Any], _as("AgentSpecUpdate")]
TomlText = Annotated[str, Meta(max_length=262_144, description="The text of a spec file")]


EXACTLY_ONE: Final[dict[str, Any]] = {
    "oneOf": [
        {
            "title": "A JSON spec",
            "required": ["spec"],
            "properties": {"spec": {"type": "object"}, "toml": {"type": "null"}},
        },
        {
            "title": "A spec file's text",
            "required": ["toml"],
            "properties": {"toml": {"type": "string"}, "spec": {"type": "null"}},
        },
    ]
}
"""What `spec_text` checks first (`agents_api`), for the document: one of the two is given and
not null, the other left out or null."""


class AgentIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Exactly one of `spec` (a JSON object of `AgentSpec` fields) and `toml` (spec file text)."""

    schema_extra: ClassVar[dict[str, Any]] = EXACTLY_ONE
    """Merged into the body's component by `control_api.openapi_doc` (the document only)."""

    spec: SpecObject | None = None
    toml: TomlText | None = None


class AgentUpdate(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Exactly one of `spec` and `toml`; the name may be left out of a JSON spec."""

    schema_extra: ClassVar[dict[str, Any]] = EXACTLY_ONE

    spec: SpecUpdateObject | None = None
    toml: TomlText | None = None


class RollbackIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    version: Annotated[int, Meta(ge=1, le=2**31 - 1)]
