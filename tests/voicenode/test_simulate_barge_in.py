"""`voicenode simulate` barging in from the first line: over the agent's greeting.

The slow test runs the real models in real time (as the simulate tests in `tests/e2e` do): the
caller asks its question a moment after the receptionist's greeting starts; the greeting stops
and the agent answers the question.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import numpy.typing as npt
import pytest

from agents.catalog import load_specs
from config import load_settings
from pipeline.engines import Engines
from pipeline.events import StateChanged
from pipeline.tts import TtsEngine
from tests.support.speech import DETERMINISTIC_VOICE
from voicenode.simulate import (
    CallerLine,
    SimulationResult,
    caller_lines,
    caller_voice,
    simulate,
)
from voicenode.simulate_cli import barging_lines

GREETING = "Thanks for calling Bright Smile Dental."


def _audio(n: int) -> list[npt.NDArray[np.int16]]:
    return [np.full(160, i, dtype=np.int16) for i in range(n)]


def test_barge_in_after_from_the_command_line_applies_to_the_first_line_too() -> None:
    lines = barging_lines(_audio(2), 0.25)
    assert [line.barge_in_after for line in lines] == [0.25, 0.25]
    assert [line.barge_in_after for line in barging_lines(_audio(2), None)] == [None, None]


def test_plain_samples_keep_the_greeting_heard_out_and_caller_lines_say_for_themselves() -> None:
    first, second = _audio(2)
    lines = caller_lines([first, second], 1.5)
    assert [line.barge_in_after for line in lines] == [None, 1.5]
    assert lines[0].samples is first
    own = CallerLine(first, barge_in_after=0.0, backchannel=True)
    assert caller_lines([own, second], None)[0] is own


@pytest.fixture(scope="module")
def engines() -> Iterator[Engines]:
    eng = Engines.load_blocking(load_settings(env=DETERMINISTIC_VOICE))
    yield eng
    eng.close()


@pytest.mark.slow
async def test_the_first_line_barges_in_on_the_greeting_and_is_answered(
    engines: Engines,
) -> None:
    tts = engines.tts
    assert isinstance(tts, TtsEngine)
    question = CallerLine(caller_voice(tts, "What are your opening hours?"), barge_in_after=0.3)
    result = await simulate(engines, load_specs(None)["receptionist"], [question])
    turns = [(t.role, t.text, t.interrupted) for t in result.turns]
    states = [ev.state for ev in result.events if isinstance(ev, StateChanged)]
    # The greeting started, and the caller took over before the agent ever listened.
    speaking = states.index("agent_speaking")
    assert "user_speaking" in states[speaking:], states
    assert states.index("user_speaking", speaking) < states.index("listening"), states
    # The line went out while the greeting played: 0.3 s after its audio started.
    (line_start, _), greeting_at = result.line_spans[0], _first_audio_at(result)
    assert greeting_at <= line_start, (greeting_at, line_start)
    # The greeting stopped: never reported whole; what was heard of it is a true prefix.
    agents = [t for t in result.turns if t.role == "agent"]
    assert not any(t.text == GREETING and not t.interrupted for t in agents), turns
    for cut in (t for t in agents if t.interrupted):
        assert GREETING.startswith(cut.text) and cut.text != GREETING, turns
    # The agent heard the question and answered it.
    users = [t.text.lower() for t in result.turns if t.role == "user"]
    assert users and ("hours" in users[0] or "open" in users[0]), turns
    assert any("monday" in t.text.lower() for t in agents if not t.interrupted), turns


def _first_audio_at(result: SimulationResult) -> float:
    return next(
        t
        for ev, t in zip(result.events, result.event_times, strict=True)
        if isinstance(ev, StateChanged) and ev.state == "agent_speaking"
    )
