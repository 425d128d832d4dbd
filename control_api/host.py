"""The seam between the HTTP/WebRTC layer and the node that runs conversations.

The control API admits a call, hands its transport and call control to `run_call`, and
forwards the events it reports. `voicenode.node` implements the real host; tests use a fake.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Protocol, runtime_checkable

from agents.pii import ALL_KINDS
from agents.spec import AgentSpec, RecordingMode
from control_api.calls import CallRunner, LiveCalls
from control_api.refusals import OverCapacity as OverCapacity
from core.errors import TransportError

if TYPE_CHECKING:
    from agents.llm_access import LlmAccess
    from control_api.quotas import Quotas
    from control_api.store import Store


@dataclass(frozen=True, slots=True)
class AgentRef:
    """One version of a tenant's agent, as a call uses it from start to end."""

    tenant_id: str
    name: str
    version: int
    spec: AgentSpec
    operator: bool = False
    """The operator's own spec (a seeded file agent): it may read keys from the node's
    environment and reach private LLM endpoints; a tenant's may not."""
    llm_access: LlmAccess | None = field(default=None, repr=False, compare=False)
    """The model key and guard a running call's agent got (the outcome model uses them)."""
    pii: frozenset[str] = field(default=ALL_KINDS, compare=False)
    """The kinds of personal data redacted from the call's events and its agent's LLM context:
    the tenant's policy when the call started (`control_api.store.redaction`)."""

    @property
    def pinned(self) -> str:
        """`name@version`: what a call start passes as its agent (`LiveCalls.start`,
        `CallHost.run_call`, `Dialer.dial`) so the call keeps this version while the agent is
        edited."""
        return f"{self.name}@{self.version}"


def split_pinned(agent: str) -> tuple[str, int | None]:
    """`"receptionist@3"` -> `("receptionist", 3)`; a bare name -> `(name, None)` (current)."""
    name, at, version = agent.rpartition("@")
    if at and version.isdigit() and name:
        return name, int(version)
    return agent, None


@dataclass(frozen=True, slots=True)
class NumberRoute:
    """Who answers a dialled number (DID or SIP user): the tenant and its agent's current
    version."""

    number: str
    tenant_id: str
    agent: AgentRef


class CallIntake(Protocol):
    """What a transport needs from the node to take calls in (`control_api.intake`)."""

    @property
    def calls(self) -> LiveCalls:
        """The node's live calls (every transport starts its admitted calls here)."""
        ...

    @property
    def dialers(self) -> dict[str, Dialer]:
        """Outbound call paths by name ("sip", "asterisk"), registered by the listeners."""
        ...

    async def find_agent(
        self, tenant_id: str, name: str, version: int | None = None
    ) -> AgentRef | None:
        """The tenant's agent at its current version (or at `version`); None if unknown."""
        ...

    async def find_number(self, number: str) -> NumberRoute | None:
        """Which tenant and agent answer a dialled DID or SIP user (SIP/AudioSocket routing)."""
        ...

    async def admit_for(self, tenant_id: str, call_id: str) -> None:
        """Take the node's slot (`OverCapacity`, `Draining`), then the tenant's quota slot
        (`QuotaExceeded`); on a refusal nothing is held. Use `control_api.intake.admit`."""
        ...

    def on_drain(self, hook: Callable[[], None]) -> None:
        """Call `hook` once when the node starts draining (at once if it already is): a
        listener tells its peers (SIP OPTIONS answer 503)."""
        ...

    def release(self, call_id: str) -> None:
        """Give back the call's admission and its tenant quota slot (idempotent)."""
        ...

    def record_call(self, call_id: str, recording: RecordingMode) -> None:
        """A call being placed is recorded as `recording` says, over its agent's `recording`
        (`POST /v1/calls`); forgotten when the call's admission is given back."""
        ...


class CallHost(CallIntake, CallRunner, Protocol):
    """What the control API needs from the node: its intake, and running the calls
    (`CallRunner.run_call`)."""

    @property
    def ready(self) -> bool:
        """True once the engines' models are loaded."""
        ...

    @property
    def draining(self) -> bool: ...

    @property
    def store(self) -> Store:
        """The node's open, migrated store (tenants, keys, agents, numbers, calls)."""
        ...

    @property
    def quotas(self) -> Quotas:
        """Per-tenant call quotas (taken in `admit_for`, given back in `release`)."""
        ...

    def active_calls(self) -> int: ...

    def start_drain(self) -> None: ...

    async def wait_idle(self) -> None:
        """Return once no admitted call is left (the drain waits on it)."""
        ...


class DialError(TransportError):
    """An outbound call could not be placed. `status` is the HTTP status the API answers;
    503 (the PBX is not reachable) is retryable. `outcome`: why the far end refused, when it
    said (`voicenode.sip_listener.OUTCOMES`: busy, no_answer, unreachable, refused)."""

    def __init__(self, message: str, status: int = 502, outcome: str | None = None) -> None:
        super().__init__(message, retryable=status == 503)
        self.status = status
        self.outcome = outcome


CALLER_ID: Final = re.compile(r"[A-Za-z0-9+._~-]{1,64}")
"""A caller ID a dialer may send: an E.164 number, or an extension or SIP user of the same
safe characters (the campaign's `from`): nothing that could end or quote a header."""


def checked_caller_id(caller_id: str | None) -> str | None:
    """`caller_id` if it is a `CALLER_ID` (None stays None); `DialError` 400 otherwise, before
    it reaches a SIP header or an AMI field."""
    if caller_id is None or CALLER_ID.fullmatch(caller_id):
        return caller_id
    raise DialError("invalid caller ID", 400)


UnansweredHook = Callable[[str, str], None]
"""Called with (call_id, outcome) when an outbound call ends before it was answered."""


@runtime_checkable
class ReportsUnanswered(Protocol):
    """A `Dialer` that says how its calls that rang but were never answered ended (the
    campaign dialler's busy and no_answer)."""

    def on_unanswered(self, hook: UnansweredHook) -> Callable[[], None]:
        """Call `hook` for each such call from now on; returns the unsubscribe function."""
        ...


class Dialer(Protocol):
    """Places outbound calls through one signalling path (`via`: "sip", "asterisk").

    `dial` admits the call on the node (raising `OverCapacity`), starts it, and returns once
    the far end is being called; the conversation then runs like an inbound call, through
    `LiveCalls`, and the admission is released when it ends. A target the path cannot reach
    raises `DialError` (400 for a malformed target, 502 when the trunk or PBX refuses).
    `caller_id` (a campaign's `from`) is the number the far end sees: the INVITE's From user,
    Originate's CallerID; None leaves the path's own (`checked_caller_id` validates it).
    """

    async def dial(
        self, *, call_id: str, tenant_id: str, agent: str, to: str, caller_id: str | None = None
    ) -> None: ...
