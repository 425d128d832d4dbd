"""The bench node's `--answer-only`: the number it answers, and a 404 for any other (so a fuzz's
INVITEs can be refused the way a node's dial plan refuses an unknown number)."""

from __future__ import annotations

from bench.sip_fuzz import seed_message
from bench.sip_media_node import BenchAgents, NodeOptions
from sip.message import parse_request
from sip.ua import Accept, IncomingInvite, Reject


def _invite(number: str) -> IncomingInvite:
    text = seed_message("INVITE", "1", "127.0.0.1:5999", service=number).decode()
    return IncomingInvite(request=parse_request(text), source="127.0.0.1")


async def test_only_the_configured_number_is_answered() -> None:
    agents = BenchAgents("echo", NodeOptions(answer_only="7000"))
    try:
        refused = await agents.route(_invite("1000"))
        answered = await agents.route(_invite("7000"))
    finally:
        await agents.close()
    assert isinstance(refused, Reject) and refused.status == 404
    assert isinstance(answered, Accept) and answered.info.to_uri.startswith("sip:7000@")
    assert (agents.refused, agents.calls) == (1, 1)


async def test_without_it_every_number_is_answered() -> None:
    agents = BenchAgents("echo")
    try:
        decision = await agents.route(_invite("1000"))
    finally:
        await agents.close()
    assert isinstance(decision, Accept)
    assert agents.refused == 0
