"""The AudioSocket listener on a fake host (echoing agent, real admission, store and quotas):
UUID routing, refusals, and outbound calls through an AMI double."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import msgspec
import numpy as np
import pytest

from config.schema import AmiSettings, AudioSocketSettings, DialPlanSettings, Settings
from control_api.host import DialError, OverCapacity
from media.audiosocket import ErrorCode
from media.call import Direction
from tests.support.ami_double import AmiDouble
from tests.support.audiosocket_client import AudioSocketClient
from tests.support.harness import auth, node_settings, serve_node
from tests.support.host import FakeHost, temp_store
from tests.support.load_fakes import LoadDriver
from voicenode.asterisk import AsteriskDialer
from voicenode.audiosocket_listener import audiosocket_listener

SECRET = "listener-secret"


@asynccontextmanager
async def listening(host: FakeHost, **audiosocket: Any) -> AsyncIterator[int]:
    settings = Settings(audiosocket=AudioSocketSettings(port=0, **audiosocket))
    async with audiosocket_listener(settings, host) as server:  # type: ignore[arg-type]
        assert server is not None
        yield server.port


@pytest.fixture
async def host() -> AsyncIterator[FakeHost]:
    async with temp_store() as store:
        h = FakeHost(max_calls=2)
        await h.attach_store(store)
        yield h
        assert h.active_calls() == 0


def speech(seconds: float = 0.5) -> np.ndarray:  # type: ignore[type-arg]
    t = np.arange(int(8000 * seconds)) / 8000
    return (np.sin(2 * np.pi * 300 * t) * 8000).astype(np.int16)


async def refused(port: int, call_uuid: uuid.UUID) -> list[bytes]:
    client = await AudioSocketClient.connect(port)
    await client.send_uuid(call_uuid)
    async with asyncio.timeout(1):
        await client.closed.wait()
    await client.close()
    return client.received.errors


async def test_an_unknown_uuid_reaches_the_default_agent(host: FakeHost) -> None:
    async with listening(host) as port:
        client = await AudioSocketClient.connect(port)
        call_uuid = uuid.uuid4()
        await client.send_uuid(call_uuid)
        async with asyncio.timeout(5):
            info = await host.started.get()
        assert info.tenant_id == "demo"
        # the UUID routes; the call id is the node's own
        assert info.call_id != call_uuid.hex and info.from_uri == f"audiosocket:{call_uuid}"
        assert info.transport == "audiosocket" and info.direction == Direction.INBOUND
        assert host.pinned[info.call_id].name == "receptionist"
        await client.stream(speech(), realtime=False)
        # The fake agent echoes: the caller's audio comes back, at 8 kHz, in 20 ms messages.
        await client.wait_for(lambda: len(client.received.audio_sizes) >= 10, limit_s=5)
        assert set(client.received.audio_sizes) == {320}
        await client.send_hangup()
        async with asyncio.timeout(5):
            assert await host.finished.get() == info.call_id
            await client.closed.wait()
        await client.close()
        async with asyncio.timeout(5):
            await host.wait_idle()  # LiveCalls releases the admission when the call ends


async def test_without_a_default_agent_only_routed_prefixes_are_answered(host: FakeHost) -> None:
    routed = uuid.UUID("0000000a-1234-4000-8000-000000000001")
    async with listening(host, default_agent="", routes={"0000000A": "demo/receptionist"}) as port:
        assert await refused(port, uuid.uuid4()) == [bytes((ErrorCode.UNKNOWN_CALL,))]
        client = await AudioSocketClient.connect(port)
        await client.send_uuid(routed)
        async with asyncio.timeout(5):
            info = await host.started.get()
        assert info.to_uri == "agent:receptionist" and info.from_uri == f"audiosocket:{routed}"
        await client.close()


async def test_an_unknown_agent_is_refused(host: FakeHost) -> None:
    async with listening(host, default_agent="demo/nobody") as port:
        assert await refused(port, uuid.uuid4()) == [bytes((ErrorCode.UNKNOWN_CALL,))]


async def test_full_draining_or_loading_nodes_refuse(host: FakeHost) -> None:
    async with listening(host) as port:
        host.ready = False  # the fake admits anyway; the real node refuses while loading
        c1 = await AudioSocketClient.connect(port)
        c2 = await AudioSocketClient.connect(port)
        await c1.send_uuid(uuid.uuid4())
        await c2.send_uuid(uuid.uuid4())
        async with asyncio.timeout(5):
            await host.started.get()
            await host.started.get()
        assert await refused(port, uuid.uuid4()) == [bytes((ErrorCode.REFUSED,))]  # max_calls 2
        await c1.close()
        await c2.close()
        async with asyncio.timeout(5):
            await host.finished.get()
            await host.finished.get()
        async with asyncio.timeout(5):
            await host.wait_idle()
        host.start_drain()
        assert await refused(port, uuid.uuid4()) == [bytes((ErrorCode.REFUSED,))]


async def test_saturated_engines_refuse_new_calls_and_live_calls_go_on(host: FakeHost) -> None:
    load = LoadDriver()
    host.engines = load.engines  # the fake host's admission reads this estimator
    async with listening(host) as port:
        live = await AudioSocketClient.connect(port)
        await live.send_uuid(uuid.uuid4())
        async with asyncio.timeout(5):
            await host.started.get()
        load.saturate()
        assert await refused(port, uuid.uuid4()) == [bytes((ErrorCode.REFUSED,))]
        assert host.active_calls() == 1
        await live.stream(speech(), realtime=False)  # the live call still echoes
        await live.wait_for(lambda: len(live.received.audio_sizes) >= 10, limit_s=5)
        await live.send_hangup()
        async with asyncio.timeout(5):
            await host.finished.get()
        await live.close()
        load.relieve()
        again = await AudioSocketClient.connect(port)
        await again.send_uuid(uuid.uuid4())
        async with asyncio.timeout(5):
            await host.started.get()
        await again.close()
        async with asyncio.timeout(5):
            await host.finished.get()
            await host.wait_idle()


@asynccontextmanager
async def with_ami(host: FakeHost, ami: AmiDouble) -> AsyncIterator[int]:
    settings = Settings(
        audiosocket=AudioSocketSettings(port=0, default_agent=""),
        ami=AmiSettings(
            host="127.0.0.1", port=ami.port, username="voicenode", secret=SECRET,
            originate_channel="PJSIP/{to}@carrier", backoff_initial_s=0.01,
        ),
    )  # fmt: skip
    async with audiosocket_listener(settings, host) as server:  # type: ignore[arg-type]
        assert server is not None
        await ami.wait_until(lambda: ami.logins == 1)
        yield server.port
    assert "asterisk" not in host.dialers


async def test_an_outbound_call_through_asterisk(host: FakeHost) -> None:
    async with AmiDouble(secret=SECRET) as ami, with_ami(host, ami) as port:
        dialer = host.dialers["asterisk"]
        assert isinstance(dialer, AsteriskDialer)
        call_id = uuid.uuid4().hex
        async with asyncio.timeout(5):
            await dialer.dial(
                call_id=call_id, tenant_id="demo", agent="receptionist", to="+15550100"
            )
        sent = ami.named("originate")[0]
        call_uuid = uuid.UUID(call_id)
        assert sent["channel"] == ["PJSIP/+15550100@carrier"] and sent["channelid"] == [
            str(call_uuid)
        ]
        assert f"VOICENODE_AUDIOSOCKET=127.0.0.1:{port}" in sent["variable"]
        assert host.active_calls() == 1  # admitted while it rings
        # Asterisk runs AudioSocket(${VOICENODE_UUID},...) on the answered channel:
        client = await AudioSocketClient.connect(port)
        await client.send_uuid(call_uuid)
        async with asyncio.timeout(5):
            info = await host.started.get()
        assert info.call_id == call_id and info.direction == Direction.OUTBOUND
        assert info.to_uri == "+15550100"
        live = host.calls.get(call_id)
        assert live is not None
        # Call control goes through AMI on the originated channel.
        async with asyncio.timeout(5):
            await live.control.transfer("200")
            await live.control.send_dtmf("9")
        channel = ami.named("originate")[0]["channel"][0]
        assert ami.named("redirect")[0]["channel"][0].startswith(channel)
        assert ami.named("redirect")[0]["exten"] == ["200"]
        assert ami.named("playdtmf")[0]["digit"] == ["9"]
        await client.close()
        async with asyncio.timeout(5):
            await host.finished.get()


async def test_failed_originates_give_the_admission_back(host: FakeHost) -> None:
    async with AmiDouble(secret=SECRET) as ami, with_ami(host, ami):
        dialer = host.dialers["asterisk"]
        ami.originate_outcome = "error"
        with pytest.raises(DialError, match="refused") as refused_exc:
            await dialer.dial(call_id=uuid.uuid4().hex, tenant_id="demo", agent="a", to="100")
        assert refused_exc.value.status == 502
        assert host.active_calls() == 0
        ami.originate_outcome = "busy"
        await dialer.dial(call_id=uuid.uuid4().hex, tenant_id="demo", agent="a", to="100")
        await ami.wait_until(lambda: ami.named("originate"))
        async with asyncio.timeout(5):
            await host.wait_idle()  # released on OriginateResponse: Failure
        with pytest.raises(DialError) as bad:
            await dialer.dial(call_id=uuid.uuid4().hex, tenant_id="demo", agent="a", to="1 0;0")
        assert bad.value.status == 400
        host.start_drain()
        with pytest.raises(OverCapacity):
            await dialer.dial(call_id=uuid.uuid4().hex, tenant_id="demo", agent="a", to="100")


async def test_post_calls_via_asterisk_originates_through_ami(host: FakeHost) -> None:
    """The API route reaches the same dialer: `POST /v1/calls {"via": "asterisk"}`."""
    api_settings = msgspec.structs.replace(
        node_settings(), dialplan=DialPlanSettings(allowed_prefixes=("+1555",))
    )
    async with (
        AmiDouble(secret=SECRET) as ami,
        with_ami(host, ami) as port,
        serve_node(host, api_settings) as node,
    ):
        body = {"agent": "receptionist", "to": "+15550100", "via": "asterisk", "tenant": "demo"}
        placed = await node.http.post("/v1/calls", json=body, headers=auth())
        assert placed.status_code == 201, placed.text
        call_id = placed.json()["call_id"]
        assert ami.named("originate")[0]["channelid"] == [str(uuid.UUID(call_id))]
        client = await AudioSocketClient.connect(port)
        await client.send_uuid(uuid.UUID(call_id))
        async with asyncio.timeout(5):
            info = await host.started.get()
        assert info.call_id == call_id and info.direction == Direction.OUTBOUND
        hung = await node.http.post(f"/v1/calls/{call_id}/hangup", headers=auth())
        assert hung.status_code == 204
        async with asyncio.timeout(5):
            await host.finished.get()
        await client.close()
