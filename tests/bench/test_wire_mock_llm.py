"""The bench's mock LLM: OpenAI-compatible streaming, paced by time to first token and tokens
per second on the injected clock; the tests' `LlmDouble` is the same class."""

from __future__ import annotations

import json

import httpx
import pytest

import tests.support.llm_double as llm_double
from bench.mock_llm import LlmDouble, MockLlm, Reply, tokens_of


class RecordingClock:
    """A clock frozen at `now` that records every deadline slept until (and returns at once)."""

    def __init__(self, now: float) -> None:
        self._now = now
        self.deadlines: list[float] = []

    def now(self) -> float:
        return self._now

    async def sleep_until(self, deadline: float) -> None:
        self.deadlines.append(deadline)


async def stream(double: LlmDouble) -> tuple[list[str], list[dict[str, object]]]:
    body = {"model": "mock", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    contents: list[str] = []
    chunks: list[dict[str, object]] = []
    async with (
        httpx.AsyncClient() as client,
        client.stream("POST", f"{double.base_url}/chat/completions", json=body) as r,
    ):
        assert r.status_code == 200
        assert r.headers["content-type"] == "text/event-stream"
        async for line in r.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            chunks.append(chunk)
            delta = chunk["choices"][0]["delta"]
            if delta.get("content"):
                contents.append(delta["content"])
    return contents, chunks


def test_tokens_of_keeps_the_spaces() -> None:
    assert tokens_of("Sure, I can help.") == ["Sure,", " I", " can", " help."]
    assert "".join(tokens_of(" a  b ")) == " a  b"


def test_schedule_is_ttft_then_one_token_per_period() -> None:
    double = LlmDouble(ttft_s=0.3, tokens_per_s=40.0)
    assert double.schedule(3) == pytest.approx([0.3, 0.325, 0.35])
    assert LlmDouble(ttft_s=0.2).schedule(3) == [0.2, 0.2, 0.2]
    with pytest.raises(ValueError, match="tokens per second"):
        LlmDouble(tokens_per_s=0)
    with pytest.raises(ValueError, match="first token"):
        LlmDouble(ttft_s=-1)


async def test_the_stream_is_paced_on_the_clock() -> None:
    clock = RecordingClock(1000.0)
    reply = Reply(tokens=tokens_of("Sure, I can help with that."))
    async with LlmDouble(
        ttft_s=0.25, tokens_per_s=20.0, default_reply=reply, clock=clock, record=False
    ) as double:
        contents, chunks = await stream(double)
    assert "".join(contents) == "Sure, I can help with that."
    # Waited for the first token before the role chunk, then each token at its slot.
    expected = [1000.25] + [1000.25 + i * 0.05 for i in range(6)]
    assert clock.deadlines == pytest.approx(expected)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}  # type: ignore[index]
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"  # type: ignore[index]
    assert double.chat_count == 1 and double.requests == []  # record=False keeps none


async def test_without_timing_knobs_nothing_waits() -> None:
    clock = RecordingClock(0.0)
    async with LlmDouble(clock=clock) as double:
        double.script(Reply(tokens=["a", "b"]))
        contents, _ = await stream(double)
        assert contents == ["a", "b"]
        assert clock.deadlines == []
        assert len(double.chat_requests) == 1
        # Once the scripts run out: the default reply.
        contents, _ = await stream(double)
        assert contents == ["(no script)"]


def test_the_tests_double_is_the_bench_mock() -> None:
    assert llm_double.LlmDouble is LlmDouble is MockLlm
    assert llm_double.Reply is Reply
