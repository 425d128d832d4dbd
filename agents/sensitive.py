"""What a sensitive value (a flow slot marked `sensitive`: a card number, a PIN, a CVV) looks
like wherever it is shown: events, the history, logs, webhooks' tool records.

`masked(value)` is the value's typed placeholder(s) from `agents.pii` when the detectors know
it (a Luhn-valid card number is `[CARD]`), else `[REDACTED]`: no digit of it survives.
"""

from __future__ import annotations

from typing import Final

from agents.pii import redact_text

__all__ = ["REDACTED", "masked"]

REDACTED: Final = "[REDACTED]"
"""A sensitive value no detector names (a PIN, a CVV)."""


def masked(value: str) -> str:
    """`value` as it may be shown (see the module docstring)."""
    if not value:
        return value
    shown = redact_text(value)
    if shown == value or any(ch.isdigit() for ch in shown):
        return REDACTED
    return shown
