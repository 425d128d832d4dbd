"""`voicenode serve` as a process: the printed /phone URL (a phone token, never the admin key),
SIGTERM drain, a second signal."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import msgspec
import numpy as np
import pytest

from tests.support.webrtc_peer import TestPeer
from voicenode.serve import phone_url

ROOT = Path(__file__).resolve().parents[2]
KEY = "drain-test-key-abcdef-0123456789"
URL_LINE = re.compile(r"call the node at (http://127\.0\.0\.1:(\d+)/phone#key=(\S+))")


class Proc(msgspec.Struct):
    proc: asyncio.subprocess.Process
    base: str
    token: str
    """The phone token the printed /phone link carries."""
    stdout: list[str]
    log: list[str]
    logged: asyncio.Event

    async def wait_log(self, text: str, limit_s: float = 10) -> None:
        """Wait until the node has logged a line containing `text`."""
        async with asyncio.timeout(limit_s):
            while not any(text in line for line in self.log):
                self.logged.clear()
                await self.logged.wait()


async def _collect(stream: asyncio.StreamReader, lines: list[str], logged: asyncio.Event) -> None:
    while line := await stream.readline():
        lines.append(line.decode(errors="replace"))
        logged.set()


# ICE on loopback only, set the way an operator sets it: the `[webrtc]` section of a file.
CONFIG = """
[webrtc]
host_addresses = ["127.0.0.1"]
"""


@asynccontextmanager
async def node_process(admin_key: str | None = KEY, drain_s: float = 30) -> AsyncIterator[Proc]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICENODE_")}
    env |= {
        "VOICENODE_HTTP__HOST": "127.0.0.1",
        "VOICENODE_HTTP__PORT": "0",
        "VOICENODE_NODE__MAX_CALLS": "2",
        "VOICENODE_NODE__DRAIN_TIMEOUT_S": str(drain_s),
        "PYTHONPATH": str(ROOT),
    }
    if admin_key is not None:
        env["VOICENODE_ADMIN_KEY"] = admin_key
    config = Path(tempfile.mkdtemp(prefix="voicenode-serve-")) / "node.toml"
    config.write_text(CONFIG)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.voicenode.serve_entry",
        str(config),
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    log: list[str] = []
    logged = asyncio.Event()
    assert proc.stdout is not None and proc.stderr is not None
    reader = asyncio.get_running_loop().create_task(_collect(proc.stderr, log, logged))
    try:
        lines: list[str] = []
        async with asyncio.timeout(30):
            while True:
                line = (await proc.stdout.readline()).decode()
                assert line, f"the node exited before printing its URL: {lines}"
                lines.append(line)
                if match := URL_LINE.search(line):
                    break
        base = match.group(1).split("/phone")[0]
        yield Proc(proc=proc, base=base, token=match.group(3), stdout=lines, log=log, logged=logged)
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
        await reader
        shutil.rmtree(config.parent)


async def wait_exit(proc: asyncio.subprocess.Process, limit_s: float = 30) -> int:
    async with asyncio.timeout(limit_s):
        return await proc.wait()


async def place_call(http: httpx.AsyncClient, key: str, peer: TestPeer) -> httpx.Response:
    offer = await peer.offer()
    return await http.post(
        "/v1/webrtc/offer",
        json={"agent": "receptionist", **offer},
        headers={"Authorization": f"Bearer {key}"},
    )


def speech() -> np.ndarray:  # type: ignore[type-arg]
    t = np.arange(16000) / 16000
    return (np.sin(2 * np.pi * 220 * t) * 6000).astype(np.int16)


async def test_sigterm_drains_live_call_refuses_new_ones_and_exits_0() -> None:
    async with node_process() as node:
        assert node.token.startswith("vnp_") and KEY not in "".join(node.stdout)
        async with httpx.AsyncClient(base_url=node.base, timeout=20) as http:
            assert (await http.get("/readyz")).status_code == 200
            live = TestPeer(speech())
            late = TestPeer(speech())
            try:
                resp = await place_call(http, KEY, live)
                assert resp.status_code == 200, resp.text
                # the [webrtc] settings reached the answer: host candidates on 127.0.0.1 only
                candidates = [
                    line.split()[4]
                    for line in resp.json()["sdp"].splitlines()
                    if line.startswith("a=candidate:")
                ]
                assert candidates and set(candidates) == {"127.0.0.1"}, candidates
                await live.accept(resp.json()["sdp"])
                await live.wait_state("connected")
                await live.wait_message(lambda m: m.get("type") == "state")

                node.proc.send_signal(signal.SIGTERM)
                await node.wait_log("signal: draining")
                ready = await http.get("/readyz")
                assert ready.status_code == 503 and ready.json()["status"] == "draining"
                refused = await place_call(http, KEY, late)
                assert refused.status_code == 503
                assert int(refused.headers["retry-after"]) > 0
                # the live call is still served: its echo keeps coming
                heard = len(live.audio())
                await live.wait_audio(lambda a: len(a) > heard + 8000)
                assert node.proc.returncode is None
            finally:
                await live.close()  # the caller hangs up: the drain completes
                await late.close()
            assert await wait_exit(node.proc) == 0
    assert any("drained" in line for line in node.log)
    assert not any(KEY in line for line in node.log), "the admin key reached a log"


@asynccontextmanager
async def connected_call(node: Proc) -> AsyncIterator[TestPeer]:
    """A browser call to the node (the admin key), connected; the peer closed at the end."""
    async with httpx.AsyncClient(base_url=node.base, timeout=20) as http:
        peer = TestPeer(speech())
        try:
            resp = await place_call(http, KEY, peer)
            assert resp.status_code == 200
            await peer.accept(resp.json()["sdp"])
            await peer.wait_state("connected")
            yield peer
        finally:
            await peer.close()


async def test_drain_timeout_ends_calls_and_exits_0() -> None:
    async with node_process(drain_s=0.5) as node, connected_call(node) as peer:
        node.proc.send_signal(signal.SIGTERM)
        assert await wait_exit(node.proc) == 0
        await peer.wait_state("closed", "failed", limit_s=10)


async def test_second_signal_stops_at_once() -> None:
    async with node_process(drain_s=300) as node, connected_call(node):
        node.proc.send_signal(signal.SIGTERM)
        await node.wait_log("signal: draining")
        node.proc.send_signal(signal.SIGINT)
        assert await wait_exit(node.proc, limit_s=10) == 1


async def test_the_printed_link_places_calls_and_nothing_else() -> None:
    async with node_process() as node:
        async with httpx.AsyncClient(base_url=node.base, timeout=20) as http:
            peer = TestPeer(speech())
            try:
                resp = await place_call(http, node.token, peer)
                assert resp.status_code == 200, resp.text
                await peer.accept(resp.json()["sdp"])
                await peer.wait_state("connected")
            finally:
                await peer.close()
            token = {"Authorization": f"Bearer {node.token}"}
            for path in ("/v1/agents", "/v1/numbers", "/v1/keys", "/v1/tenants"):
                assert (await http.get(path, headers=token)).status_code == 403, path
            assert (await http.get("/v1/tenants", headers=auth_header(KEY))).status_code == 200
        node.proc.send_signal(signal.SIGTERM)
        assert await wait_exit(node.proc) == 0
    assert not any(node.token in line for line in node.log), "the phone token reached a log"


async def test_without_a_configured_key_there_is_no_platform_admin() -> None:
    async with node_process(admin_key=None) as node:
        assert any("no admin key configured" in line for line in node.stdout)
        assert node.token.startswith("vnp_")
        async with httpx.AsyncClient(base_url=node.base, timeout=20) as http:
            assert (await http.get("/v1/tenants")).status_code == 401
            for key in ("x", KEY):
                resp = await http.get("/v1/tenants", headers=auth_header(key))
                assert resp.status_code == 401, key
            resp = await http.get("/v1/tenants", headers=auth_header(node.token))
            assert resp.status_code == 403
            body = {"agent": "receptionist", "sdp": "v=0\r\n", "type": "offer"}
            resp = await http.post("/v1/webrtc/offer", json=body, headers=auth_header(node.token))
            assert resp.status_code == 400  # the link still works: past auth, to the SDP check
        node.proc.send_signal(signal.SIGTERM)
        assert await wait_exit(node.proc) == 0


def auth_header(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("127.0.0.1", "http://127.0.0.1:8080/phone#key=k"),
        ("0.0.0.0", "http://127.0.0.1:8080/phone#key=k"),
        ("::1", "http://[::1]:8080/phone#key=k"),
        ("node.example", "http://node.example:8080/phone#key=k"),
    ],
)
def test_phone_url(host: str, url: str) -> None:
    assert phone_url(host, 8080, "k") == url
