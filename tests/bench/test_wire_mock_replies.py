"""The mock LLM's varied replies: different each time, two sentences of 20-30 words, seeded."""

from __future__ import annotations

import json

import httpx

from bench.mock_llm import LlmDouble, Reply, tokens_of
from bench.mock_replies import MAX_WORDS, MIN_WORDS, VariedReplies, varied_reply_source


def test_replies_differ_and_fit_the_word_range() -> None:
    gen = VariedReplies(seed=7)
    replies = [gen.next() for _ in range(500)]
    assert len(set(replies)) == len(replies)
    for text in replies:
        assert MIN_WORDS <= len(text.split()) <= MAX_WORDS
        assert text.count(".") + text.count("?") >= 2  # two sentences
        assert text.endswith("?")


def test_the_same_seed_gives_the_same_replies() -> None:
    a, b, c = VariedReplies(seed=3), VariedReplies(seed=3), VariedReplies(seed=4)
    first = [a.next() for _ in range(20)]
    assert first == [b.next() for _ in range(20)]
    assert first != [c.next() for _ in range(20)]


async def _ask(double: LlmDouble) -> str:
    body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    text = ""
    async with (
        httpx.AsyncClient() as client,
        client.stream("POST", f"{double.base_url}/chat/completions", json=body) as r,
    ):
        async for line in r.aiter_lines():
            if line.startswith("data: {") and '"content": "' in line:
                text += json.loads(line[6:])["choices"][0]["delta"].get("content", "")
    return text


async def test_the_double_streams_a_new_reply_per_request() -> None:
    expected = VariedReplies(seed=11)
    async with LlmDouble(reply_source=varied_reply_source(11), record=False) as double:
        got = [await _ask(double) for _ in range(3)]
    assert got == [expected.next() for _ in range(3)]
    assert len(set(got)) == 3


async def test_a_fixed_reply_without_a_source() -> None:
    fixed = Reply(tokens=tokens_of("Sure, I can help."))
    async with LlmDouble(default_reply=fixed, record=False) as double:
        got = [await _ask(double) for _ in range(2)]
    assert got == ["Sure, I can help."] * 2
