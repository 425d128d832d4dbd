"""The campaign body (`control_api.campaigns.model`): what it takes and what it refuses."""

from __future__ import annotations

import json
from typing import Any

import pytest

from control_api.campaigns.model import CampaignInvalid, Retry, parse_campaign
from core.errors import Refused


def body(**changes: Any) -> dict[str, Any]:
    campaign: dict[str, Any] = {
        "name": "Reminders",
        "agent": "dentist",
        "via": "sip",
        "from": "+441234567890",
        "contacts": [
            {"number": "+14155550100", "variables": {"name": "Ada", "time": "10:30"}},
            {"number": "+14155550101"},
        ],
        "schedule": {
            "timezone": "America/New_York",
            "windows": [{"days": ["mon", "tue"], "start": "09:00", "end": "17:30"}],
        },
        "max_concurrent": 5,
        "calls_per_minute": 10,
        "retry": {"max_attempts": 3, "backoff_minutes": 30, "on": ["busy", "machine"]},
        "voicemail": "leave_message",
    }
    campaign.update(changes)
    return campaign


def refusal(campaign: dict[str, Any]) -> str:
    with pytest.raises(CampaignInvalid) as caught:
        parse_campaign(json.dumps(campaign))
    return str(caught.value)


def test_a_full_body_is_taken() -> None:
    campaign = parse_campaign(json.dumps(body()))
    assert campaign.from_ == "+441234567890"
    assert campaign.contacts[0].variables == {"name": "Ada", "time": "10:30"}
    assert campaign.contacts[1].variables == {}
    assert campaign.schedule.windows[0].start_minute == 9 * 60
    assert campaign.schedule.windows[0].end_minute == 17 * 60 + 30
    assert campaign.retry.on == ("busy", "machine")
    assert campaign.voicemail == "leave_message"


def test_contacts_may_be_empty_or_left_out() -> None:
    """A draft filled by CSV uploads afterwards (its start needs a contact by then)."""
    assert parse_campaign(json.dumps(body(contacts=[]))).contacts == ()
    minimal = body()
    del minimal["contacts"]
    assert parse_campaign(json.dumps(minimal)).contacts == ()


def test_defaults() -> None:
    minimal = body()
    for key in ("from", "retry", "voicemail"):
        del minimal[key]
    campaign = parse_campaign(json.dumps(minimal))
    assert campaign.from_ is None
    assert campaign.retry == Retry()
    assert campaign.voicemail == "hang_up"


def test_the_refusal_is_a_refused_value_error_that_is_not_retryable() -> None:
    with pytest.raises(CampaignInvalid) as caught:
        parse_campaign(b"[1, 2")
    assert isinstance(caught.value, Refused)
    assert isinstance(caught.value, ValueError)
    assert not caught.value.retryable


@pytest.mark.parametrize("number", ["4155550100", "+0123", "+1", "+1415555010012345", "+1 415"])
def test_numbers_must_be_e164(number: str) -> None:
    message = refusal(body(contacts=[{"number": number}]))
    assert "$.contacts[0].number" in message


def test_a_repeated_number_names_both_contacts() -> None:
    contacts = [{"number": "+14155550100"}, {"number": "+14155550199"}, {"number": "+14155550100"}]
    assert "contacts[2] repeats the number of contacts[0]" in refusal(body(contacts=contacts))


@pytest.mark.parametrize("zone", ["Mars/Olympus", "../../etc/passwd", "", "America/New_York/x"])
def test_the_campaign_time_zone_must_be_iana(zone: str) -> None:
    campaign = body(schedule={"timezone": zone, "windows": body()["schedule"]["windows"]})
    assert "$.schedule" in refusal(campaign)


def test_a_contact_time_zone_must_be_iana() -> None:
    contacts = [{"number": "+14155550100", "variables": {"timezone": "Nowhere/City"}}]
    message = refusal(body(contacts=contacts))
    assert "unknown time zone 'Nowhere/City'" in message
    assert "$.contacts[0]" in message


def test_a_contact_time_zone_is_read_from_its_variables() -> None:
    contacts = [{"number": "+14155550100", "variables": {"timezone": "Europe/Berlin"}}]
    campaign = parse_campaign(json.dumps(body(contacts=contacts)))
    assert campaign.contacts[0].timezone == "Europe/Berlin"


@pytest.mark.parametrize(
    ("window", "fragment"),
    [
        ({"days": ["mon"], "start": "17:00", "end": "09:00"}, "is not before end"),
        ({"days": ["mon"], "start": "09:00", "end": "09:00"}, "is not before end"),
        ({"days": ["mon", "mon"], "start": "09:00", "end": "10:00"}, "a day is named twice"),
        ({"days": [], "start": "09:00", "end": "10:00"}, "length >= 1"),
        ({"days": ["monday"], "start": "09:00", "end": "10:00"}, "$.schedule.windows[0].days"),
        ({"days": ["mon"], "start": "9:00", "end": "10:00"}, "$.schedule.windows[0].start"),
        ({"days": ["mon"], "start": "24:00", "end": "24:00"}, "is not before end"),
        ({"days": ["mon"], "start": "09:00", "end": "24:01"}, "$.schedule.windows[0].end"),
    ],
)
def test_windows_must_be_well_formed(window: dict[str, Any], fragment: str) -> None:
    campaign = body(schedule={"timezone": "UTC", "windows": [window]})
    assert fragment in refusal(campaign)


def test_a_window_may_end_at_midnight() -> None:
    window = {"days": ["sun"], "start": "20:00", "end": "24:00"}
    campaign = parse_campaign(json.dumps(body(schedule={"timezone": "UTC", "windows": [window]})))
    assert campaign.schedule.windows[0].end_minute == 24 * 60


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_concurrent", 0),
        ("max_concurrent", 1001),
        ("calls_per_minute", 0),
        ("calls_per_minute", 601),
        ("name", ""),
        ("name", "x" * 129),
        ("agent", "Not An Agent"),
        ("via", "webrtc"),
        ("voicemail", "shout"),
        ("from", "sip:x@y"),
    ],
)
def test_bounds_on_the_top_level_fields(field: str, value: object) -> None:
    assert f"$.{field}" in refusal(body(**{field: value}))


@pytest.mark.parametrize(
    ("retry", "path"),
    [
        ({"max_attempts": 0}, "$.retry.max_attempts"),
        ({"max_attempts": 11}, "$.retry.max_attempts"),
        ({"backoff_minutes": 0}, "$.retry.backoff_minutes"),
        ({"backoff_minutes": 10_081}, "$.retry.backoff_minutes"),
        ({"on": ["answered"]}, "$.retry.on[0]"),
        ({"on": ["busy", "busy"]}, "$.retry"),
    ],
)
def test_bounds_on_the_retry_policy(retry: dict[str, Any], path: str) -> None:
    assert path in refusal(body(retry=retry))


@pytest.mark.parametrize(
    "variables",
    [
        {"": "x"},
        {"1st": "x"},
        {"name with space": "x"},
        {"k" * 65: "x"},
        {"name": "v" * 1025},
        {"name": 3},
        {f"v{i}": "x" for i in range(33)},
    ],
)
def test_contact_variables_are_short_string_pairs(variables: dict[str, Any]) -> None:
    contacts = [{"number": "+14155550100", "variables": variables}]
    assert "$.contacts[0].variables" in refusal(body(contacts=contacts))


def test_unknown_fields_are_refused() -> None:
    assert "unknown field `colour`" in refusal(body(colour="blue"))


def test_contacts_are_bounded() -> None:
    contacts = [{"number": f"+1415{i:07d}"} for i in range(10_001)]
    assert "$.contacts" in refusal(body(contacts=contacts))
