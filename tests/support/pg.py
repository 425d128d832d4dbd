"""A throwaway PostgreSQL server for tests: `initdb` + `pg_ctl` (Debian's postgresql 15) on a
free 127.0.0.1 port, in a temporary directory that is removed afterwards.

PostgreSQL refuses to run as root; as root the server runs as the `postgres` system user (via
`runuser`), in a directory under the system temp dir owned by that user (pytest's `tmp_path`
sits below a 0700 directory the `postgres` user cannot enter).

    with postgres_server() as pg:          # one cluster (about a second to start)
        url = pg.create_database()         # a fresh, empty database per test
        ...                                # postgresql+asyncpg://postgres@127.0.0.1:PORT/NAME

`pg_server` is a session-scoped pytest fixture for modules that import it; the cluster is
skipped (not failed) where the binaries are missing.
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support.ports import free_port

BIN = Path(os.environ.get("VOICENODE_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
SYSTEM_USER = "postgres"


class PostgresServer:
    """A running cluster; `create_database()` returns the async URL of a new empty database."""

    def __init__(self, port: int, run_as: list[str]) -> None:
        self.port = port
        self._run_as = run_as
        self._names = itertools.count(1)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        name = f"t{os.getpid()}_{next(self._names)}"
        self.psql(f"CREATE DATABASE {name}")
        return self.url(name)

    def psql(self, sql: str) -> str:
        out = subprocess.run(
            [
                *self._run_as,
                str(BIN / "psql"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-v",
                "ON_ERROR_STOP=1",
                "-tAc",
                sql,
            ],
            check=True,
            capture_output=True,
            text=True,
            timeout=30,
        )
        return out.stdout.strip()


def _run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr}")


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """Start a cluster; stop it and remove its files on exit."""
    if not (BIN / "initdb").exists():
        pytest.skip(f"PostgreSQL binaries not found in {BIN}")
    root = Path(tempfile.mkdtemp(prefix="voicenode-pg-"))
    run_as: list[str] = []
    if os.geteuid() == 0:
        user = pwd.getpwnam(SYSTEM_USER)
        os.chown(root, user.pw_uid, user.pw_gid)
        run_as = ["runuser", "-u", SYSTEM_USER, "--"]
    data = root / "data"
    started = False
    try:
        _run([*run_as, str(BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
              "-E", "UTF8", "--no-sync", "--no-instructions"])  # fmt: skip
        for attempt in range(5):
            port = free_port(socket.SOCK_STREAM)
            opts = (
                f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off"
                " -c synchronous_commit=off -c full_page_writes=off"
            )
            cmd = [*run_as, str(BIN / "pg_ctl"), "-D", str(data), "-o", opts, "-l",
                   str(root / "server.log"), "-w", "-t", "60", "start"]  # fmt: skip
            try:
                _run(cmd)
            except RuntimeError:
                if attempt == 4:  # the port was taken between probing and binding: retry
                    raise
                continue
            started = True
            yield PostgresServer(port, run_as)
            break
    finally:
        if started:
            _run([*run_as, str(BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w",
                  "stop"])  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server
