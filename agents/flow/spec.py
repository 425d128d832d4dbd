"""Flow specs (placeholder: filled in by the flow agent's implementation)."""

from __future__ import annotations

import msgspec


class FlowSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    start: str
