"""Reading a digits slot back before the flow acts on it (sans-IO).

A phone, card or order number heard through speech recognition is read back in groups, one
digit at a time ("That's 5 5 5, 1 2 1 2. Is that right?"); the flow goes on only on a yes. A
no asks for the number again; a line with another number in it ("no, five five five one two
one three") is taken as the corrected number and read back in turn.
"""

from __future__ import annotations

from typing import Literal

from agents.flow.digits import find_digits
from agents.flow.slots import extract_yes_no
from agents.flow.spec import SlotSpec

Answer = Literal["yes", "no", "digits", "unclear"]

RETRY_LINE = "Okay, let's try that again."
"""Said before the slot's question when the caller says the number read back is wrong."""


def readback_template(name: str, slot: SlotSpec) -> str:
    """The line that reads slot `name` back ("" when the slot is not read back)."""
    if slot.type != "digits":
        return ""
    if slot.readback is not None:
        return slot.readback
    if slot.sensitive:  # `{name}` reads only the last four digits
        return f"That's the number ending in {{{name}}}. Is that right?"
    return f"That's {{{name}}}. Is that right?"


def readback_answer(text: str, slot: SlotSpec, current: str) -> tuple[Answer, str | None]:
    """What the caller's `text` says about the number `current` read back: yes, no, a new
    number (with its digits), or nothing usable."""
    fewest, most = slot.digit_limits
    digits = find_digits(text, min_digits=fewest, max_digits=most)
    if digits is not None and digits != current:
        return "digits", digits
    answer = extract_yes_no(text)
    if answer == "yes" or (answer is None and digits == current):
        return "yes", None
    if answer == "no":
        return "no", None
    return "unclear", None
