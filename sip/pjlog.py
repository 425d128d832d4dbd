"""pjsip's own log lines as the node's structured log records (one log stream, not two).

pjsua2 hands every line at or below `LogConfig.consoleLevel` to a `LogWriter`; this one turns
each into a record of the `pjsip` logger: pjsip's level mapped to logging's, the line's source
file as the message and its text in the `text` field (pjsip's texts can quote request-URIs,
so they travel only in a field that `redact_pii` drops). Lines pjlib prints while the library
is still being created, before the writer is installed, still go to the console as they are.

Lifetime (`sip.lifetime`): the endpoint owns the writer (`__disown__`); `libDestroy()`
deletes it on the SIP thread, after its last line.
"""

from __future__ import annotations

import logging
from typing import Any

import pjsua2 as pj

log = logging.getLogger("pjsip")

LEVELS = {0: logging.CRITICAL, 1: logging.ERROR, 2: logging.WARNING, 3: logging.INFO}
"""pjlib's levels 0-3; 4 and up (debug, trace) are DEBUG."""


def record_fields(level: int, msg: str, thread: str) -> tuple[int, str, dict[str, Any]]:
    """(logging level, message, extra fields) for one pjlib line (its sender first)."""
    sender, _, text = msg.strip().partition(" ")
    return (
        LEVELS.get(level, logging.DEBUG),
        f"pjsip {sender}" if sender else "pjsip",
        {"text": text.strip(), "pj_level": level, "pj_thread": thread},
    )


class PjLogWriter(pj.LogWriter):  # type: ignore[misc]
    """Writes pjlib's lines into the `pjsip` logger (any pjlib thread may call it)."""

    def write(self, entry: Any) -> None:
        try:
            level, message, extra = record_fields(
                int(entry.level), str(entry.msg), str(entry.threadName)
            )
            log.log(level, message, extra=extra)
        except Exception:  # noqa: S110 (a log line must never raise into pjlib)
            pass


def install(cfg: Any) -> None:
    """Route the endpoint's log lines (as configured in `cfg.logConfig`) to the writer."""
    writer = PjLogWriter()
    writer.__disown__()  # the endpoint deletes it in libDestroy()
    cfg.logConfig.writer = writer
    cfg.logConfig.decor = int(pj.PJ_LOG_HAS_SENDER)
