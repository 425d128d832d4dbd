"""What native libraries print to the process's stdout while the node starts, as log records.

pjlib prints its first lines (`pjlib ... initialized`, the endpoint being created) to stdout
before pjsua2's log writer is installed (`sip.pjlog`); in JSON mode those would be the only
lines of the node's output that are not JSON. `captured_stdout()` points file descriptor 1 at
a pipe for the duration of the block (the node's start), and a reader thread it owns turns
every line that arrives into a record of the `console` logger (the line in the `text` field,
which `redact_pii` drops); on exit the C library's buffers are flushed, descriptor 1 is put
back and the thread has read everything before the block is left. Python's own `print`s in
the block are captured the same way (the node prints nothing while it starts).
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger("console")

JOIN_S = 5.0
"""How long leaving the block waits for the last lines to be logged."""


def _flush_c_stdio() -> None:
    """fflush(NULL): what the C library holds for stdout reaches descriptor 1 now."""
    try:
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):  # no C library to ask (not on Linux/macOS)
        pass


def _pump(read_fd: int) -> None:
    """Read the pipe to its end, one record per line."""
    with os.fdopen(read_fd, "rb") as pipe:
        for raw in pipe:
            line = raw.decode(errors="replace").rstrip()
            if line:
                log.info("native library output", extra={"text": line})


@contextmanager
def captured_stdout(active: bool = True) -> Iterator[None]:
    """While inside, what is written to descriptor 1 becomes `console` log records."""
    if not active:
        yield
        return
    sys.stdout.flush()
    _flush_c_stdio()
    read_fd, write_fd = os.pipe()
    saved = os.dup(1)
    reader = threading.Thread(target=_pump, args=(read_fd,), name="console-capture", daemon=True)
    reader.start()
    os.dup2(write_fd, 1)
    os.close(write_fd)
    try:
        yield
    finally:
        sys.stdout.flush()
        _flush_c_stdio()
        os.dup2(saved, 1)  # the pipe's last writer is gone: the reader sees its end
        os.close(saved)
        reader.join(JOIN_S)  # a child started inside may hold the pipe open: then do not wait
