"""Today's ClickHouse in-process for tests: `chdb` (PyPI; ClickHouse 26.9) behind the HTTP
requests the node's `ClickHouse` client makes, so the node's own code (migrations, the sink's
inserts, the summary query, retention) runs unchanged against a current engine.

chdb has no server and no HTTP interface: `ChdbTransport` is an httpx transport that reads each
request as ClickHouse's HTTP interface would (the SQL in `query`, an INSERT's rows in the body,
the external table `p` as a multipart part described by `p_structure`) and runs it in a chdb
session. The external table becomes a temporary table `p` for the one query (chdb takes no
external tables), dropped after it. An error is answered as the server does (HTTP 500, the
`Code: N` text), so the client's error handling is the same as against a server.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from config.clickhouse import ClickHouseSettings
from control_api.analytics.clickhouse import ClickHouse

chdb_session = pytest.importorskip("chdb.session", reason="chdb is a test extra (pip install chdb)")


def _external_table(request: httpx.Request, body: bytes) -> bytes:
    """The `p` part of a multipart/form-data body."""
    head = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    for part in message.iter_parts():
        if part.get_param("name", header="content-disposition") == "p":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload
    raise AssertionError("no external table p in the request")


class ChdbTransport(httpx.AsyncBaseTransport):
    """ClickHouse's HTTP interface, as the node uses it, answered by a chdb session."""

    def __init__(self, session: Any) -> None:  # a chdb.session.Session (chdb has no stubs)
        self._session = session
        self.queries: list[str] = []

    def run(self, sql: str) -> str:
        return str(self._session.query(sql, "JSONEachRow"))

    def _answer(self, request: httpx.Request, body: bytes) -> str:
        params = request.url.params
        sql = params["query"]
        self.queries.append(sql)
        if "p_structure" not in params:
            return self.run(f"{sql}\n{body.decode()}" if body else sql)
        assert params["p_format"] == "JSONEachRow"
        self.run(f"CREATE TEMPORARY TABLE p ({params['p_structure']}) ENGINE = Memory")
        try:
            self.run(f"INSERT INTO p FORMAT JSONEachRow\n{_external_table(request, body).decode()}")
            return self.run(sql)
        finally:
            self.run("DROP TEMPORARY TABLE p")

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        try:
            text = self._answer(request, body)
        except Exception as exc:  # chdb's errors carry the server's `Code: N. DB::Exception` text
            if "Code:" not in str(exc):
                raise
            return httpx.Response(500, text=str(exc), request=request)
        return httpx.Response(200, text=text, request=request)


@pytest.fixture
def chdb_transport(tmp_path: Path) -> Iterator[ChdbTransport]:
    """A chdb session in a temporary directory, with the node's HTTP settings."""
    session = chdb_session.Session(str(tmp_path / "chdb"))
    try:
        # What the client asks for in every request's URL (the HTTP interface applies it).
        session.query("SET output_format_json_quote_64bit_integers = 0")
        yield ChdbTransport(session)
    finally:
        session.close()


@pytest.fixture
async def chdb_ch(chdb_transport: ChdbTransport) -> AsyncIterator[ClickHouse]:
    """The node's `ClickHouse` client on chdb (database `voicenode`, not yet migrated)."""
    async with httpx.AsyncClient(transport=chdb_transport, base_url="http://chdb") as http:
        yield ClickHouse(ClickHouseSettings(url="http://chdb/"), http)


def version(transport: ChdbTransport) -> str:
    return str(json.loads(transport.run("SELECT version() AS v"))["v"])
