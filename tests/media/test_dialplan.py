"""The dial plan's decisions (numbers, SIP domains, extensions, per-tenant overrides) and the
per-tenant outbound call rate, on a virtual clock."""

from __future__ import annotations

import pytest

from config import ConfigError, load_settings
from config.schema import DialPlanOverride, DialPlanSettings
from core.destination import parse
from media.dialplan import (
    DestinationInvalid,
    DestinationRefused,
    DialGuard,
    RateLimited,
    plan_for,
)

NODE = DialPlanSettings(
    allowed_prefixes=("+1", "+4420"),
    allowed_domains=("clinic.example", "*.pbx.example"),
    extensions=("100", "front-desk"),
    calls_per_minute=2,
    tenants={
        "acme": DialPlanOverride(allowed_prefixes=("+44",), calls_per_minute=1),
        "closed": DialPlanOverride(allowed_prefixes=(), allowed_domains=(), extensions=()),
    },
)


@pytest.mark.parametrize(
    "target",
    [
        "+15551234567",
        "+442071234567",
        "sip:desk@clinic.example",
        "sip:desk@a.pbx.example",
        "sip:+15551234567@clinic.example",
        "100",
        "front-desk",
    ],
)
def test_allowed(target: str) -> None:
    assert str(DialGuard(NODE).check("demo", target)) == str(parse(target))


@pytest.mark.parametrize(
    ("target", "says"),
    [
        ("+19005551234", "refuses this number's prefix"),  # premium rate
        ("+18765551234", "refuses this number's prefix"),  # Jamaica: +1, but international
        ("+442891234567", "does not allow this number's prefix"),  # +44 but not +4420
        ("+33123456789", "does not allow this number's prefix"),  # international
        ("sip:desk@evil.example", "SIP domain"),
        ("sip:desk@pbx.example", "SIP domain"),  # `*.pbx.example` is its subdomains only
        ("sip:desk@clinic.example.evil", "SIP domain"),
        ("sip:+33123456789@clinic.example", "does not allow this number's prefix"),
        ("sip:011331234@clinic.example", "refuses this number's prefix"),
        ("200", "does not list this extension"),
    ],
)
def test_refused(target: str, says: str) -> None:
    with pytest.raises(DestinationRefused, match=says) as refused:
        DialGuard(NODE).check("demo", target)
    assert target not in str(refused.value)


def test_malformed_targets_are_invalid_not_refused() -> None:
    with pytest.raises(DestinationInvalid, match="control character"):
        DialGuard(NODE).check("demo", "100\r\nAction: Originate")


def test_tenant_overrides_replace_only_what_they_set() -> None:
    acme = plan_for(NODE, "acme")
    assert acme.allowed_prefixes == ("+44",) and acme.calls_per_minute == 1
    assert acme.allowed_domains == NODE.allowed_domains  # inherited
    assert acme.refused_prefixes == NODE.refused_prefixes
    guard = DialGuard(NODE)
    guard.check("acme", "+442891234567")
    with pytest.raises(DestinationRefused):
        guard.check("acme", "+15551234567")
    for target in ("+15551234567", "sip:desk@clinic.example", "100"):
        with pytest.raises(DestinationRefused):
            guard.check("closed", target)


def test_the_defaults_allow_nothing_until_the_operator_opens_it() -> None:
    guard = DialGuard(load_settings(env={}).dialplan)
    for target in ("+15551234567", "+442071234567", "sip:desk@clinic.example", "100"):
        with pytest.raises(DestinationRefused):
            guard.check("demo", target)
    opened = DialGuard(DialPlanSettings(allowed_prefixes=("+1",)))
    opened.check("demo", "+15551234567")
    for premium_or_foreign in ("+19005551234", "+19765551234", "+18095551234", "+12845551234"):
        with pytest.raises(DestinationRefused):
            opened.check("demo", premium_or_foreign)


def test_settings_from_the_environment_and_bad_values() -> None:
    env = {
        "VOICENODE_DIALPLAN__ALLOWED_PREFIXES": "+1,+44",
        "VOICENODE_DIALPLAN__ALLOWED_DOMAINS": '["clinic.example"]',
    }
    plan = load_settings(env=env).dialplan
    assert plan.allowed_prefixes == ("+1", "+44")
    assert plan.allowed_domains == ("clinic.example",)
    with pytest.raises(ConfigError, match="dialplan.allowed_prefixes"):
        load_settings(env={"VOICENODE_DIALPLAN__ALLOWED_PREFIXES": "+1;drop"})
    with pytest.raises(ConfigError, match="dialplan.extensions"):
        load_settings(env={"VOICENODE_DIALPLAN__EXTENSIONS": "100\r\nAction: x"})


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_outbound_calls_per_minute_per_tenant() -> None:
    clock = Clock()
    guard = DialGuard(NODE, clock)
    guard.take_call("demo")
    clock.now += 10
    guard.take_call("demo")
    with pytest.raises(RateLimited) as limited:
        guard.take_call("demo")
    assert limited.value.retry_after_s == 50  # the first start leaves the window at +60 s
    guard.take_call("other")  # another tenant has its own count
    guard.take_call("acme")
    with pytest.raises(RateLimited):
        guard.take_call("acme")  # its override: 1 a minute
    clock.now += 50
    guard.take_call("demo")  # the first start is out of the window
    with pytest.raises(RateLimited):
        guard.take_call("demo")


def test_zero_calls_per_minute_refuses_every_outbound_call() -> None:
    guard = DialGuard(DialPlanSettings(calls_per_minute=0), Clock())
    with pytest.raises(RateLimited) as limited:
        guard.take_call("demo")
    assert limited.value.retry_after_s == 60
