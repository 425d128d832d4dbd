"""The node's telephony listeners: each transport that takes calls from outside HTTP (the SIP
user agent, the AudioSocket server) is an async context manager started with the node.

`open_listeners(settings, node)` enters every enabled listener and leaves them in reverse
order on exit. A listener takes its calls in through `control_api.intake` and stops taking
calls when the node drains.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager

from config.schema import Settings
from control_api.host import CallIntake

Listener = Callable[[Settings, CallIntake], AbstractAsyncContextManager[object]]
"""Given the settings and the node's intake, a context manager that serves calls while entered."""


def listeners() -> list[Listener]:
    """Every listener the node knows; each one returns at once when its settings disable it."""
    # imported when the node serves, so that importing the node does not load pjsua2
    from voicenode.audiosocket_listener import audiosocket_listener
    from voicenode.sip_listener import sip_listener

    return [sip_listener, audiosocket_listener]


@asynccontextmanager
async def open_listeners(settings: Settings, node: CallIntake) -> AsyncIterator[list[object]]:
    async with AsyncExitStack() as stack:
        yield [await stack.enter_async_context(make(settings, node)) for make in listeners()]
