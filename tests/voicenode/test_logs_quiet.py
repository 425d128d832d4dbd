"""The HTTP stacks and the MCP SDK log URLs and tool arguments below WARNING, and the database
drivers log statements with their parameters (a transcript, a caller's number): the node's
logging keeps them at WARNING even at `log_level = "debug"` (no MCP server URL, header,
argument or stored line in the node's log)."""

from __future__ import annotations

import logging

from voicenode.logs import setup_logging

QUIET = (
    "httpx",
    "httpx2",
    "httpcore2",
    "mcp",
    "mcp.client.streamable_http",
    "aiosqlite",
    "sqlalchemy.engine.Engine",
    "asyncpg",
)


def test_http_and_mcp_loggers_stay_at_warning() -> None:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, {n: logging.getLogger(n).level for n in QUIET})
    try:
        setup_logging("debug", "json")
        for name in QUIET:
            assert logging.getLogger(name).getEffectiveLevel() == logging.WARNING, name
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        for name, level in saved[2].items():
            logging.getLogger(name).setLevel(level)
