"""Structured logs: one JSON object per line (or readable text), with the record's extra fields.
`node.log_format = "auto"`: readable text when stderr is a terminal, JSON otherwise.

PII (numbers, transcripts) travels only in structured fields; with `redact_pii` those fields
are dropped before anything is written.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}
PII_FIELDS = frozenset({"text", "transcript", "from_uri", "to_uri", "caller", "number", "digits"})
SECRET_FIELDS = frozenset({"key", "api_key", "admin_key", "token", "authorization", "secret"})


def _fields(record: logging.LogRecord, redact_pii: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in record.__dict__.items():
        if k in _STANDARD or k.startswith("_"):
            continue
        if k in SECRET_FIELDS or (redact_pii and k in PII_FIELDS):
            v = "[redacted]"
        out[k] = v
    return out


class JsonFormatter(logging.Formatter):
    def __init__(self, *, redact_pii: bool = True) -> None:
        super().__init__()
        self.redact_pii = redact_pii

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        doc.update(_fields(record, self.redact_pii))
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self, *, redact_pii: bool = True) -> None:
        super().__init__()
        self.redact_pii = redact_pii

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        fields = " ".join(f"{k}={v}" for k, v in _fields(record, self.redact_pii).items())
        line = f"{stamp} {record.levelname.lower():7} {record.name}: {record.getMessage()}"
        line = f"{line} {fields}" if fields else line
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def json_mode() -> bool:
    """Whether the node's logs are JSON (the root logger writes through a `JsonFormatter`)."""
    return any(isinstance(h.formatter, JsonFormatter) for h in logging.getLogger().handlers)


def console_line(text: str, logger: str, msg: str, **fields: Any) -> str:
    """A line the node prints for a person (the /phone link): `text` as it is, or in JSON mode
    a JSON object like a log record's, so that every line of the node's output parses."""
    if not json_mode():
        return text
    doc = {"ts": round(time.time(), 3), "level": "info", "logger": logger, "msg": msg}
    return json.dumps({**doc, **fields})


def resolve_format(fmt: str, stream: Any = None) -> str:
    """`auto`: "text" when `stream` (default stderr) is a terminal, "json" otherwise."""
    if fmt != "auto":
        return fmt
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    return "text" if callable(isatty) and isatty() else "json"


def setup_logging(level: str = "info", fmt: str = "auto", *, redact_pii: bool = True) -> None:
    """One handler on the root logger, writing to stderr in `fmt` ("auto", "json", "text").
    Called again (a reload), it replaces the handler: level, format and redaction change."""
    handler = logging.StreamHandler(sys.stderr)
    formatter: logging.Formatter = (
        JsonFormatter(redact_pii=redact_pii)
        if resolve_format(fmt) == "json"
        else TextFormatter(redact_pii=redact_pii)
    )
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.captureWarnings(True)  # Python warnings as records of the `py.warnings` logger
    # httpx2 (the OpenAI and MCP clients) and the mcp SDK log URLs and arguments below WARNING;
    # aiosqlite and SQLAlchemy log statements with their parameters (transcripts, numbers)
    noisy_loggers = ("httpx", "httpcore", "httpx2", "httpcore2", "mcp", "aioice", "aiortc")
    database_loggers = ("aiosqlite", "sqlalchemy", "asyncpg")
    for noisy in (*noisy_loggers, *database_loggers, "openai", "faster_whisper"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
