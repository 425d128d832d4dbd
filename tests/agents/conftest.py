"""The `double` fixture for the tests here: the OpenAI-compatible LLM double
(`tests.support.llm_agents`)."""

from tests.support.llm_agents import double

__all__ = ["double"]
