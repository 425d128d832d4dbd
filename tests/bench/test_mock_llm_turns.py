"""The LLM double's script read one reply per turn (`per_turn`, `bench.mock_llm_turns`): a
request that re-asks the previous one's turn (a voice agent's preemptive request at a pause the
caller went on past) gets the same reply and is left out of `turn_requests`; anything else
takes the next reply. Without `per_turn` every request takes the next reply."""

from __future__ import annotations

import json
from collections import deque
from typing import Any

import httpx

from bench.mock_llm import LlmDouble, Reply
from bench.mock_llm_turns import TurnScript

SYSTEM: dict[str, str] = {"role": "system", "content": "You answer for a clinic."}


def body(*messages: dict[str, Any]) -> bytes:
    return json.dumps({"model": "m", "messages": [SYSTEM, *messages]}).encode()


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def test_a_reask_of_the_same_turn_gets_the_same_reply() -> None:
    script = TurnScript(per_turn=True, replies=deque(["goodbye", "what else?"]))
    assert script.next(body(user("Thank you.")), 0) == "goodbye"
    assert script.next(body(user("Thank you. Goodbye.")), 1) == "goodbye"
    assert script.superseded == {0}
    said = {"role": "assistant", "content": "goodbye"}
    assert script.next(body(user("Thank you. Goodbye."), said, user("Wait.")), 2) == "what else?"
    assert script.superseded == {0}
    assert list(script.replies) == []


def test_an_identical_request_is_a_retry_and_takes_the_next_reply() -> None:
    script = TurnScript(per_turn=True, replies=deque(["error", "answer"]))
    assert script.next(body(user("Hours?")), 0) == "error"
    assert script.next(body(user("Hours?")), 1) == "answer"
    assert script.superseded == set()


def test_a_tool_round_or_a_body_that_is_not_json_takes_the_next_reply() -> None:
    script = TurnScript(per_turn=True, replies=deque(["call the tool", "the hours are", "spare"]))
    assert script.next(body(user("Hours?")), 0) == "call the tool"
    tool = {"role": "tool", "tool_call_id": "c", "content": "9 to 5"}
    assert script.next(body(user("Hours?"), tool), 1) == "the hours are"
    assert script.next(b"not json", 2) == "spare"
    assert script.next(body(user("Hours?")), 3) is None  # the script ran out
    assert script.superseded == set()


def test_a_reask_gets_its_reply_after_the_script_ran_out() -> None:
    script = TurnScript(per_turn=True, replies=deque(["goodbye"]))
    assert script.next(body(user("Bye")), 0) == "goodbye"
    assert script.next(body(user("Bye now.")), 1) == "goodbye"
    assert script.next(body(user("Bye now, thanks.")), 2) == "goodbye"
    assert script.superseded == {0, 1}


async def ask(double: LlmDouble, text: str) -> str:
    payload = {"model": "m", "stream": True, "messages": [SYSTEM, user(text)]}
    said: list[str] = []
    async with (
        httpx.AsyncClient() as client,
        client.stream("POST", f"{double.base_url}/chat/completions", json=payload) as r,
    ):
        async for line in r.aiter_lines():
            if line.startswith("data: {"):
                delta = json.loads(line[6:])["choices"][0]["delta"]
                said.append(delta.get("content") or "")
    return "".join(said)


async def test_the_double_answers_a_reask_alike_and_counts_one_turn() -> None:
    async with LlmDouble(per_turn=True) as double:
        double.script(Reply(tokens=["Goodbye!"]), Reply(tokens=["Next."]))
        assert await ask(double, "Thank you.") == "Goodbye!"
        assert await ask(double, "Thank you, goodbye.") == "Goodbye!"
        assert len(double.chat_requests) == 2
        assert [r["messages"][-1]["content"] for r in double.turn_requests] == [
            "Thank you, goodbye."
        ]
        assert list(double.replies) == [Reply(tokens=["Next."])]


def test_without_per_turn_every_request_takes_the_next_reply() -> None:
    script = TurnScript(deque(["first", "second"]), per_turn=False)
    assert script.next(body(user("Thank you.")), 0) == "first"
    assert script.next(body(user("Thank you. Goodbye.")), 1) == "second"
    assert script.superseded == set()
