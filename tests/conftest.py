"""Whole-suite hooks and fixtures.

The `engines` fixture: the real models, loaded once per test session (they are
process-wide), with the agent's voice deterministic (`DETERMINISTIC_VOICE`).

The trail: leave a trail that names the running test, for when the process dies.

With `VOICENODE_TEST_TRAIL` set to a directory (`.ci/run` sets it), `running` in it holds
`running <nodeid>` from the start of each test's setup until its teardown is over (then
`finished <nodeid>`), and `status` gets pytest's exit status once the session ends. A test
run that dies (a segfault in native code, a hard timeout) leaves `running` naming the test
and no `status`, so `.ci/run` can say which test it was and fetch the C backtrace.
Unset, nothing is written.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import _pytest.logging
import pytest

if TYPE_CHECKING:
    from pipeline.engines import Engines

_TRAIL = os.environ.get("VOICENODE_TEST_TRAIL", "")


def _note(name: str, text: str) -> None:
    """Replace the file in one write(2): a crash right after it keeps the text."""
    fd = os.open(Path(_TRAIL) / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def pytest_sessionstart(session: pytest.Session) -> None:
    if _TRAIL:
        Path(_TRAIL).mkdir(parents=True, exist_ok=True)
        _note("running", f"started pid {os.getpid()}\n")


def pytest_runtest_logstart(nodeid: str, location: tuple[str, int | None, str]) -> None:
    if _TRAIL:
        _note("running", f"running {nodeid}\n")


def pytest_runtest_logfinish(nodeid: str, location: tuple[str, int | None, str]) -> None:
    if _TRAIL:
        _note("running", f"finished {nodeid}\n")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _TRAIL:
        _note("status", f"{int(exitstatus)}\n")


@pytest.fixture(autouse=True)
def _root_logging() -> Iterator[None]:
    """Give every test the root logger as it found it: code under test that sets the node's
    logging up (the CLI's `setup_logging` replaces the root handlers with a JSON one) must not
    change what later tests see. pytest's own capture handlers come and go per phase; only
    the others are restored."""
    root = logging.getLogger()
    ours = (_pytest.logging.LogCaptureHandler, _pytest.logging._LiveLoggingNullHandler)
    handlers = [h for h in root.handlers if not isinstance(h, ours)]
    level = root.level
    yield
    root.handlers[:] = [h for h in root.handlers if isinstance(h, ours)] + handlers
    root.setLevel(level)


@pytest.fixture(scope="session")
def engines() -> Iterator[Engines]:
    """The real models (loaded only by the tests that ask for them; imported here lazily)."""
    from config import load_settings
    from pipeline.engines import Engines
    from tests.support.speech import DETERMINISTIC_VOICE

    eng = Engines.load_blocking(load_settings(env=DETERMINISTIC_VOICE))
    yield eng
    eng.close()
