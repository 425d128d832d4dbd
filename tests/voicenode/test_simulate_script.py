"""`voicenode simulate`'s scripted caller on the virtual clock with fake engines: a line whose
audio ends in silence can be answered before its last frame is sent (the turn window ends
inside that silence); the script must still go on to the next line, not wait for a state
change that already came (it waited 10 s and hung up: the turn-taking bench's calls that
stopped after a few lines, issue 16)."""

from __future__ import annotations

import asyncio

import numpy as np

from agents.catalog import load_specs
from media.clock import VirtualClock
from pipeline.fakes import fake_engines, utterance_audio
from voicenode.simulate import REPLY_GAP_S, CallerLine, SimulationResult, simulate

LINES = ["What are your opening hours?", "Do you take Cigna?"]


async def _run(lines: list[CallerLine]) -> SimulationResult:
    clock = VirtualClock()
    task = asyncio.create_task(
        simulate(fake_engines(LINES), load_specs(None)["receptionist"], lines, clock=clock)
    )
    for _ in range(6000):  # 120 s of call time at most
        if task.done():
            break
        await clock.advance(0.02)
    return await asyncio.wait_for(task, 5)


async def test_a_line_answered_during_its_trailing_silence_is_followed_by_the_next() -> None:
    tail = np.zeros(16000, dtype=np.int16)  # 1 s: longer than the turn window
    lines = [CallerLine(np.concatenate([utterance_audio(k, 1.0), tail])) for k in range(2)]
    result = await _run(lines)
    assert len(result.line_spans) == 2
    said = [t.text for t in result.turns if t.role == "user"]
    assert said == LINES
    states = result.state_changes()
    first_end, second_start = result.line_spans[0][1], result.line_spans[1][0]
    assert any(s == "agent_speaking" and t < first_end for t, s in states)  # the race itself
    heard_out = next(t for t, s in states if s == "listening" and t > first_end)
    assert second_start - heard_out < REPLY_GAP_S + 0.1  # the next line right after the reply
