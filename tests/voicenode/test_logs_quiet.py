"""The HTTP stacks and the MCP SDK log URLs and tool arguments below WARNING: the node's
logging keeps them at WARNING (no MCP server URL, header or argument in an INFO log)."""

from __future__ import annotations

import logging

from voicenode.logs import setup_logging

QUIET = ("httpx", "httpx2", "httpcore2", "mcp", "mcp.client.streamable_http")


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
