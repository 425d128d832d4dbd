"""An agent's `[amd]` section: answering-machine detection and the voicemail message."""

from __future__ import annotations

import pytest

from agents.catalog import SpecError, parse_spec
from agents.spec import AmdSettings

AGENT = """
name = "reminders"
kind = "flow"
[flow]
start = "main"
[flow.nodes.main]
do = [{{ end = true }}]
{amd}
"""


def test_the_defaults_screen_outbound_calls_and_hang_up_on_a_machine() -> None:
    spec = parse_spec(AGENT.format(amd=""), "reminders.toml")
    assert spec.amd == AmdSettings()
    assert spec.amd.enabled and spec.amd.decision_ms == 3500
    assert spec.amd.machine_speech_ms is None and spec.amd.long_greeting_ms == 3000
    off = parse_spec(AGENT.format(amd="[amd]\nenabled = false"), "reminders.toml")
    assert not off.amd.enabled
    assert spec.amd.on_machine == "hang_up" and spec.amd.voicemail_message == ""


def test_leave_message_with_its_template() -> None:
    amd = """[amd]
enabled = true
on_machine = "leave_message"
voicemail_message = "Hi $name, this is Bright Smile Dental about your appointment."
decision_ms = 3000
beep_wait_ms = 2000
"""
    spec = parse_spec(AGENT.format(amd=amd), "reminders.toml")
    assert spec.amd.enabled and spec.amd.on_machine == "leave_message"
    assert spec.amd.voicemail_message.startswith("Hi $name")
    assert (spec.amd.decision_ms, spec.amd.beep_wait_ms) == (3000, 2000)
    assert spec.amd.long_greeting_ms == 3000  # the default, not past the deadline
    assert AmdSettings(decision_ms=2000).long_greeting_ms == 2000
    assert AmdSettings(machine_speech_ms=2500).long_greeting_ms == 2500


@pytest.mark.parametrize(
    ("amd", "problem"),
    [
        ('[amd]\non_machine = "leave_message"', "voicemail_message"),
        ('[amd]\non_machine = "leave_message"\nvoicemail_message = "  "', "voicemail_message"),
        ('[amd]\non_machine = "call_back"', "on_machine"),
        ("[amd]\ndecision_ms = 100", "decision_ms"),
        ("[amd]\ndecision_ms = 2000\nmachine_speech_ms = 2500", "machine_speech_ms"),
        ("[amd]\nbeep_after = 3", "beep_after"),
    ],
)
def test_bad_settings_are_refused_naming_the_key(amd: str, problem: str) -> None:
    with pytest.raises(SpecError, match=problem):
        parse_spec(AGENT.format(amd=amd), "reminders.toml")
