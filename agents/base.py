"""The Agent seam: given the conversation so far and what just happened on the call, an agent
streams text chunks and typed actions. Agents know nothing about audio.

One `Agent` instance serves one call (the flow agent keeps its position and slots there).
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import AsyncGenerator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import httpx
import msgspec

from core.errors import AgentError as AgentError  # the node's kind, raised by agents

if TYPE_CHECKING:
    from agents.llm_access import LlmAccess

# ---- what happened on the call (agent input) ----


class CallStarted(msgspec.Struct, frozen=True, tag="call_started"):
    """The call was answered: the agent speaks its greeting."""


class UserSaid(msgspec.Struct, frozen=True, tag="user_said"):
    """The caller finished a turn; `text` is the final transcript."""

    text: str


class DtmfPressed(msgspec.Struct, frozen=True, tag="dtmf"):
    """The caller pressed keys (collected into one turn)."""

    digits: str


class NoInput(msgspec.Struct, frozen=True, tag="no_input"):
    """The caller said nothing for the agent's no-input time; `count` reprompts so far + 1."""

    count: int


AgentInput = CallStarted | UserSaid | DtmfPressed | NoInput

# ---- what the agent does (agent output) ----


class TextChunk(msgspec.Struct, frozen=True, tag="text"):
    """Text to speak, streamed as produced (any size: tokens, clauses, sentences)."""

    text: str


class EndCall(msgspec.Struct, frozen=True, tag="end_call"):
    """Hang up once what was said before this action has been played."""

    reason: str = "completed"


class Transfer(msgspec.Struct, frozen=True, tag="transfer"):
    """Blind-transfer the caller once what was said before has been played."""

    target: str


class SendDtmf(msgspec.Struct, frozen=True, tag="send_dtmf"):
    digits: str


class ToolResult(msgspec.Struct, frozen=True, tag="tool_result"):
    """A tool ran (reported for events and analytics)."""

    name: str
    arguments: dict[str, Any]
    result: str
    ok: bool = True
    duration_ms: float | None = None
    """How long the tool took (None: not timed)."""


class ModelRound(msgspec.Struct, frozen=True, tag="model_round"):
    """One request to the agent's model ended (reported for traces): how long it took, to
    its first token, whether it answered."""

    duration_ms: float
    first_token_ms: float | None = None
    ok: bool = True


class RecordingControl(msgspec.Struct, frozen=True, tag="recording"):
    """Mute (`pause`) or unmute the call's recording, both channels, once the speech before it
    has played. `reason`: the flow's own `recording` action (`agent`), or the session keeping
    a sensitive step's input (a card number keyed or said) out of the recording (`sensitive`);
    each reason is held apart, so one's resume does not undo another's pause."""

    pause: bool
    reason: Literal["agent", "sensitive"] = "agent"


AgentOutput = TextChunk | EndCall | Transfer | SendDtmf | ToolResult | ModelRound | RecordingControl


class Message(msgspec.Struct, frozen=True, kw_only=True):
    """One entry of the conversation history the call session keeps."""

    role: Literal["user", "assistant"]
    text: str
    interrupted: bool = False


@dataclasses.dataclass(frozen=True, kw_only=True)
class AgentContext:
    """What an agent may use besides its spec: the call's identity and shared I/O."""

    call_id: str
    tenant_id: str
    http: httpx.AsyncClient
    """Shared client for tools and webhooks (the agent never closes it)."""
    url_allowlist: Sequence[str] = ()
    """Hosts or CIDRs that tools/webhooks may reach even though they are private/loopback."""
    env: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """The node's environment: the node passes it to the operator's own agents only."""
    llm: LlmAccess | None = None
    """The model's key and guard (`LlmAccess.for_agent`); None: no key, `base_url` guarded
    with `url_allowlist`."""
    pii: frozenset[str] = frozenset()
    """The kinds of personal data (`agents.pii`) replaced by placeholders in what the caller
    said before a model sees it (the tenant's policy, which the node passes); empty: none."""


class Agent(abc.ABC):
    """One call's agent."""

    @abc.abstractmethod
    def respond(
        self, history: Sequence[Message], event: AgentInput
    ) -> AsyncGenerator[AgentOutput, None]:
        """Stream the reply to `event`. `history` ends with the caller's turn, if any.

        Cancellation (barge-in) may arrive at any await; the agent must not swallow it.
        """

    @property
    def slots(self) -> dict[str, str]:
        """What the agent has collected so far (for outcomes); empty when it keeps none."""
        return {}

    def checkpoint(self) -> object:
        """The agent's own state before a turn (beyond the history the session keeps).

        The session takes a turn back when the caller goes on talking right after an early
        endpoint; it then calls `restore` with the checkpoint taken at that endpoint, so the
        combined turn is answered from where the conversation was. Agents that keep no state
        besides the history return None.
        """
        return None

    def restore(self, checkpoint: object) -> None:  # noqa: B027 - optional hook
        """Go back to a state `checkpoint` returned (see there)."""

    @property
    def sensitive_input(self) -> bool:
        """Whether what the caller says or keys next is sensitive (a flow slot marked
        `sensitive`): the session keeps it out of the recording, the events and the history."""
        return False

    @property
    def may_speculate(self) -> bool:
        """Whether the session may run `respond` before the caller's turn is surely over.

        With preemptive replies (`turn.preemptive`) the session starts the reply when the
        caller pauses, holds its audio, and throws it away (cancels `respond`, then `restore`s)
        if the caller goes on. Agents may say yes when `respond` has no effects outside
        `checkpoint`'s state (no HTTP calls to tools or webhooks), or when it awaits
        `agents.speculation.confirmed()` before each effect: that returns once the session
        releases the held reply (the LLM agent does so before tool calls with side effects).
        """
        return False

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release what the agent holds (HTTP clients); called once when the call ends."""
