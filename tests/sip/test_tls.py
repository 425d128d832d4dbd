"""SIP over TLS with a throwaway self-signed certificate (made by `openssl` per test): baresip
calls the node over TLS and the call completes; Python's TLS client checks the node serves
that certificate. A TLS setting the node cannot use stops it at start, naming the key.

(sipp, the other SIP peer here, is built without TLS: `sipp -v` shows no TLS feature.)"""

from __future__ import annotations

import asyncio
import os
import ssl
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import msgspec
import pytest

from config.schema import Settings
from media.call import Direction
from sip.calls import SipCall
from sip.endpoint import SipSettingsError, tls_enabled
from sip.ua import Accept, IncomingInvite, Reject, UserAgent
from tests.support.baresip import baresip
from tests.support.ports import free_port
from voicenode.sip_listener import sip_listener

from .test_ua import SignalHost, sip_settings, stored

pytestmark = pytest.mark.timeout(60)


def make_cert(folder: Path, name: str = "node") -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key (PEM), valid for a day."""
    cert, key = folder / f"{name}.crt", folder / f"{name}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def tls_settings(cert: Path, key: Path, **sip: object) -> Settings:
    return sip_settings(tls_cert_file=str(cert), tls_key_file=str(key), tls_port=0, **sip)


async def options_over_tls(port: int, ca: Path) -> str:
    """An OPTIONS over TLS, verifying the node's certificate against `ca`; the response."""
    context = ssl.create_default_context(cafile=str(ca))
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=context, server_hostname="127.0.0.1"
    )
    local = writer.get_extra_info("sockname")
    writer.write(
        f"OPTIONS sip:127.0.0.1:{port};transport=tls SIP/2.0\r\n"
        f"Via: SIP/2.0/TLS 127.0.0.1:{local[1]};branch=z9hG4bK-tls-probe-1;rport\r\n"
        f"From: <sip:probe@127.0.0.1>;tag=probe1\r\nTo: <sip:127.0.0.1:{port}>\r\n"
        f"Call-ID: tls-probe-1@127.0.0.1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
        f"Content-Length: 0\r\n\r\n".encode()
    )
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    # pjsip keeps a SIP TLS connection open for reuse and does not answer a TLS close_notify
    # (pjproject 2.17): close without waiting for one.
    writer.transport.abort()
    return head.decode()


async def test_a_call_over_tls_completes(tmp_path: Path) -> None:
    cert, key = make_cert(tmp_path)
    peer_cert, peer_key = make_cert(tmp_path, "peer")
    peer_pem = tmp_path / "peer.pem"
    peer_pem.write_bytes(peer_cert.read_bytes() + peer_key.read_bytes())
    async with (
        stored(SignalHost(max_calls=2)) as host,
        sip_listener(tls_settings(cert, key, transports=["udp", "tls"]), host) as ua,  # type: ignore[arg-type]
        baresip(tmp_path / "baresip", tls=(peer_pem, cert)) as peer,
    ):
        assert ua is not None and ua.tls_port not in (0, ua.port)
        head = await options_over_tls(ua.tls_port, cert)
        assert head.startswith("SIP/2.0 200 OK"), head
        await peer.command("dial", f"sip:1000@127.0.0.1:{ua.tls_port};transport=tls")
        info = await asyncio.wait_for(host.started.get(), 10)
        assert info.direction == Direction.INBOUND and info.to_uri.startswith("sip:1000@")
        await peer.wait_event("CALL_ESTABLISHED")
        # Audio flows on the call set up over TLS: 1 s of baresip's tone reaches the host.
        await asyncio.wait_for(host.heard_loud.wait(), 10)
        await peer.command("hangup")  # its BYE goes over the TLS connection
        await asyncio.wait_for(host.finished.get(), 5)
        await peer.wait_event("CALL_CLOSED")
        call = host.calls_seen[-1]
        assert isinstance(call, SipCall) and call.ended
    await asyncio.wait_for(host.wait_idle(), 5)  # every call released


Change = Callable[[Path, Path, Path], dict[str, object]]


def _garbage(folder: Path) -> Path:
    path = folder / "garbage.pem"
    path.write_text("not a certificate\n")
    return path


@pytest.mark.parametrize(
    ("change", "key", "words"),
    [
        (lambda d, c, k: {"tls_cert_file": str(d / "missing.crt")}, "sip.tls_cert_file",
         "cannot read"),
        (lambda d, c, k: {"tls_key_file": str(d / "missing.key")}, "sip.tls_key_file",
         "cannot read"),
        (lambda d, c, k: {"tls_key_file": ""}, "sip.tls_key_file", "required"),
        (lambda d, c, k: {"tls_cert_file": "", "transports": ["udp", "tls"]},
         "sip.tls_cert_file", "required"),
        (lambda d, c, k: {"tls_cert_file": str(_garbage(d))}, "sip.tls_cert_file",
         "no PEM certificate"),
        (lambda d, c, k: {"tls_key_file": str(c)}, "sip.tls_key_file", "no PEM private key"),
        (lambda d, c, k: {"tls_key_file": str(make_cert(d, "other")[1])}, "sip.tls_key_file",
         "is not the key of"),
        (lambda d, c, k: {"tls_ca_file": str(_garbage(d))}, "sip.tls_ca_file",
         "no PEM CA certificates"),
        (lambda d, c, k: {"tls_ca_file": str(d)}, "sip.tls_ca_file", "cannot read"),
    ],
    ids=["cert-missing", "key-missing", "key-unset", "tls-without-cert", "cert-garbage",
         "key-is-a-cert", "key-mismatch", "ca-garbage", "ca-is-a-folder"],
)  # fmt: skip
async def test_unusable_tls_settings_stop_the_user_agent_naming_the_key(
    change: Change, key: str, words: str, tmp_path: Path
) -> None:
    cert, key_file = make_cert(tmp_path)
    settings = tls_settings(cert, key_file).sip
    settings = msgspec.structs.replace(settings, **change(tmp_path, cert, key_file))
    with pytest.raises(SipSettingsError) as raised:
        tls_enabled(settings)
    assert str(raised.value).startswith(f"{key}:") and words in str(raised.value)
    ua = UserAgent(settings, route=_no_route)
    with pytest.raises(SipSettingsError):
        await ua.start()
    assert ua.port == 0  # refused before pjsua2 was created


async def _no_route(invite: IncomingInvite) -> Accept | Reject:
    raise AssertionError("no call expected")


def test_without_tls_settings_tls_is_off() -> None:
    assert tls_enabled(sip_settings().sip) is False


def test_the_node_refuses_to_start_with_a_missing_certificate(tmp_path: Path) -> None:
    """`voicenode serve` with a certificate path that does not exist exits non-zero, the
    message naming `sip.tls_cert_file` (pjsip alone would listen and fail each handshake)."""
    env = {
        **os.environ,
        "VOICENODE_HTTP__PORT": "0",
        "VOICENODE_SIP__PORT": "0",
        "VOICENODE_SIP__RTP_PORT": str(free_port()),
        "VOICENODE_SIP__TLS_PORT": "0",
        "VOICENODE_SIP__TLS_CERT_FILE": str(tmp_path / "nowhere" / "node.crt"),
        "VOICENODE_SIP__TLS_KEY_FILE": str(tmp_path / "nowhere" / "node.key"),
        "VOICENODE_AUDIOSOCKET__ENABLED": "false",
        "VOICENODE_NODE__DATA_DIR": str(tmp_path / "data"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "voicenode.cli", "serve"],
        env=env, capture_output=True, text=True, timeout=50,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == 2, output  # a configuration error, like a bad settings file
    assert "configuration error" in output
    assert "sip.tls_cert_file: cannot read" in output and "node.crt" in output, output
    assert "sip listening" not in output


async def test_tls_alone_listens_only_on_tls(tmp_path: Path) -> None:
    cert, key = make_cert(tmp_path)
    settings = tls_settings(cert, key, transports=["tls"])
    async with (
        stored(SignalHost(max_calls=2)) as host,
        sip_listener(settings, host) as ua,  # type: ignore[arg-type]
    ):
        assert ua is not None and ua.tls_port != 0 and ua.port == 0
        head = await options_over_tls(ua.tls_port, cert)
        assert head.startswith("SIP/2.0 200 OK"), head
