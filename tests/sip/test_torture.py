"""RFC 4475 torture messages (adapted, in `torture.py`): through the sans-IO reader, and sent
at a live node over UDP while a call is in progress. The node answers each one as the RFC
(or pjsip's reading of it) says, or drops it; it keeps serving the call, answers OPTIONS,
routes an INVITE whose number carries user parameters, and holds no call afterwards."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import numpy as np
import pytest

from media.call import Direction
from sip.message import parse_request
from sip.ua import UserAgent
from tests.support.ports import free_port_run
from tests.support.sipp import RtpTap, run_sipp, write_ulaw_wav
from voicenode.sip_listener import sip_listener

from .test_ua import SignalHost, sip_settings, stored, tone_speech
from .torture import CORPUS, Parsed, Refused, Torture

pytestmark = pytest.mark.timeout(90)

VIA, NODE, TAG = "127.0.0.1:5999", "127.0.0.1:5060", "t1"


def fill(torture: Torture, text: str, via: str = VIA, node: str = NODE, tag: str = TAG) -> str:
    return text.format(via=via, node=node, tag=tag, len=len(torture.body))


@pytest.mark.parametrize("torture", CORPUS, ids=[t.name for t in CORPUS])
def test_the_sans_io_reader(torture: Torture) -> None:
    text = torture.render(VIA, NODE, TAG).decode("utf-8", "surrogateescape")
    match torture.parse:
        case Refused(error=error):
            with pytest.raises(ValueError, match=re.escape(error)):
                parse_request(text)
        case Parsed(method=method, user=user, headers=headers):
            request = parse_request(text)
            assert request.method == method
            if user is None:
                with pytest.raises(ValueError):
                    request.user  # noqa: B018
            else:
                assert request.user == user
            for name, value in headers.items():
                assert request.header(name) == fill(torture, value), name


@pytest.mark.parametrize(
    ("uri", "user"),
    [
        ("sip:1000@host", "1000"),
        ("sip:+15551234;npdi;rn=+15550000@carrier.example;user=phone", "+15551234"),
        ("sips:1000;isub=12@host:5061;transport=tls", "1000"),
        ("sip:alice:secret@host", "alice"),
        ("SIP:1000@host", "1000"),
        ("tel:+1-555-1234;phone-context=example.com", "+1-555-1234"),
        ("sip:host;user=phone", None),
        ("sip:@host", None),
        ("sip:10<0>@host", None),
        ("mailto:a@b", None),
        ("sip:" + "1" * 65 + "@host", None),
    ],
)
def test_the_dialled_number_of_a_request_uri(uri: str, user: str | None) -> None:
    request = parse_request(f"INVITE {uri} SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n\r\n")
    if user is None:
        with pytest.raises(ValueError):
            request.user  # noqa: B018
    else:
        assert request.user == user


class Responses(asyncio.DatagramProtocol):
    """What the node sends back to the test's socket, by torture name (the Call-ID prefix)."""

    def __init__(self) -> None:
        self.by_name: dict[str, list[str]] = {}
        self.changed = asyncio.Event()

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        text = data.decode("utf-8", "replace")
        match = re.search(r"^(?:Call-ID|i)\s*:\s*([^.\r\n]+)", text, re.MULTILINE | re.I)
        self.by_name.setdefault(match.group(1) if match else "?", []).append(text)
        self.changed.set()

    def finals(self, name: str) -> list[int]:
        codes = [int(r.split(" ", 2)[1]) for r in self.by_name.get(name, [])]
        return [code for code in codes if code >= 200]

    async def wait_final(self, name: str, timeout_s: float = 5) -> None:
        try:
            async with asyncio.timeout(timeout_s):
                while not self.finals(name):
                    self.changed.clear()
                    await self.changed.wait()
        except TimeoutError:
            got = {k: [r.split("\r\n", 1)[0] for r in v] for k, v in self.by_name.items()}
            raise AssertionError(f"no final response to {name} in {timeout_s} s: {got}") from None


def ack_for(response: str, request_uri: str, via: str) -> bytes:
    """The ACK to a non-2xx final response to one of the INVITEs (RFC 3261 17.1.1.3)."""

    def header(name: str) -> str:
        match = re.search(rf"^{name}\s*:\s*(.*?)\r?$", response, re.MULTILINE | re.I)
        return match.group(1) if match else ""

    cseq = header("CSeq").split()[0] if header("CSeq") else "1"
    return (
        f"ACK {request_uri} SIP/2.0\r\nVia: {header('Via')}\r\nFrom: {header('From')}\r\n"
        f"To: {header('To')}\r\nCall-ID: {header('Call-ID')}\r\nCSeq: {cseq} ACK\r\n"
        f"Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    ).encode()


async def barrage(ua: UserAgent) -> Responses:
    """Send every torture message; wait for the answers that must come; ACK INVITE refusals.

    The other requests go in one burst. INVITEs go one at a time, each answered (and ACKed)
    or followed by an answered probe before the next: the pjsua2 wheel holds at most four
    calls at once, an INVITE holds one while the node routes it, and a burst of them would
    be refused 486 by pjsua2 itself before the node could look at them."""
    loop = asyncio.get_running_loop()
    transport, responses = await loop.create_datagram_endpoint(
        Responses, local_addr=("127.0.0.1", 0)
    )
    node = ("127.0.0.1", ua.port)
    via = f"127.0.0.1:{transport.get_extra_info('sockname')[1]}"
    probes = 0

    async def probe() -> None:
        """An OPTIONS answered after everything sent before it was processed."""
        nonlocal probes
        probes += 1
        lwsdisp = next(t for t in CORPUS if t.name == "lwsdisp")
        message = lwsdisp.render(via, f"127.0.0.1:{ua.port}", str(probes))
        transport.sendto(message.replace(b"Call-ID: lwsdisp.", b"Call-ID: probe%d." % probes), node)
        await responses.wait_final(f"probe{probes}")

    try:
        for torture in CORPUS:
            if not torture.invite():
                transport.sendto(torture.render(via, f"127.0.0.1:{ua.port}", TAG), node)
        for torture in CORPUS:
            if not torture.invite():
                if 0 not in torture.live:
                    await responses.wait_final(torture.name)
                continue
            message = torture.render(via, f"127.0.0.1:{ua.port}", TAG)
            transport.sendto(message, node)
            await probe()
            if 0 not in torture.live or torture.name in responses.by_name:
                # A "100 Trying" means pjsua2 took the INVITE: the node's answer follows.
                await responses.wait_final(torture.name)
            for response in responses.by_name.get(torture.name, []):
                if int(response.split(" ", 2)[1]) >= 300:
                    uri = message.split(b" ", 2)[1].decode()
                    transport.sendto(ack_for(response, uri, via), node)
        await probe()
        return responses
    finally:
        transport.close()


async def test_torture_messages_at_a_node_with_a_call_in_progress(tmp_path: Path) -> None:
    host = SignalHost(max_calls=3)
    wav = write_ulaw_wav(tone_speech(4.0), tmp_path / "in.wav")
    media = free_port_run(4)  # sipp binds the media port and the 3 after it (RTCP, video)
    async with stored(host), sip_listener(sip_settings(), host) as ua:  # type: ignore[arg-type]
        assert ua is not None
        with RtpTap(media) as tap:
            call = asyncio.create_task(
                run_sipp("uac_stream.xml", ua.port, tmp_path, media_port=media,
                         fill={"WAV": str(wav), "LEAD_MS": "100", "HOLD_MS": "4500", "DTMF": ""})
            )  # fmt: skip
            info = await asyncio.wait_for(host.started.get(), 10)
            responses = await barrage(ua)
            result = await call
        assert result.returncode == 0, result.explain()
        await asyncio.wait_for(host.finished.get(), 5)
        assert host.started.empty()  # no torture INVITE became a call
        assert host.inbound_frames[info.call_id] >= 200  # 4 s of the caller reached the host
        echoed = tap.pcmu_audio()
        frames = echoed[: len(echoed) // 320 * 320].reshape(-1, 320).astype(np.float64)
        # And came back: at least 1 s of the 4 s. Not more: pjmedia's clock skips ticks when
        # the machine is starved (100 of 200 frames came back at load average 10 on 2 cores).
        assert (np.sqrt((frames**2).mean(axis=1)) > 1000).sum() >= 50
        assert await ua.call_count() == 0
        options = await run_sipp("uac_options.xml", ua.port, tmp_path, fill={"STATUS": "200"})
        assert options.returncode == 0, options.explain()
    unexpected = {}
    for torture in CORPUS:
        finals = responses.finals(torture.name) or [0]
        if not set(finals) <= torture.live or len(set(finals)) > 1:
            unexpected[torture.name] = (finals, sorted(torture.live))
    assert not unexpected, (unexpected, {n: responses.by_name.get(n) for n in unexpected})


async def test_an_invite_whose_number_has_user_parameters_is_routed(tmp_path: Path) -> None:
    """`sip:1000;npdi;rn=+15550000@node` (number portability, as carriers send it) reaches
    the number 1000."""
    async with (
        stored(SignalHost(max_calls=2)) as host,
        sip_listener(sip_settings(), host) as ua,  # type: ignore[arg-type]
    ):
        assert ua is not None
        result = await run_sipp(
            "uac_offer.xml", ua.port, tmp_path, service="1000;npdi;rn=+15550000",
            fill={"PAYLOADS": "0", "RTPMAPS": "      a=rtpmap:0 PCMU/8000", "HOLD_MS": "200"},
        )  # fmt: skip
        assert result.returncode == 0, result.explain()
        info = await asyncio.wait_for(host.started.get(), 5)
        assert info.direction == Direction.INBOUND
        assert info.to_uri.startswith("sip:1000;npdi;rn=+15550000@")
        await asyncio.wait_for(host.finished.get(), 5)
