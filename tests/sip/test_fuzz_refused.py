"""A node that refuses the fuzz's INVITEs (404: its dial plan does not know the number) stays
up. Fuzz seed 1005 with RFC 4475's torture messages as seeds carries, within its first 50,000
datagrams, an INVITE whose SDP offer pjmedia's negotiator failed to validate a second time:
its assertion aborted the node (pjsua_call_on_incoming -> pjmedia_sdp_neg_negotiate ->
create_answer). deploy/pjsua2/patches/0003 refuses the INVITE instead."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import pytest

from bench.sip_churn import ChurnNode
from bench.sip_fuzz import fuzz
from bench.sip_fuzz_run import options_answered

from .torture import write_corpus

pytestmark = pytest.mark.timeout(180)


async def test_a_refusing_node_survives_fuzz_seed_1005(tmp_path: Path) -> None:
    write_corpus(tmp_path / "seeds")
    seeds = [p.read_bytes() for p in sorted((tmp_path / "seeds").iterdir())]
    with tempfile.TemporaryFile("w+") as log:
        node = await ChurnNode.start(["--agent", "echo", "--answer-only", "7000"], log)
        try:
            port = int(node.hello["sip_port"])
            sent = await fuzz(("127.0.0.1", port), 50_000, 1005, extra_seeds=seeds)
            assert sent["datagrams"] == 50_000
            status = await asyncio.to_thread(options_answered, port)
            stats = await node.stats() if node.proc.returncode is None else {}
        finally:
            code = await node.stop()
            log.seek(0)
            tail = log.read()[-2000:]
    assert status.startswith("SIP/2.0 200"), tail
    assert stats.get("refused", 0) > 0  # the fuzz's INVITEs were refused, not answered
    assert stats.get("lifetime_violations") == 0
    assert code == 0, tail
