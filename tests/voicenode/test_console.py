"""The node's console in JSON mode: `log_format = "auto"` picks by the terminal, native
libraries' stdout during the start becomes log records, printed lines are JSON objects."""

from __future__ import annotations

import ctypes
import io
import json
import logging
import os
from collections.abc import Iterator

import pytest

from voicenode.console import captured_stdout
from voicenode.logs import JsonFormatter, console_line, resolve_format


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_auto_is_text_on_a_terminal_and_json_otherwise() -> None:
    assert resolve_format("auto", _Tty()) == "text"
    assert resolve_format("auto", io.StringIO()) == "json"
    assert resolve_format("json", _Tty()) == "json"
    assert resolve_format("text", io.StringIO()) == "text"


def test_what_c_code_prints_to_stdout_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="console")
    libc = ctypes.CDLL(None)
    with captured_stdout():
        libc.printf(b"pjlib 2.17 for POSIX initialized\n")  # buffered in the C library
        os.write(1, b"a second line\n")
    texts = [r.text for r in caplog.records if r.name == "console"]  # type: ignore[attr-defined]
    # (the C library may hold its line until the block's end flushes it: order not compared)
    assert sorted(texts) == ["a second line", "pjlib 2.17 for POSIX initialized"]


@pytest.fixture
def json_root() -> Iterator[None]:
    root = logging.getLogger()
    handler = logging.StreamHandler(io.StringIO())
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    yield
    root.removeHandler(handler)


def test_printed_lines_are_json_in_json_mode(json_root: None) -> None:
    line = console_line("voicenode: call the node at X", "voicenode.serve", "call", url="X")
    doc = json.loads(line)
    assert (doc["level"], doc["logger"], doc["msg"], doc["url"]) == (
        "info",
        "voicenode.serve",
        "call",
        "X",
    )


def test_printed_lines_are_text_otherwise() -> None:
    assert console_line("voicenode: hello", "voicenode.serve", "hello") == "voicenode: hello"
