"""The node's error hierarchy: every error the node raises on purpose is a `VoicenodeError`,
and says whether trying again may help (`retryable`).

A third-party error (httpx, aiortc, panoramisk, SQLAlchemy, pjsua2, openai) stops at the
module that calls the library: it is caught there and raised again as one of these, with the
library's error as its cause (`raise TransportError("...") from exc`), so that the code above
handles the node's kinds only. The kinds:

- `ConfigError`: a setting or a file the operator gave is invalid (never retryable).
- `TransportError`: a call's media or signalling, or a connection to a peer, failed.
- `EngineError`: an inference engine (VAD, STT, TTS) failed or is busy.
- `AgentError`: an agent could not produce a reply or a result.
- `StoreError`: the store could not do what was asked (a conflict, a missing row, a secret).
- `Refused`: the node said no by its own rules (capacity, a quota, the dial plan, a guard).

Classes that callers caught as a built-in error before they joined the hierarchy keep that
base too (`class SdpError(TransportError, ValueError)`), the hierarchy first.
"""

from __future__ import annotations


class VoicenodeError(Exception):
    """The base of the node's own errors.

    `retryable`: the same action, tried again later, may succeed (a lost connection, a busy
    engine, a full node), as opposed to one that fails the same way again (a bad setting, a
    refused destination). A class states its default; one error may say otherwise, with
    `retryable=` or by setting the attribute."""

    retryable: bool = False

    def __init__(self, *args: object, retryable: bool | None = None) -> None:
        super().__init__(*args)
        if retryable is not None:
            self.retryable = retryable


class ConfigError(VoicenodeError, ValueError):
    """A settings file or variable is invalid; the message names the key, value and expectation.

    A `ValueError` too, as it always was (`config.ConfigError` is this class)."""


class TransportError(VoicenodeError):
    """A call's media or signalling, or a connection to a peer (SIP, AMI, AudioSocket, WebRTC,
    a PBX), failed."""


class EngineError(VoicenodeError):
    """An inference engine (VAD, STT, TTS) failed, or is too busy to take the work now."""


class AgentError(VoicenodeError, RuntimeError):
    """An agent could not produce a reply (the session speaks a fallback line) or a result.

    A `RuntimeError` too, as it always was (`agents.base.AgentError` is this class)."""


class StoreError(VoicenodeError):
    """The store could not do what was asked: a conflict, a missing row, a secret it cannot
    seal or open."""


class Refused(VoicenodeError):
    """The node refused a request by its own rules: capacity, a tenant's quota, the dial plan,
    a URL guard. Retryable when the rule says when to come back (a full node, a rate)."""
