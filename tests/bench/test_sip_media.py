"""`python -m bench.sip_media` end to end with one call for a few seconds: the node's SIP
user agent in its own process, the bench's SIP/RTP far end, and a report with the expected
keys and values that make sense (how fast is the bench's business, not this test's)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.sip_media import gaps_ms, lost_packets, main
from bench.sip_media_peer import parse_message, sdp_audio_address

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


def test_the_far_end_reads_sip_responses_and_sdp() -> None:
    sdp = "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 40000 RTP/AVP 0\r\n"
    raw = (
        "SIP/2.0 200 OK\r\nCall-ID: abc\r\nt: <sip:1000@node>;tag=xyz\r\n"
        f"CSeq: 1 INVITE\r\nContent-Length: {len(sdp)}\r\n\r\n{sdp}"
    ).encode()
    message = parse_message(raw)
    assert getattr(message, "status", None) == 200
    assert message.headers["to"].endswith("tag=xyz")  # compact form expanded
    assert sdp_audio_address(message.body) == ("127.0.0.1", 40000)  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="status line"):
        parse_message(b"SIP/2.0 abc\r\n\r\n")
    with pytest.raises(ValueError, match="no IPv4 audio"):
        sdp_audio_address("v=0\r\n")
