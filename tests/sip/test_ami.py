"""The AMI client and Asterisk call control against an AMI double speaking the real protocol."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core.backoff import backoff
from media.call import CallControlError
from sip.ami import (
    AmiActionFailed,
    AmiClient,
    AmiError,
    AmiEvent,
    AmiFieldInvalid,
    AmiLoginFailed,
    AmiNotConnected,
    AmiOptions,
)
from sip.asterisk_calls import (
    AsteriskChannels,
    AsteriskControl,
    ChannelDtmf,
    ChannelEvent,
    ChannelHungUp,
    ChannelUp,
    OriginateResult,
)
from tests.support.ami_double import AmiDouble

SECRET = "s3cret-never-logged"
CALL = str(uuid.UUID("00000001-0000-4000-8000-00000000abcd"))


def options(port: int, secret: str = SECRET) -> AmiOptions:
    return AmiOptions(
        host="127.0.0.1",
        port=port,
        username="voicenode",
        secret=secret,
        backoff_initial_s=0.01,
        backoff_max_s=0.05,
        action_timeout_s=2.0,
    )


@pytest.fixture
async def ami() -> AsyncIterator[AmiDouble]:
    async with AmiDouble(secret=SECRET) as double:
        yield double


class Tracked:
    """A client whose events feed an `AsteriskChannels`; the call events it reports are kept."""

    def __init__(self, port: int) -> None:
        self.channels = AsteriskChannels()
        self.events: list[ChannelEvent] = []
        self.raw: list[AmiEvent] = []
        self._got = asyncio.Event()
        self.client = AmiClient(options(port), self._on_event)
        self.control = AsteriskControl(
            self.client, self.channels, transfer_context="voicenode-transfer", channel_timeout_s=0.2
        )

    def _on_event(self, event: AmiEvent) -> None:
        self.raw.append(event)
        if (reported := self.channels.feed(event)) is not None:
            self.events.append(reported)
        self._got.set()

    async def wait_event(self, kind: type, limit_s: float = 2.0) -> ChannelEvent:
        async with asyncio.timeout(limit_s):
            while not any(isinstance(e, kind) for e in self.events):
                self._got.clear()
                await self._got.wait()
        return next(e for e in self.events if isinstance(e, kind))


@pytest.fixture
async def tracked(ami: AmiDouble) -> AsyncIterator[Tracked]:
    t = Tracked(ami.port)
    async with t.client:
        async with asyncio.timeout(2):
            await t.client.wait_connected()
        yield t


async def test_login_and_an_action(ami: AmiDouble, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with AmiClient(options(ami.port)) as client:
        async with asyncio.timeout(2):
            await client.wait_connected()
        response = await client.action("Ping")
    assert response.get("ping") == "Pong" and response.get("Response") == "Success"
    assert ami.logins == 1
    login = ami.named("login")[0]
    assert login["username"] == ["voicenode"] and login["secret"] == [SECRET]
    assert login["events"] == ["on"] and login["actionid"][0]
    assert SECRET not in caplog.text and SECRET not in repr(options(ami.port))


async def test_login_failure_is_reported_and_the_secret_not_logged(
    ami: AmiDouble, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with AmiClient(options(ami.port, secret="wrong-secret-xyz")) as client:
        async with asyncio.timeout(2):
            with pytest.raises(AmiLoginFailed, match="Authentication failed"):
                await client.wait_connected()
        with pytest.raises(AmiNotConnected):
            await client.action("Ping")
        assert not client.connected
    assert ami.failed_logins >= 1 and ami.logins == 0
    assert "wrong-secret-xyz" not in caplog.text
    assert "AMI login refused" in caplog.text


INJECTED = "100\r\n\r\nAction: Originate\r\nChannel: Local/s@x\r\nApplication: System\r\nData: id"


@pytest.mark.parametrize(
    "fields",
    [
        {"Channel": "PJSIP/caller-1", "Variable": "VOICENODE_TRANSFER_TARGET", "Value": INJECTED},
        {"Channel": "PJSIP/caller-1", "Variable": ["A=1", "B=2\nAction: Originate"]},
        {"Channel": "PJSIP/caller-1\x00", "Variable": "A", "Value": "1"},
        {"Channel\r\nAction: Originate": "x"},
        {"Chan:nel": "x"},
    ],
)
async def test_a_field_with_a_line_break_or_nul_is_never_written(
    tracked: Tracked, ami: AmiDouble, fields: dict[str, str]
) -> None:
    """Defence in depth: whatever reaches the client, one field stays one line."""
    sent_before = len(ami.actions)
    with pytest.raises(AmiFieldInvalid, match="not sent|invalid header name"):
        await tracked.client.action("Setvar", fields)
    await tracked.client.action("Ping")  # the connection is fine, and in order
    assert [a["action"] for a in ami.actions[sent_before:]] == [["Ping"]]
    assert not ami.named("originate") and not ami.named("setvar")


async def test_a_secret_with_a_line_break_is_never_sent(ami: AmiDouble) -> None:
    async with AmiClient(options(ami.port, secret=f"{SECRET}\r\nAction: Originate")) as client:
        async with asyncio.timeout(2):
            with pytest.raises(AmiLoginFailed, match="line break"):
                await client.wait_connected()
    assert not ami.actions and ami.logins == 0


async def test_no_server_then_backoff_then_connects() -> None:
    async with AmiDouble(secret=SECRET) as ami:
        port = ami.port
    # Nothing listens on `port` now: the client retries with backoff until the server is back.
    opts = options(port)
    delays = [backoff(n, opts.backoff_initial_s, opts.backoff_max_s) for n in range(5)]
    assert delays == [0, 0.01, 0.02, 0.04, 0.05]
    async with AmiClient(options(port)) as client:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.1):
                await client.wait_connected()
        assert isinstance(client.last_error, AmiNotConnected)


async def test_reconnects_after_the_server_drops(ami: AmiDouble) -> None:
    ami.unanswered.add("status")
    async with AmiClient(options(ami.port)) as client:
        async with asyncio.timeout(2):
            await client.wait_connected()
        pending = asyncio.create_task(client.action("Status"))
        await ami.wait_until(lambda: ami.named("status"))
        await ami.drop_all()
        with pytest.raises(AmiNotConnected, match="lost during Status"):
            await pending
        await ami.wait_until(lambda: ami.logins == 2)
        async with asyncio.timeout(2):
            await client.wait_connected()
        assert client.logins == 2
        assert (await client.action("Ping")).get("ping") == "Pong"


async def test_an_action_asterisk_refuses_raises(tracked: Tracked) -> None:
    with pytest.raises(AmiActionFailed, match="Invalid/unknown command"):
        await tracked.client.action("NoSuchAction")


async def test_originate_and_its_events_are_correlated_to_the_call(
    ami: AmiDouble, tracked: Tracked
) -> None:
    await tracked.control.originate(
        call_uuid=CALL,
        channel="PJSIP/+15550100@trunk",
        context="voicenode-outbound",
        exten="s",
        timeout_s=30,
        caller_id="Clinic <100>",
        variables={"VOICENODE_AUDIOSOCKET": "127.0.0.1:9092"},
    )
    sent = ami.named("originate")[0]
    assert sent["channel"] == ["PJSIP/+15550100@trunk"] and sent["context"] == [
        "voicenode-outbound"
    ]
    assert sent["channelid"] == [CALL] and sent["async"] == ["true"]
    assert sent["timeout"] == ["30000"] and sent["callerid"] == ["Clinic <100>"]
    assert sent["variable"] == [f"VOICENODE_UUID={CALL}", "VOICENODE_AUDIOSOCKET=127.0.0.1:9092"]
    up = await tracked.wait_event(ChannelUp)
    result = await tracked.wait_event(OriginateResult)
    assert isinstance(up, ChannelUp) and up.call_uuid == CALL
    assert up.channel.startswith("PJSIP/+15550100@trunk-")
    assert result == OriginateResult(CALL, True, "4")
    assert tracked.channels.channel_of(CALL) == up.channel

    # DTMF the caller pressed, reported by Asterisk, is correlated too.
    ami.emit("DTMFEnd", Channel=up.channel, Uniqueid=CALL, Digit="5", Direction="Received")
    dtmf = await tracked.wait_event(ChannelDtmf)
    assert dtmf == ChannelDtmf(CALL, "5", "Received")

    # Transfer: the target in a channel variable, then Redirect to the transfer context.
    await tracked.control.far_end(CALL).transfer("+15550199")
    setvar, redirect = ami.named("setvar")[0], ami.named("redirect")[0]
    assert setvar["channel"] == [up.channel] and setvar["value"] == ["+15550199"]
    assert setvar["variable"] == ["VOICENODE_TRANSFER_TARGET"]
    assert redirect["channel"] == [up.channel] and redirect["context"] == ["voicenode-transfer"]
    assert redirect["exten"] == ["+15550199"] and redirect["priority"] == ["1"]
    await tracked.control.redirect(CALL, "sip:frontdesk@clinic.example")
    assert ami.named("redirect")[1]["exten"] == ["s"]
    # Only the transfer context: no `context,exten,priority`, nothing that is not a destination.
    for target in ("other-context,200,2", "100\r\nAction: Originate"):
        with pytest.raises(AmiError, match="not a transfer destination"):
            await tracked.control.redirect(CALL, target)
    assert len(ami.named("redirect")) == 2 and len(ami.named("setvar")) == 2

    await tracked.control.far_end(CALL).send_dtmf("12")
    assert [a["digit"] for a in ami.named("playdtmf")] == [["1"], ["2"]]

    await tracked.control.far_end(CALL).hangup()
    assert ami.named("hangup")[0]["channel"] == [up.channel]
    hung = await tracked.wait_event(ChannelHungUp)
    assert hung == ChannelHungUp(CALL, up.channel, "Normal Clearing")
    assert tracked.channels.channel_of(CALL) is None and len(tracked.channels) == 0


async def test_a_busy_far_end_is_an_unsuccessful_originate(
    ami: AmiDouble, tracked: Tracked
) -> None:
    ami.originate_outcome = "busy"
    await tracked.control.originate(
        call_uuid=CALL, channel="PJSIP/200@trunk", context="c", exten="s", timeout_s=5
    )
    assert await tracked.wait_event(OriginateResult) == OriginateResult(CALL, False, "5")
    hung = await tracked.wait_event(ChannelHungUp)
    assert isinstance(hung, ChannelHungUp) and hung.cause == "User busy"
    ami.originate_outcome = "error"
    with pytest.raises(AmiActionFailed, match="Originate failed"):
        await tracked.control.originate(
            call_uuid=CALL, channel="PJSIP/200@trunk", context="c", exten="s", timeout_s=5
        )


async def test_inbound_channels_are_bound_by_their_uuid_variable(
    ami: AmiDouble, tracked: Tracked
) -> None:
    # A call the PBX routed to AudioSocket: the dialplan's Set(VOICENODE_UUID=...) is a VarSet.
    ami.add_channel("PJSIP/alice-00000001", "1700000000.1")
    ami.emit("Newchannel", Channel="PJSIP/alice-00000001", Uniqueid="1700000000.1")
    ami.emit(
        "VarSet", Channel="PJSIP/alice-00000001", Uniqueid="1700000000.1",
        Variable="VOICENODE_UUID", Value=CALL.upper(),
    )  # fmt: skip
    up = await tracked.wait_event(ChannelUp)
    assert up == ChannelUp(CALL, "PJSIP/alice-00000001")
    # Or from `channelvars` in manager.conf: ChanVariable headers on any channel event.
    other = str(uuid.uuid4())
    ami.emit(
        "Newstate", Channel="PJSIP/bob-00000002", Uniqueid="1700000000.2",
        ChanVariable=f"VOICENODE_UUID={other}",
    )  # fmt: skip
    await ami.wait_until(lambda: True)
    async with asyncio.timeout(2):
        assert await tracked.channels.wait_channel(other) == "PJSIP/bob-00000002"


async def test_control_of_an_unknown_call_is_a_call_control_error(tracked: Tracked) -> None:
    with pytest.raises(CallControlError, match="no Asterisk channel is known"):
        await tracked.control.far_end(str(uuid.uuid4())).transfer("100")
    with pytest.raises(AmiError):
        await tracked.control.hangup(str(uuid.uuid4()))


def test_the_sample_manager_conf_grants_no_system_and_listens_on_loopback() -> None:
    """`system` write lets an Originate run System()/Exec() (shell on the PBX); AMI listening
    on every interface invites anyone to try the secret."""
    conf = Path(__file__).parents[2] / "deploy" / "asterisk" / "manager.conf"
    sections: dict[str, dict[str, str]] = {}
    section = ""
    for raw in conf.read_text().splitlines():
        line = raw.split(";", 1)[0].strip()
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            sections[section] = {}
        elif "=" in line:
            key, _, value = line.partition("=")
            sections[section][key.strip()] = value.strip()
    assert sections["general"]["bindaddr"] == "127.0.0.1"
    user = sections["voicenode"]
    assert "system" not in {c.strip() for c in user["write"].split(",")}
    assert set(user["write"].split(",")) == {"originate", "call"}
    assert user["deny"] == "0.0.0.0/0.0.0.0" and user["permit"].startswith("127.0.0.1/")
