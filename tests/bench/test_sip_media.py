"""`python -m bench.sip_media` end to end with one call for a few seconds: the node's SIP
user agent in its own process, the bench's far end (sipp for the signalling, RTP sockets in
the bench), and a report with the expected keys and values that make sense (how fast is the
bench's business, not this test's). And the far end alone against the bench node: answers,
refusals and the hang-up."""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path
from typing import Any

import pytest

from bench.sip_churn import ChurnNode
from bench.sip_media import gaps_ms, lost_packets, main
from bench.sip_media_peer import PeerCall, SippUac, send_rtp, tone_payload

pytestmark = pytest.mark.timeout(120)


def test_one_call_for_a_few_seconds_gives_a_full_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sip_media.json"
    seconds = 3.0
    code = main(
        ["--calls", "1", "--seconds", str(seconds), "--idle-seconds", "1", "--warmup", "1"]
        + ["--out", str(out)]
    )
    assert code == 0, capsys.readouterr().err
    report = json.loads(out.read_text())
    assert json.loads(capsys.readouterr().out) == report  # stdout carries the same report

    assert report["calls"] == 1
    assert report["node"]["exit_code"] == 0, report["node"].get("log_tail")
    assert report["node"]["calls"] == 1  # the node answered exactly the bench's call
    cpu = report["cpu"]
    for key in ("idle_core_pct", "loaded_core_pct", "per_call_core_pct"):
        assert isinstance(cpu[key], float)
    assert cpu["loaded_core_pct"] > 0
    assert set(cpu["loaded_threads_pct"]) >= {"main", "sip"}
    assert cpu["per_call_cpu_s_per_call_minute"] == pytest.approx(
        cpu["per_call_core_pct"] * 0.6, abs=1e-3
    )

    # Packets came back and their gaps were measured. How many arrived in the window and how
    # evenly is timing on a shared machine: reported, never asserted (the bench's targets say
    # whether they were met).
    outbound = report["outbound"]
    assert outbound["expected_packets"] > 0 and outbound["packets"] > 0
    gap = outbound["gap_ms"]
    assert gap["n"] == outbound["packets"] - 1
    assert gap["p99"] >= gap["p50"]
    assert report["inbound"]["packets_sent"] > 0
    assert report["node"]["frames_in"] > 0 and report["node"]["frames_out"] > 0
    assert set(report["targets"]) >= {"cpu_met", "gap_met"}
    print(
        f"sip_media: {outbound['packets']} packets of {outbound['expected_packets']} expected"
        f" over {report['seconds']} s; gaps p50 {gap['p50']} ms p99 {gap['p99']} ms;"
        f" {cpu['per_call_core_pct']} % of a core per call"
    )


def test_gaps_and_losses_from_arrival_times_and_sequence_numbers() -> None:
    assert gaps_ms([1.0, 1.02, 1.05]) == pytest.approx([20.0, 30.0])
    assert gaps_ms([1.0]) == []
    assert lost_packets([1, 2, 5, 6]) == 2
    assert lost_packets([65534, 65535, 0, 2]) == 1  # across the 16-bit wrap
    assert lost_packets([5, 4, 6]) == 0  # reordered, not lost


async def _heard(calls: list[PeerCall], packets: int, timeout_s: float = 10) -> None:
    """Stream into the calls until each has heard `packets` RTP packets from the node."""
    stop = asyncio.Event()
    sender = asyncio.create_task(send_rtp(calls, stop, tone_payload()))
    for call in calls:
        call.rtp.recording = True
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                if all(len(call.rtp.received.seqs) >= packets for call in calls):
                    break
                await asyncio.sleep(0.05)  # polls the counts, bounded by the timeout
    finally:
        stop.set()
        await sender


async def _no_calls_left(node: ChurnNode, timeout_s: float = 5) -> dict[str, Any]:
    """The node's counts once pjsua2 holds no call (or at `timeout_s`: well before the node's
    own RTP timeout, 60 s, could end a call)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        stats = await node.stats()
        if stats["pjsua_calls"] == 0 or asyncio.get_running_loop().time() > deadline:
            return stats
        await asyncio.sleep(0.1)  # polls the node, bounded by the deadline


async def test_sipp_places_the_calls_and_hangs_them_up_with_bye() -> None:
    """One sipp for the calls: each answered call has the node's RTP address and hears the
    node on its own socket; a refused call carries the node's status; `hang_up` ends the
    answered calls with a BYE each, so the node holds none afterwards."""
    with tempfile.TemporaryFile("w+") as log:
        node = await ChurnNode.start(["--agent", "echo", "--answer-only", "7000"], log)
        try:
            address = ("127.0.0.1", int(node.hello["sip_port"]))
            refused = await SippUac.start(address, "1000", calls=1)
            try:
                assert await refused.answered() == []
            finally:
                await refused.hang_up()
            uac = await SippUac.start(address, "7000", calls=2)
            try:
                placed = await uac.answered()
                held = await node.stats()
                await _heard(placed, 10)
            finally:
                await uac.hang_up()
            after = await _no_calls_left(node)
        finally:
            code = await node.stop()
            log.seek(0)
            tail = log.read()[-2000:]
    assert refused.calls[0].failure == "the node answered 404"
    assert [call.failure for call in uac.calls] == ["", ""]
    assert len(placed) == 2 and len({call.rtp.port for call in placed}) == 2
    assert all(call.rtp.remote and call.rtp.remote[0] == "127.0.0.1" for call in placed)
    assert held["pjsua_calls"] == 2, held
    assert all(call.rtp.received.payload_types == {0} for call in placed)
    assert after["pjsua_calls"] == 0 and after["live"] == 0, after
    assert code == 0, tail
