"""Moved to `tests.support.speech`. This alias stays only until the tests written while it
moved import from there; `tests/test_support_imports.py` names them. Do not import it."""

from tests.support.speech import (
    DETERMINISTIC_VOICE,
    SOUNDS_LIKE,
    heard_of,
    spoken_words,
    word_error_rate,
)

__all__ = ["DETERMINISTIC_VOICE", "SOUNDS_LIKE", "heard_of", "spoken_words", "word_error_rate"]
