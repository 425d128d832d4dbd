"""`voicenode-bench wire --soak`: a 0.1 minute soak of one call against a spawned node with an
LLM agent on the varied mock LLM (slow: the node loads its models)."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.image
import pytest

from bench.cli import main

ONE_LINE = """
name = "one line"
agent = "receptionist"
lines = [{ text = "Hi, I'd like to book a cleaning." }]
"""


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_a_tiny_soak_against_a_spawned_node(tmp_path: Path) -> None:
    scenario = tmp_path / "one.toml"
    scenario.write_text(ONE_LINE, encoding="utf-8")
    out = tmp_path / "out"
    argv = ["wire", "--transport", "audiosocket", "--spawn", "--soak", "0.1", "--calls", "1"]
    argv += ["--llm-mock", "--ttft-ms", "100", "--tokens-per-s", "50", "--reply-seed", "1"]
    code = main([*argv, "--scenario", str(scenario), "--out", str(out)])
    assert code == 0
    doc = json.loads((out / "report.json").read_text())
    assert doc["bench"] == "wire-soak" and doc["minutes"] == 0.1
    assert doc["calls_run"] >= 1 and doc["failed_calls"] == 0
    assert doc["v2v_ms"]["n"] >= 1 and doc["v2v_ms"]["p50"] > 0
    assert doc["node"]["mock_llm"]["replies"] == "varied"
    series = doc["series"]
    assert len(series["t_s"]) >= 2
    assert all(mb is not None and mb > 100 for mb in series["rss_mb"])  # from /proc
    assert any(ms is not None for ms in series["healthz_ms"])
    assert doc["targets"]["no_failed_calls"]["met"] is True
    assert matplotlib.image.imread(out / "soak.png").ndim == 3
    assert "| loop_lag_p99_ms |" in (out / "report.md").read_text()
