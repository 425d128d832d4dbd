"""pjsip's own lines reach the node's log as records of the `pjsip` logger (one log stream),
with pjsip's text only in the redactable `text` field, and not as raw console lines."""

from __future__ import annotations

import logging
import socket

import msgspec
import pytest

from sip.pjlog import record_fields
from sip.ua import IncomingInvite, Reject, UserAgent

from .test_ua import sip_settings

pytestmark = pytest.mark.timeout(60)

NO_CSEQ = (
    b"OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKlog1\r\n"
    b"From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:b@127.0.0.1>\r\nCall-ID: log1@x\r\n"
    b"Content-Length: 0\r\n\r\n"
)


def test_a_pjlib_line_becomes_fields() -> None:
    level, message, extra = record_fields(1, "sip_endpoint.c  Error processing packet", "sip")
    assert (level, message) == (logging.ERROR, "pjsip sip_endpoint.c")
    assert extra == {"text": "Error processing packet", "pj_level": 1, "pj_thread": "sip"}
    assert record_fields(5, "x.c trace", "t")[0] == logging.DEBUG


async def test_pjsip_errors_are_log_records_not_console_lines(
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    async def refuse(invite: IncomingInvite) -> Reject:
        return Reject(404)

    ua = UserAgent(sip_settings().sip, refuse)
    await ua.start()
    capfd.readouterr()  # what pjlib printed while it was being created
    try:
        with caplog.at_level(logging.ERROR, logger="pjsip"):
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.sendto(NO_CSEQ, ("127.0.0.1", ua.port))
            # The SIP thread logs it when a poll reads the datagram; each round trip through
            # its job queue runs a poll (the job's wake-up datagram comes after ours).
            for _ in range(20):
                if any(r.name == "pjsip" for r in caplog.records):
                    break
                await ua.call_count()
    finally:
        await ua.stop()
    records = [r for r in caplog.records if r.name == "pjsip"]
    assert records, "pjsip's error reached no log record"
    assert any("CSeq" in str(getattr(r, "text", "")) for r in records)
    assert all("CSeq" not in r.getMessage() for r in records)  # the text stays in its field
    assert "Missing required header" not in capfd.readouterr().out


@pytest.mark.parametrize(("level", "expect_info"), [("error", False), ("info", True)])
async def test_sip_log_level_sets_pjlibs_verbosity(
    caplog: pytest.LogCaptureFixture, level: str, expect_info: bool
) -> None:
    """`sip.log_level`: pjlib's informational lines (a transport created, the library
    started) reach the `pjsip` logger at "info" and not at the default "error"."""

    async def refuse(invite: IncomingInvite) -> Reject:
        return Reject(404)

    settings = msgspec.structs.replace(sip_settings().sip, log_level=level)
    with caplog.at_level(logging.DEBUG, logger="pjsip"):
        ua = UserAgent(settings, refuse)
        await ua.start()
        await ua.stop()
    info = [r for r in caplog.records if r.name == "pjsip" and r.levelno == logging.INFO]
    assert bool(info) is expect_info, [r.getMessage() for r in info][:5]
