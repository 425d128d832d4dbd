"""Agent actions carried out on the call: end it, transfer it, send DTMF."""

from __future__ import annotations

import logging
from typing import Any

from agents.base import EndCall, SendDtmf, ToolResult, Transfer
from media.call import Call, CallControlError
from pipeline.events import ToolCalled
from pipeline.response import Action


class CallLog(logging.LoggerAdapter[logging.Logger]):
    """Every line carries call_id and tenant_id, merged with the line's own fields."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        kwargs["extra"] = {**(self.extra or {}), **kwargs.get("extra", {})}
        return msg, kwargs


async def run_action(action: Action, call: Call, transfer_target: str, log: CallLog) -> str | None:
    """Carry out an agent action on `call`; return the end reason when it ended the call.
    A transfer or DTMF the network refuses is logged and the call goes on."""
    match action:
        case EndCall(reason=reason):
            return reason or "completed"
        case Transfer(target=target):
            try:
                await call.transfer(target or transfer_target)
            except CallControlError as exc:
                log.warning("transfer failed", extra={"error": str(exc)})
                return None
            return "transferred"
        case SendDtmf(digits=digits):
            try:
                await call.send_dtmf(digits)
            except CallControlError as exc:
                log.warning("sending DTMF failed", extra={"error": str(exc)})
    return None


def tool_event(result: ToolResult) -> ToolCalled:
    """The call event for a tool the agent called."""
    return ToolCalled(
        name=result.name, arguments=result.arguments, result=result.result, ok=result.ok
    )
