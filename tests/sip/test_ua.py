"""The SIP user agent against real sipp, with a fake host (echo, no models): routing, refusals,
OPTIONS, media both ways, DTMF (SIP INFO and RFC 4733), BYE from each side, outbound calls,
bad datagrams, and no leaks over many calls."""

from __future__ import annotations

import asyncio
import os
import re
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, asynccontextmanager
from pathlib import Path

import msgspec
import numpy as np
import pytest

from config import load_settings
from config.schema import Settings
from control_api.calls import PlannedCall
from media.call import Call, CallInfo, Direction, Dtmf, RemoteHangup
from media.frames import AudioFrame, frames_from_samples
from media.transport import Transport
from pipeline.events import EventCallback
from sip.calls import SipCall
from sip.ua import UserAgent
from tests.support.host import FakeHost, temp_store
from tests.support.load_fakes import LoadDriver
from tests.support.ports import free_port, free_port_run
from tests.support.sipp import (
    DTMF_PCAPS,
    SCENARIOS,
    RtpTap,
    listening_sipp,
    node_rtp_ports,
    run_sipp,
    write_ulaw_wav,
)
from voicenode.sip_listener import sip_listener

pytestmark = pytest.mark.timeout(120)


class SignalHost(FakeHost):
    """FakeHost (echoes audio) that also records the call's DTMF and remote hangup."""

    def __init__(self, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.digits: list[str] = []
        self.hangups: list[str] = []
        self.hung_up = asyncio.Event()
        """Set when a call's RemoteHangup has been seen."""
        self.calls_seen: list[Call] = []
        self.announce: np.ndarray | None = None  # type: ignore[type-arg]
        """Audio the host says when a call starts (besides echoing the caller)."""
        self.loud_in = 0
        """Inbound frames louder than speech level, over all calls."""
        self.heard_loud = asyncio.Event()
        """Set once 50 loud inbound frames (1 s) have arrived."""

    async def run_call(
        self,
        info: CallInfo,
        agent: str,
        transport: Transport,
        call: Call,
        on_event: EventCallback,
    ) -> None:
        # The transport's own call (the tests drive SIP directly), not the dial-plan wrapper.
        call = call.inner if isinstance(call, PlannedCall) else call
        self.calls_seen.append(call)

        async def signals() -> None:
            while True:
                signal = await call.next_signal()
                if isinstance(signal, Dtmf):
                    self.digits.append(signal.digit)
                elif isinstance(signal, RemoteHangup):
                    self.hangups.append(signal.reason)
                    self.hung_up.set()
                    return

        async def say(audio: np.ndarray) -> None:  # type: ignore[type-arg]
            for frame in frames_from_samples(audio):
                await transport.sink.write(frame)

        reader = asyncio.create_task(signals())
        speaker = asyncio.create_task(say(self.announce)) if self.announce is not None else None
        try:
            await super().run_call(info, agent, _Counting(transport, self), call, on_event)
        finally:
            # A call the far end ended has its RemoteHangup queued: let the reader see it.
            if isinstance(call, SipCall) and call.ended:
                await asyncio.wait([reader], timeout=5)
            for task in (reader, speaker):
                if task is not None and not task.done():
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)


class _Counting(Transport):
    """The call's transport, counting loud inbound frames into the host."""

    def __init__(self, inner: Transport, host: SignalHost) -> None:
        self.sink = inner.sink
        self.source = self
        self._inner = inner
        self._host = host

    async def frames(self) -> AsyncIterator[AudioFrame]:
        async for frame in self._inner.source.frames():
            self._host.loud_in += int(
                np.sqrt(np.mean(frame.samples.astype(np.float64) ** 2)) > 1000
            )
            if self._host.loud_in >= 50:
                self._host.heard_loud.set()
            yield frame

    async def close(self) -> None:
        await self._inner.close()


@pytest.fixture
def stack() -> Iterator[ExitStack]:
    with ExitStack() as s:
        yield s


def sip_settings(**sip: object) -> Settings:
    s = load_settings(env={})
    return msgspec.structs.replace(
        s, sip=msgspec.structs.replace(s.sip, port=0, **{**node_rtp_ports(), **sip})
    )


@asynccontextmanager
async def stored(host: SignalHost) -> AsyncIterator[SignalHost]:
    """The host with a temporary store (the demo tenant, number 1000 → receptionist)."""
    async with temp_store() as store:
        await host.attach_store(store)
        yield host


@pytest.fixture
async def host() -> AsyncIterator[SignalHost]:
    async with stored(SignalHost(max_calls=2)) as h:
        yield h


@pytest.fixture
async def ua(host: SignalHost) -> AsyncIterator[UserAgent]:
    async with sip_listener(sip_settings(), host) as agent:  # type: ignore[arg-type]
        assert agent is not None
        yield agent


def tone_speech(seconds: float = 1.5) -> np.ndarray:  # type: ignore[type-arg]
    """A loud, voice-band signal (a chord with an envelope) standing in for speech here;
    the real-model tests use real speech."""
    t = np.arange(int(16_000 * seconds)) / 16_000
    wave = sum(np.sin(2 * np.pi * f * t) for f in (300, 700, 1200))
    envelope = 0.5 * (1 - np.cos(2 * np.pi * t * 3))
    return (wave * envelope * 6000).astype(np.int16)


async def test_call_is_answered_and_audio_flows_both_ways(
    ua: UserAgent, host: SignalHost, tmp_path: Path
) -> None:
    wav = write_ulaw_wav(tone_speech(), tmp_path / "in.wav")
    media = free_port_run(4)  # sipp binds the media port and the 3 after it (RTCP, video)
    with RtpTap(media) as tap:
        result = await run_sipp(
            "uac_stream.xml",
            ua.port,
            tmp_path,
            media_port=media,
            fill={"WAV": str(wav), "LEAD_MS": "200", "HOLD_MS": "2500", "DTMF": ""},
        )
    assert result.returncode == 0, result.explain()
    info = host.started.get_nowait()
    assert info.transport == "sip" and info.direction == Direction.INBOUND
    assert info.to_uri.startswith("sip:1000@")
    assert host.inbound_frames[info.call_id] >= 100  # 2 s+ of caller audio reached the host
    echoed = tap.pcmu_audio()
    frames = echoed[: len(echoed) // 320 * 320].reshape(-1, 320).astype(np.float64)
    loud = int((np.sqrt((frames**2).mean(axis=1)) > 1000).sum())
    assert loud >= 40, f"only {loud} loud frames came back over RTP"  # ~1.5 s of echo
    await asyncio.wait_for(host.finished.get(), 5)
    await asyncio.wait_for(host.hung_up.wait(), 5)  # the caller's BYE reached the call
    assert host.hangups and host.active_calls() == 0


async def test_dtmf_by_sip_info_and_rfc4733(
    ua: UserAgent, host: SignalHost, tmp_path: Path
) -> None:
    wav = write_ulaw_wav(tone_speech(0.2), tmp_path / "in.wav")
    info_dtmf = (SCENARIOS / "info_dtmf.fragment").read_text()
    pcap = DTMF_PCAPS / "dtmf_2833_7.pcap"
    rfc4733 = f'<nop><action><exec play_pcap_audio="{pcap}"/></action></nop>'
    result = await run_sipp(
        "uac_stream.xml",
        ua.port,
        tmp_path,
        fill={
            "WAV": str(wav),
            "LEAD_MS": "100",
            "HOLD_MS": "1500",
            "DTMF": info_dtmf.replace("@DIGIT@", "5") + '<pause milliseconds="300"/>' + rfc4733,
        },
    )
    assert result.returncode == 0, result.explain()
    assert host.digits == ["5", "7"]


async def test_unknown_number_gets_404(ua: UserAgent, tmp_path: Path) -> None:
    result = await run_sipp(
        "uac_refused.xml",
        ua.port,
        tmp_path,
        service="999",
        fill={"STATUS": "404", "HEADER_RE": "404"},
    )
    assert result.returncode == 0, result.explain()


async def test_full_or_draining_node_answers_503_with_retry_after(
    ua: UserAgent, host: SignalHost, tmp_path: Path
) -> None:
    host.start_drain()
    result = await run_sipp(
        "uac_refused.xml",
        ua.port,
        tmp_path,
        fill={"STATUS": "503", "HEADER_RE": "Retry-After: *17"},
    )
    assert result.returncode == 0, result.explain()
    await asyncio.wait_for(host.wait_idle(), 5)  # every call released


async def test_saturated_engines_answer_503_with_retry_after_and_live_calls_go_on(
    ua: UserAgent, host: SignalHost, tmp_path: Path
) -> None:
    load = LoadDriver()
    host.engines = load.engines  # the fake host's admission reads this estimator
    wav = write_ulaw_wav(tone_speech(3), tmp_path / "in.wav")
    media = free_port_run(4)  # sipp binds the media port and the 3 after it (RTCP, video)
    stream = {"WAV": str(wav), "LEAD_MS": "200", "HOLD_MS": "3500", "DTMF": ""}
    with RtpTap(media) as tap:
        live = asyncio.create_task(
            run_sipp("uac_stream.xml", ua.port, tmp_path / "live", media_port=media, fill=stream)
        )
        await asyncio.wait_for(host.started.get(), 20)
        load.saturate()
        refused = await run_sipp(
            "uac_refused.xml",
            ua.port,
            tmp_path / "refused",
            fill={"STATUS": "503", "HEADER_RE": "Retry-After: *3"},
        )
        assert refused.returncode == 0, refused.explain()
        result = await live
    assert result.returncode == 0, result.explain()  # the live call ran to its BYE
    echoed = tap.pcmu_audio()
    frames = echoed[: len(echoed) // 320 * 320].reshape(-1, 320).astype(np.float64)
    assert int((np.sqrt((frames**2).mean(axis=1)) > 1000).sum()) >= 40  # its echo came back
    await asyncio.wait_for(host.finished.get(), 5)
    load.relieve()
    again = await run_sipp("uac_stream.xml", ua.port, tmp_path / "again", fill=stream)
    assert again.returncode == 0, again.explain()
    await asyncio.wait_for(host.wait_idle(), 5)  # every call released


async def test_options_probe_is_answered_200_then_503_while_draining(
    ua: UserAgent, host: SignalHost, tmp_path: Path
) -> None:
    result = await run_sipp("uac_options.xml", ua.port, tmp_path, fill={"STATUS": "200"})
    assert result.returncode == 0, result.explain()
    host.start_drain()  # a proxy probing with OPTIONS takes the node out of rotation
    result = await run_sipp("uac_options.xml", ua.port, tmp_path, fill={"STATUS": "503"})
    assert result.returncode == 0, result.explain()


async def test_the_node_ends_the_call_with_bye(tmp_path: Path) -> None:
    async with (
        stored(SignalHost(max_calls=2, end_after_frames=50)) as host,
        sip_listener(sip_settings(), host) as ua,  # type: ignore[arg-type]
    ):  # type: ignore[arg-type]
        assert ua is not None
        wav = write_ulaw_wav(tone_speech(3), tmp_path / "in.wav")
        result = await run_sipp("uac_node_hangs_up.xml", ua.port, tmp_path, fill={"WAV": str(wav)})
        assert result.returncode == 0, result.explain()
        await asyncio.wait_for(host.finished.get(), 5)
        await asyncio.wait_for(host.wait_idle(), 5)  # every call released


async def test_outbound_call_reaches_a_sipp_uas_with_audio_both_ways(
    ua: UserAgent, host: SignalHost, tmp_path: Path, stack: ExitStack
) -> None:
    """The node calls a sipp UAS that echoes RTP: the node's audio reaches it (tapped) and
    comes back to the node (counted as loud inbound frames)."""
    host.announce = tone_speech(2.0)
    uas_port, uas_media = free_port(), free_port_run(4)
    tap = RtpTap(uas_media)
    stack.enter_context(tap)
    uas = await listening_sipp("uas", uas_port, tmp_path, media_port=uas_media, extra=["-rtp_echo"])
    dialer = host.dialers["sip"]
    await dialer.dial(
        call_id="out1", tenant_id="demo", agent="receptionist", to=f"sip:agent@127.0.0.1:{uas_port}"
    )
    info = await asyncio.wait_for(host.started.get(), 15)
    assert info.direction == Direction.OUTBOUND and info.call_id == "out1"
    call = host.calls_seen[-1]
    # The UAS echoes what it hears: wait (bounded) for the announcement to come back.
    await asyncio.wait_for(host.heard_loud.wait(), 10)
    await call.hangup("done")
    await asyncio.wait_for(host.finished.get(), 5)
    result = await uas
    stack.close()
    assert result.returncode == 0, result.explain()
    await asyncio.wait_for(host.wait_idle(), 5)  # every call released
    sent = tap.pcmu_audio()
    frames = sent[: len(sent) // 320 * 320].reshape(-1, 320).astype(np.float64)
    assert (np.sqrt((frames**2).mean(axis=1)) > 1000).sum() >= 50  # 1 s+ of it reached the UAS


async def test_garbage_and_torture_messages_do_not_stop_the_node(
    ua: UserAgent, tmp_path: Path
) -> None:
    torture = [
        b"",
        b"\x00\xff" * 300,
        b"INVITE sip:1000@127.0.0.1 SIP/2.0\r\n\r\n",  # no Via, From, To, Call-ID, CSeq
        b"INVITE sip:1000@127.0.0.1 SIP/7.0\r\n"
        b"Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK1\r\n\r\n",
        b"OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKx\r\n"
        b"Content-Length: 99999\r\n\r\nshort",
        b"NOTAMETHOD sip:x SIP/2.0\r\n" + b"X-Long: " + b"a" * 4000 + b"\r\n\r\n",
        (SCENARIOS / "torture_escaped.txt").read_bytes(),
    ]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for message in torture:
            sock.sendto(message, ("127.0.0.1", ua.port))
    for message in torture[2:]:
        reader, writer = await asyncio.open_connection("127.0.0.1", ua.port)
        writer.write(message)
        await writer.drain()
        writer.close()
        await writer.wait_closed()
    result = await run_sipp("uac_options.xml", ua.port, tmp_path, fill={"STATUS": "200"})
    assert result.returncode == 0, result.explain()


async def test_fifty_sequential_calls_leak_nothing(tmp_path: Path) -> None:

    def fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    def threads() -> int:
        """Threads the SIP code owns: the SIP thread, and pjlib's native threads (pjlib names
        each one it creates: "media", "clock", "ev_thread", ...). Other threads of the process
        (the loop's executor, other libraries' pools) may come and go while the calls run."""
        import threading

        def comm(tid: int) -> str:
            try:
                with open(f"/proc/self/task/{tid}/comm") as f:
                    return f.read().strip()
            except OSError:
                return default  # it has just ended

        default = ""
        default = comm(os.getpid())  # a thread nobody named has the process's name
        others = {  # Python's own threads, but the SIP thread (pjlib's may show up as dummies)
            t.native_id
            for t in threading.enumerate()
            if t.name != "sip" and not isinstance(t, threading._DummyThread)
        }
        sip = {t.native_id for t in threading.enumerate() if t.name == "sip"}
        tids = {int(tid) for tid in os.listdir("/proc/self/task")} - others
        return len({tid for tid in tids if tid in sip or comm(tid) != default})

    async with (
        stored(SignalHost(max_calls=1, end_after_frames=5)) as host,
        sip_listener(sip_settings(), host) as ua,  # type: ignore[arg-type]
    ):
        assert ua is not None
        wav = write_ulaw_wav(tone_speech(1), tmp_path / "in.wav")
        first = await run_sipp("uac_node_hangs_up.xml", ua.port, tmp_path, fill={"WAV": str(wav)})
        assert first.returncode == 0, first.explain()
        await asyncio.wait_for(host.finished.get(), 5)
        base_fds, base_threads, base_ports = fds(), threads(), await ua.media_ports()
        result = await run_sipp(
            "uac_node_hangs_up.xml", ua.port, tmp_path, fill={"WAV": str(wav)}, calls=50,
            timeout_s=90, extra=["-l", "1"],
        )  # fmt: skip
        assert result.returncode == 0, result.explain()
        for _ in range(50):
            await asyncio.wait_for(host.finished.get(), 5)
        assert await ua.call_count() == 0
        assert await ua.media_ports() == base_ports
        await asyncio.wait_for(host.wait_idle(), 5)  # every call released
        assert fds() <= base_fds + 2
        assert threads() == base_threads


async def test_blind_transfer_by_refer(ua: UserAgent, host: SignalHost, tmp_path: Path) -> None:
    target = "sip:desk@127.0.0.1:5099"

    async def transfer_when_answered() -> None:
        await host.started.get()  # the call sipp placed is running
        await host.calls_seen[-1].transfer(target)

    transferring = asyncio.create_task(transfer_when_answered())
    result = await run_sipp(
        "uac_transferred.xml", ua.port, tmp_path, fill={"TARGET": re.escape(target)}
    )
    assert result.returncode == 0, result.explain()
    await asyncio.wait_for(transferring, 5)  # the NOTIFY's 200 completed the transfer
    await asyncio.wait_for(host.finished.get(), 5)
    await asyncio.wait_for(host.wait_idle(), 5)  # every call released


async def test_tenant_header_is_believed_only_from_trusted_proxies(host: SignalHost) -> None:
    from sip.message import parse_request
    from sip.ua import IncomingInvite
    from voicenode.sip_listener import SipRouter

    settings = sip_settings(trusted_proxies=["10.0.0.0/8"]).sip
    router = SipRouter(settings, host)  # type: ignore[arg-type]

    def invite(source: str, tenant: str | None) -> IncomingInvite:
        header = f"X-Voicenode-Tenant: {tenant}\r\n" if tenant else ""
        text = f"INVITE sip:1000@node SIP/2.0\r\nVia: SIP/2.0/UDP {source}\r\n{header}\r\n"
        return IncomingInvite(request=parse_request(text), source=source)

    pinned = (await host.find_number("1000")).agent.pinned  # type: ignore[union-attr]
    assert await router.target(invite("10.1.2.3", "demo")) == ("demo", pinned)
    assert await router.target(invite("10.1.2.3", "acme")) is None  # not acme's number
    assert await router.target(invite("192.0.2.9", "acme")) == ("demo", pinned)  # ignored
    assert await router.target(invite("192.0.2.9", None)) == ("demo", pinned)
