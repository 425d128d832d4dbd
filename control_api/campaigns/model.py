"""A campaign as the control API takes it (`POST /v1/campaigns`), validated at the edge.

`parse_campaign(body)` decodes and checks the JSON body; every problem is a `CampaignInvalid`
whose message names the field (`$.contacts[3].number`, `$.schedule.timezone`). Numbers are
E.164, time zones IANA names that `zoneinfo` knows, windows well-formed (days named once,
`start` before `end`, "HH:MM" local wall-clock times; `end` may be "24:00"), every count
bounded, and a contact's variables short string pairs. A contact may carry its own time zone
as the variable `timezone`; its calling windows are then read in that zone.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from msgspec import Meta

from core.errors import Refused

MAX_CONTACTS: Final = 10_000
MAX_VARIABLES: Final = 32
TIMEZONE_VARIABLE: Final = "timezone"
DAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""Day names, in `datetime.weekday()` order."""

Name = Annotated[str, Meta(min_length=1, max_length=128)]
AgentName = Annotated[str, Meta(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
E164 = Annotated[str, Meta(pattern=r"^\+[1-9][0-9]{1,14}$", description="An E.164 number")]
CallerId = Annotated[str, Meta(pattern=r"^[A-Za-z0-9+._~-]{1,64}$")]
VariableName = Annotated[str, Meta(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]
VariableValue = Annotated[str, Meta(max_length=1024)]
Variables = Annotated[dict[VariableName, VariableValue], Meta(max_length=MAX_VARIABLES)]
TimeZoneName = Annotated[str, Meta(pattern=r"^[A-Za-z][A-Za-z0-9_+/-]{0,63}$")]
ClockTime = Annotated[str, Meta(pattern=r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$")]
Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
RetryOutcome = Literal["busy", "no_answer", "failed", "machine"]
Via = Literal["sip", "asterisk"]
Voicemail = Literal["hang_up", "leave_message"]


class CampaignInvalid(Refused, ValueError):
    """A campaign body the node will not take; the message names the field. Not retryable."""


def check_timezone(name: str) -> None:
    """Raises `ValueError` unless `name` is an IANA time zone that `zoneinfo` knows."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


def minutes_of(clock: str) -> int:
    """Minutes after local midnight of a checked "HH:MM" (24:00 is 1440)."""
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


class Contact(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One number to call and the variables its agent may use in prompts."""

    number: E164
    variables: Variables = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        zone = self.variables.get(TIMEZONE_VARIABLE)
        if zone is not None:
            check_timezone(zone)

    @property
    def timezone(self) -> str | None:
        """The contact's own time zone, if its variables name one."""
        return self.variables.get(TIMEZONE_VARIABLE)


class Window(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Calls may start on `days` from `start` (inclusive) to `end` (exclusive), local time."""

    days: Annotated[tuple[Day, ...], Meta(min_length=1, max_length=7)]
    start: ClockTime
    end: ClockTime

    def __post_init__(self) -> None:
        if len(set(self.days)) != len(self.days):
            raise ValueError("a day is named twice")
        if minutes_of(self.start) >= minutes_of(self.end):
            raise ValueError(f"start {self.start} is not before end {self.end}")

    @property
    def start_minute(self) -> int:
        return minutes_of(self.start)

    @property
    def end_minute(self) -> int:
        return minutes_of(self.end)


class Schedule(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """When calls may start: any of `windows`, read in `timezone` (or the contact's zone)."""

    timezone: TimeZoneName
    windows: Annotated[tuple[Window, ...], Meta(min_length=1, max_length=14)]

    def __post_init__(self) -> None:
        check_timezone(self.timezone)


class Retry(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Which outcomes are tried again, how long after, and how many attempts in all."""

    max_attempts: Annotated[int, Meta(ge=1, le=10)] = 3
    backoff_minutes: Annotated[int, Meta(ge=1, le=10_080)] = 60
    on: Annotated[tuple[RetryOutcome, ...], Meta(max_length=4)] = ("busy", "no_answer", "failed")

    def __post_init__(self) -> None:
        if len(set(self.on)) != len(self.on):
            raise ValueError("an outcome is named twice")


class CampaignSettings(msgspec.Struct, frozen=True, kw_only=True):
    """A campaign without its contacts: what the store keeps as the campaign's body and what
    the dialler paces by. Unknown fields are ignored when it is read back from the store."""

    name: Name
    agent: AgentName
    via: Via
    schedule: Schedule
    max_concurrent: Annotated[int, Meta(ge=1, le=1000)]
    calls_per_minute: Annotated[int, Meta(ge=1, le=600)]
    from_: CallerId | None = msgspec.field(default=None, name="from")
    retry: Retry = msgspec.field(default_factory=Retry)
    voicemail: Voicemail = "hang_up"


class CampaignIn(CampaignSettings, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The body of `POST /v1/campaigns`: the settings and the contacts. `contacts` may be left
    out or empty: the draft is then filled by CSV uploads (a start needs at least one)."""

    contacts: Annotated[tuple[Contact, ...], Meta(max_length=MAX_CONTACTS)] = ()

    def __post_init__(self) -> None:
        seen: dict[str, int] = {}
        for index, contact in enumerate(self.contacts):
            first = seen.setdefault(contact.number, index)
            if first != index:
                raise ValueError(f"contacts[{index}] repeats the number of contacts[{first}]")

    def settings(self) -> CampaignSettings:
        """The campaign without its contacts."""
        names = CampaignSettings.__struct_fields__
        return CampaignSettings(**{name: getattr(self, name) for name in names})


def parse_campaign(body: bytes | str) -> CampaignIn:
    """The campaign in a JSON body, or `CampaignInvalid` naming what is wrong and where."""
    try:
        return msgspec.json.decode(body, type=CampaignIn)
    except msgspec.ValidationError as exc:
        raise CampaignInvalid(str(exc)) from exc
    except msgspec.DecodeError as exc:
        raise CampaignInvalid(f"not a JSON object: {exc}") from exc


def read_settings(body: object) -> CampaignSettings:
    """The settings of a campaign as the store keeps them (`msgspec.to_builtins` of a
    `CampaignSettings`; a body that still carries `contacts` is read without them)."""
    return msgspec.convert(body, CampaignSettings)
