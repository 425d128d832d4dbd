"""A call's recording as the agent's actions reach it, and sensitive steps kept out of it.

`RecordingSwitch` carries out `RecordingControl` actions on the call's `RecordingTransport`
(none when the call is not recorded: then they do nothing), each under its own reason (see
`media/recording_transport.py`). `with_sensitive_steps` follows the agent's
`sensitive_input` through a reply: when the reply leaves the agent waiting for sensitive input
(a flow slot marked `sensitive`), a pause goes after its last words (the question is recorded,
the answer is not); the first output of a reply after that step is preceded by the resume. It is
level-triggered: a pause lost with a cancelled reply is asked again by the next one.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncGenerator

from agents.base import Agent, AgentOutput, RecordingControl
from media.recording_transport import RecordingTransport
from media.transport import Transport

__all__ = ["RecordingSwitch", "with_sensitive_steps"]

log = logging.getLogger(__name__)


class RecordingSwitch:
    """The call's recording, paused and resumed by the agent's actions."""

    def __init__(self, recording: RecordingTransport | None) -> None:
        self._recording = recording
        self.sensitive = False
        """Muted for a sensitive step (as carried out, not as asked)."""

    @classmethod
    def of(cls, transport: Transport) -> RecordingSwitch:
        """The switch of a call whose session runs on `transport`."""
        return cls(transport if isinstance(transport, RecordingTransport) else None)

    @property
    def recorded(self) -> bool:
        return self._recording is not None

    def apply(self, action: RecordingControl) -> bool:
        """Carry out `action`; False when it changed nothing (not recorded, already so)."""
        if action.reason == "sensitive":
            self.sensitive = action.pause
        if self._recording is None:
            return False
        if action.pause:
            return self._recording.pause(action.reason)
        return self._recording.resume(action.reason)


async def with_sensitive_steps(
    agent: Agent, stream: AsyncGenerator[AgentOutput, None], switch: RecordingSwitch
) -> AsyncGenerator[AgentOutput, None]:
    """`stream`'s outputs with the recording's sensitive pause and resume put in (see the
    module docstring); unchanged when the call is not recorded."""
    muted = switch.sensitive
    async with contextlib.aclosing(stream):
        async for out in stream:
            if muted and not agent.sensitive_input:
                muted = False
                yield RecordingControl(pause=False, reason="sensitive")
            yield out
    if switch.recorded and agent.sensitive_input != muted:
        yield RecordingControl(pause=agent.sensitive_input, reason="sensitive")
