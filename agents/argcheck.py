"""Checking a tool call's arguments against the tool's JSON schema, before anything runs.

The subset of JSON Schema that function-calling schemas use: `type` (one or a list),
`properties`, `required`, `additionalProperties` (false or a schema), `items`, `enum`,
`const`, `pattern`, `minLength`/`maxLength`, `minimum`/`maximum`/`exclusiveMinimum`/
`exclusiveMaximum`, `minItems`/`maxItems`, `anyOf`/`oneOf`. Other keywords are not checked.
`argument_error` returns the first problem as a short text the model can act on (it names the
argument, not its value), or None.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

MAX_DEPTH: Final = 16

_TYPES: Final[dict[str, tuple[type, ...]]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "boolean": (bool,),
    "null": (type(None),),
    "number": (int, float),
    "integer": (int,),
}


def _is_type(value: object, name: str) -> bool:
    if name in ("number", "integer") and isinstance(value, bool):
        return False
    if name == "integer" and isinstance(value, float):
        return value.is_integer()
    return isinstance(value, _TYPES.get(name, (object,)))


def argument_error(schema: Mapping[str, Any], value: object) -> str | None:
    """The first way `value` breaks `schema`, or None when it fits."""
    return _check(schema, value, "arguments", 0)


def _check(schema: Mapping[str, Any], value: object, where: str, depth: int) -> str | None:
    if depth > MAX_DEPTH or not isinstance(schema, Mapping):
        return None
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            if all(_check(o, value, where, depth + 1) is not None for o in options):
                return f"{where} matches none of the allowed forms"
    kind = schema.get("type")
    kinds = [kind] if isinstance(kind, str) else kind if isinstance(kind, list) else []
    if kinds and not any(_is_type(value, k) for k in kinds if isinstance(k, str)):
        return f"{where} must be {' or '.join(str(k) for k in kinds)}"
    if "const" in schema and value != schema["const"]:
        return f"{where} must be {schema['const']!r}"
    enum = schema.get("enum")
    if isinstance(enum, list) and value not in enum:
        return f"{where} must be one of {', '.join(repr(e) for e in enum[:10])}"
    if isinstance(value, str):
        return _check_string(schema, value, where)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _check_number(schema, value, where)
    if isinstance(value, list):
        return _check_array(schema, value, where, depth)
    if isinstance(value, dict):
        return _check_object(schema, value, where, depth)
    return None


def _check_string(schema: Mapping[str, Any], value: str, where: str) -> str | None:
    low, high = schema.get("minLength"), schema.get("maxLength")
    if isinstance(low, int) and len(value) < low:
        return f"{where} must be at least {low} characters"
    if isinstance(high, int) and len(value) > high:
        return f"{where} must be at most {high} characters"
    pattern = schema.get("pattern")
    if isinstance(pattern, str):
        try:
            matched = re.search(pattern, value) is not None
        except re.error:
            matched = True  # a schema the operator wrote wrong is not the caller's fault
        if not matched:
            return f"{where} does not have the expected form ({pattern})"
    return None


def _check_number(schema: Mapping[str, Any], value: float, where: str) -> str | None:
    def bound(key: str) -> float | None:
        b = schema.get(key)
        return b if isinstance(b, (int, float)) and not isinstance(b, bool) else None

    if (low := bound("minimum")) is not None and value < low:
        return f"{where} must be at least {low:g}"
    if (high := bound("maximum")) is not None and value > high:
        return f"{where} must be at most {high:g}"
    if (low := bound("exclusiveMinimum")) is not None and value <= low:
        return f"{where} must be more than {low:g}"
    if (high := bound("exclusiveMaximum")) is not None and value >= high:
        return f"{where} must be less than {high:g}"
    return None


def _check_array(schema: Mapping[str, Any], value: list[Any], where: str, depth: int) -> str | None:
    low, high = schema.get("minItems"), schema.get("maxItems")
    if isinstance(low, int) and len(value) < low:
        return f"{where} needs at least {low} items"
    if isinstance(high, int) and len(value) > high:
        return f"{where} takes at most {high} items"
    items = schema.get("items")
    if isinstance(items, Mapping):
        for i, item in enumerate(value):
            if (error := _check(items, item, f"{where}[{i}]", depth + 1)) is not None:
                return error
    return None


def _check_object(
    schema: Mapping[str, Any], value: dict[str, Any], where: str, depth: int
) -> str | None:
    properties = schema.get("properties")
    properties = properties if isinstance(properties, Mapping) else {}
    required = schema.get("required")
    for name in required if isinstance(required, list) else []:
        if name not in value:
            return f"{where}.{name} is required"
    extra = schema.get("additionalProperties", True)
    for name, item in value.items():
        sub = properties.get(name)
        if sub is None:
            if extra is False:
                return f"{where}.{name[:64]} is not an argument of this tool"
            sub = extra if isinstance(extra, Mapping) else None
        if sub is not None:
            if (error := _check(sub, item, f"{where}.{name}", depth + 1)) is not None:
                return error
    return None
