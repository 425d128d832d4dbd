"""Why a call is refused, and what each transport answers: one tree, one table.

Every transport's intake (`control_api.intake`) raises or catches a `CallRefused`; what the far
end gets is looked up once in `ANSWERS` by the refusal's class (the nearest listed base wins):
the SIP final status, the HTTP status and the AudioSocket error code. A refusal with a
`retry_after_s` also sends `Retry-After`.
"""

from __future__ import annotations

from typing import Final, Literal, NamedTuple

from core.errors import Refused
from media.audiosocket import ErrorCode


class CallRefused(Refused):
    """A new call was not taken; `reason` is its `voicenode_calls_refused_total` label.
    Retryable when it says when to come back (`retry_after_s`)."""

    def __init__(self, reason: str, retry_after_s: int | None = None) -> None:
        super().__init__(reason, retryable=retry_after_s is not None)
        self.reason = reason
        self.retry_after_s = retry_after_s

    @property
    def detail(self) -> str:
        """What an API client is told."""
        return f"call refused: {self.reason}"

    @property
    def headers(self) -> dict[str, str]:
        """`Retry-After` when the caller may try again later."""
        return {} if self.retry_after_s is None else {"Retry-After": str(self.retry_after_s)}


class OverCapacity(CallRefused):
    """The node is full or still loading its models. Retry after `retry_after_s`."""

    def __init__(self, reason: str, retry_after_s: int) -> None:
        super().__init__(reason, retry_after_s)
        self.args = (f"call refused: {reason}; retry after {retry_after_s} s",)


class Draining(OverCapacity):
    """The node is draining: it takes no new call."""


class EngineSaturated(OverCapacity):
    """The node's engines are loaded so that one more call would push the projected
    voice-to-voice p95 over `node.slo_v2v_ms` (`pipeline.load`); live calls go on."""


class QuotaExceeded(CallRefused):
    """A call was refused by its tenant's quota; retry after `retry_after_s`."""

    def __init__(
        self, reason: Literal["max_concurrent_calls", "calls_per_minute"], retry_after_s: int
    ) -> None:
        super().__init__(reason, retry_after_s)
        self.args = (f"tenant quota {reason} reached; retry after {retry_after_s} s",)

    @property
    def detail(self) -> str:
        return f"call refused: {self}"


class UnknownRoute(CallRefused):
    """Nobody answers what was dialled: an unknown number, agent or call UUID."""

    @property
    def detail(self) -> str:
        return self.reason


class NotAllowed(CallRefused):
    """The caller may not call this node (a source outside the allowlist)."""


class ShuttingDown(CallRefused):
    """The node stopped taking calls between admitting this one and starting it."""

    def __init__(self) -> None:
        super().__init__("shutting down")


class Answer(NamedTuple):
    sip_status: int
    sip_reason: str
    http_status: int
    audiosocket: ErrorCode


ANSWERS: Final[dict[type[CallRefused], Answer]] = {
    CallRefused: Answer(503, "Service Unavailable", 503, ErrorCode.REFUSED),
    EngineSaturated: Answer(503, "Service Unavailable", 503, ErrorCode.REFUSED),
    # 486 is what a carrier expects for "this customer is at its limit".
    QuotaExceeded: Answer(486, "Busy Here", 429, ErrorCode.REFUSED),
    UnknownRoute: Answer(404, "Not Found", 404, ErrorCode.UNKNOWN_CALL),
    NotAllowed: Answer(403, "Forbidden", 403, ErrorCode.REFUSED),
}


def answer_for(refusal: CallRefused) -> Answer:
    """The table's row for `refusal` (its nearest listed class)."""
    return next(ANSWERS[cls] for cls in type(refusal).__mro__ if cls in ANSWERS)
