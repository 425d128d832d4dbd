"""pjsua2 allows one Endpoint per process, and a second one aborts the process (its C++
constructor throws through SWIG). A second user agent started while one runs is refused with a
clear error instead; once the first has stopped, a new one starts."""

from __future__ import annotations

import socket

import msgspec
import pytest

from sip.thread import SipThreadError
from sip.ua import IncomingInvite, Reject, UserAgent

from .test_ua import sip_settings

pytestmark = pytest.mark.timeout(60)


async def test_a_second_user_agent_is_refused_not_aborted() -> None:

    async def refuse(invite: IncomingInvite) -> Reject:
        return Reject(404)

    first = UserAgent(sip_settings().sip, refuse)
    await first.start()
    try:
        second = UserAgent(sip_settings().sip, refuse)
        with pytest.raises(SipThreadError, match="another SIP user agent"):
            await second.start()
    finally:
        await first.stop()
    again = UserAgent(sip_settings().sip, refuse)
    await again.start()
    await again.stop()


async def test_a_failed_start_leaves_no_endpoint_behind() -> None:
    # The failure is kept (as pytest keeps a failed test's): its traceback must not keep the
    # failed start's Endpoint alive, or the next start would make a second one and abort.
    async def refuse(invite: IncomingInvite) -> Reject:
        return Reject(404)

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        busy = msgspec.structs.replace(sip_settings().sip, port=taken.getsockname()[1])
        with pytest.raises(OSError) as failed:
            await UserAgent(busy, refuse).start()
    assert failed.value.__traceback__ is not None
    ua = UserAgent(sip_settings().sip, refuse)
    await ua.start()
    await ua.stop()
