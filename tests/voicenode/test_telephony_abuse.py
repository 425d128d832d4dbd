"""Telephony abuse through Asterisk, against the real HTTP API, the AudioSocket listener and an
AMI double speaking the real protocol (issue 12, items 2 and 3).

A transfer target or dialled number with CR/LF would inject whole AMI actions (an `Originate`
of `Application: System`); one outside the operator's dial plan would be toll fraud. Both are
refused before anything reaches AMI, the call goes on, and errors never echo Asterisk's text.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import msgspec
import pytest

from config.schema import (
    AmiSettings,
    AudioSocketSettings,
    DialPlanOverride,
    DialPlanSettings,
)
from media.call import Call, CallControlError, CallInfo
from media.transport import Transport
from pipeline.events import EventCallback
from tests.support.ami_double import AmiDouble
from tests.support.audiosocket_client import AudioSocketClient
from tests.support.harness import Node, auth, node_settings, serve_node
from tests.support.host import FakeHost, temp_store
from voicenode.audiosocket_listener import audiosocket_listener

pytestmark = pytest.mark.timeout(60)

SECRET = "abuse-test-secret"
PLAN = DialPlanSettings(
    allowed_prefixes=("+1555",),
    allowed_domains=("clinic.example",),
    extensions=("100",),
    calls_per_minute=1,
    tenants={"acme": DialPlanOverride(calls_per_minute=5)},
)
INJECTION = (
    "100\r\n\r\nAction: Originate\r\nChannel: Local/s@default\r\nApplication: System\r\n"
    "Data: touch /tmp/voicenode-pwned"
)
NOT_ALLOWED = [
    ("+19005550100", 403),  # premium rate
    ("+442071234567", 403),  # international: not in the plan
    ("sip:desk@evil.example", 403),
    ("200", 403),  # an extension the plan does not list
    (INJECTION, 400),
    ("100\nChannel: Local/1@default", 400),
    ("default,100,1", 400),  # Redirect's old `context,exten,priority`
    ("sip:desk@clinic.example,,G(evil^s^1)", 400),  # Dial() options
    ("sip:desk@clinic.example&PJSIP/evil", 400),  # a second Dial() channel
]


class TransferringHost(FakeHost):
    """Runs each call like FakeHost, after asking for `targets` transfers first, as the
    model's `transfer_call` tool or a flow's `transfer` step does (through the call control
    the node hands to the conversation)."""

    def __init__(self) -> None:
        super().__init__(
            max_calls=4,
            agents=frozenset({("demo", "receptionist"), ("acme", "receptionist")}),
        )
        self.targets: list[str] = []
        self.outcomes: list[str] = []
        self.tried = asyncio.Event()

    async def run_call(
        self,
        info: CallInfo,
        agent: str,
        transport: Transport,
        call: Call,
        on_event: EventCallback,
    ) -> None:
        for target in self.targets:
            try:
                await call.transfer(target)
                self.outcomes.append("transferred")
            except CallControlError as exc:
                self.outcomes.append(str(exc))
        self.tried.set()
        await super().run_call(info, agent, transport, call, on_event)


@dataclass
class Env:
    node: Node
    host: TransferringHost
    ami: AmiDouble
    port: int


@asynccontextmanager
async def telephony() -> AsyncIterator[Env]:
    host = TransferringHost()
    settings = msgspec.structs.replace(
        node_settings(max_calls=4),
        audiosocket=AudioSocketSettings(port=0, default_agent="demo/receptionist"),
        ami=AmiSettings(host="127.0.0.1", username="voicenode", secret=SECRET,
                        backoff_initial_s=0.01),
        dialplan=PLAN,
    )  # fmt: skip
    async with temp_store() as store, AmiDouble(secret=SECRET) as ami:
        await host.attach_store(store)
        settings = msgspec.structs.replace(
            settings, ami=msgspec.structs.replace(settings.ami, port=ami.port)
        )
        async with (
            audiosocket_listener(settings, host) as server,  # type: ignore[arg-type]
            serve_node(host, settings) as node,
        ):
            assert server is not None
            host.calls.use_dialplan(PLAN, clock=lambda: 0.0)  # no time passes: no window ends
            await ami.wait_until(lambda: ami.logins == 1)
            yield Env(node, host, ami, server.port)
    assert host.active_calls() == 0


async def inbound_call(env: Env, n: int) -> tuple[AudioSocketClient, CallInfo, str]:
    """An Asterisk channel carrying a call over AudioSocket, its UUID known over AMI."""
    call_uuid, channel, uniqueid = uuid.uuid4(), f"PJSIP/caller-{n:08x}", f"1700000000.{n}"
    env.ami.add_channel(channel, uniqueid)
    client = await AudioSocketClient.connect(env.port)
    await client.send_uuid(call_uuid)
    env.ami.emit("Newchannel", Channel=channel, Uniqueid=uniqueid)
    env.ami.emit(
        "VarSet", Channel=channel, Uniqueid=uniqueid, Variable="VOICENODE_UUID",
        Value=str(call_uuid),
    )  # fmt: skip
    async with asyncio.timeout(10):
        info = await env.host.started.get()
    return client, info, channel


def sent_call_control(ami: AmiDouble) -> list[str]:
    return [a["action"][0] for a in ami.actions if a["action"][0].lower() != "login"]


async def test_api_transfers_refuse_injection_and_targets_outside_the_plan() -> None:
    async with telephony() as env:
        client, info, channel = await inbound_call(env, 1)
        other, other_info, _ = await inbound_call(env, 2)
        url = f"/v1/calls/{info.call_id}/transfer"
        for target, status in NOT_ALLOWED:
            refused = await env.node.http.post(url, json={"target": target}, headers=auth())
            assert refused.status_code == status, (target, refused.text)
            detail = refused.json()["detail"]
            assert target not in detail and "\r" not in detail and "\n" not in detail
        # Nothing reached Asterisk: no Setvar, no Redirect, and no injected Originate.
        assert sent_call_control(env.ami) == []
        assert env.node.host.calls.get(info.call_id) is not None  # the call goes on
        assert env.node.host.calls.get(other_info.call_id) is not None

        done = await env.node.http.post(url, json={"target": "100"}, headers=auth())
        assert done.status_code == 204, done.text
        (redirect,) = env.ami.named("redirect")
        assert redirect["channel"] == [channel] and redirect["exten"] == ["100"]
        assert redirect["context"] == ["voicenode-transfer"]
        assert not env.ami.named("originate")
        for c in (client, other):
            await c.close()
        async with asyncio.timeout(10):
            await env.host.finished.get()
            await env.host.finished.get()


async def test_the_conversations_transfers_go_through_the_dial_plan() -> None:
    """The model's `transfer_call` and a flow's `transfer` reach the call control handed to
    the conversation: a refused target is a failed action (the call goes on), never AMI."""
    async with telephony() as env:
        env.host.targets = [INJECTION, "sip:desk@evil.example", "+19005550100"]
        env.host.targets.append("sip:desk@clinic.example")
        client, _, channel = await inbound_call(env, 3)
        async with asyncio.timeout(10):
            await env.host.tried.wait()
        refused, allowed = env.host.outcomes[:3], env.host.outcomes[3]
        assert all(o.startswith("transfer refused: ") for o in refused), refused
        assert allowed == "transferred"
        assert [a["action"][0] for a in env.ami.actions[1:]] == ["Setvar", "Redirect"]
        assert env.ami.named("setvar")[0]["value"] == ["sip:desk@clinic.example"]
        assert env.ami.named("redirect")[0]["channel"] == [channel]
        await client.close()
        async with asyncio.timeout(10):
            await env.host.finished.get()


async def test_outbound_calls_obey_the_plan_and_the_rate_and_hide_asterisks_text() -> None:
    async with telephony() as env:
        http = env.node.http
        for to, status in NOT_ALLOWED:
            body = {"agent": "receptionist", "to": to, "via": "asterisk", "tenant": "demo"}
            refused = await http.post("/v1/calls", json=body, headers=auth())
            assert refused.status_code == status, (to, refused.text)
            assert to not in refused.text
        assert sent_call_control(env.ami) == []

        body = {"agent": "receptionist", "to": "+15550100", "via": "asterisk", "tenant": "demo"}
        placed = await http.post("/v1/calls", json=body, headers=auth())
        assert placed.status_code == 201, placed.text
        (originate,) = env.ami.named("originate")
        assert originate["channel"] == ["PJSIP/+15550100@trunk"]
        # calls_per_minute = 1 for demo: the next call waits (the window is on a frozen clock)
        limited = await http.post("/v1/calls", json=body, headers=auth())
        assert limited.status_code == 429, limited.text
        assert limited.headers["retry-after"] == "60"
        assert len(env.ami.named("originate")) == 1
        # acme's own limit (its override) is untouched by demo's calls
        env.ami.originate_outcome = "error"  # Asterisk answers "Originate failed"
        acme = {**body, "tenant": "acme"}
        failed = await http.post("/v1/calls", json=acme, headers=auth())
        assert failed.status_code == 502, failed.text
        assert failed.json()["detail"] == "the PBX refused the call"
        assert len(env.ami.named("originate")) == 2


async def test_an_agent_naming_a_malformed_transfer_target_is_refused_when_saved() -> None:
    spec = (
        'name = "sneaky"\nkind = "flow"\ngreeting = "Hi."\n'
        'transfer_target = "100\\r\\nAction: Originate\\r\\nApplication: System"\n'
        '[flow]\nstart = "main"\n[flow.nodes.main]\ndo = [{ transfer = "" }]\n'
    )
    async with telephony() as env:
        saved = await env.node.http.post("/v1/agents", json={"toml": spec}, headers=auth())
        assert saved.status_code == 400, saved.text
        assert "transfer_target: not a transfer destination" in saved.json()["detail"]
        assert "Originate" not in saved.text
        listed = await env.node.http.get("/v1/agents", headers=auth())
        assert "sneaky" not in listed.text
