"""The OpenAI-compatible streaming chat-completions server the tests script: it lives in the
bench package (`bench.mock_llm`), where it is also the bench's mock LLM."""

from bench.mock_llm import LlmDouble, RecordedRequest, Reply, Route, ScriptedToolCall

__all__ = ["LlmDouble", "RecordedRequest", "Reply", "Route", "ScriptedToolCall"]
