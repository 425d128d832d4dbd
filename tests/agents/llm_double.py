"""Moved to `tests.support.llm_double`. This alias stays only until the tests written while it
moved import from there; `tests/test_support_imports.py` names them. Do not import it."""

from tests.support.llm_double import LlmDouble, RecordedRequest, Reply, Route, ScriptedToolCall

__all__ = ["LlmDouble", "RecordedRequest", "Reply", "Route", "ScriptedToolCall"]
