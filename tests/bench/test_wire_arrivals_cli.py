"""`--arrivals`, `--soak` and the mock LLM's replies on the command line; the report's
arrivals series and the bench's CPU beside the node's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import bench.wire.run
from bench.cli import main
from bench.wire.plots import write_plots
from bench.wire.report import wire_report, write_wire_report
from bench.wire.run import WireConfig
from bench.wire.runner import StepResult
from bench.wire.timeline import CallTimeline


def _run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *extra: str) -> WireConfig:
    seen: list[WireConfig] = []

    async def fake_run(cfg: WireConfig, **kw: Any) -> dict[str, Any]:
        seen.append(cfg)
        return {"v2v_ms": {"n": 0}}

    monkeypatch.setattr(bench.wire.run, "run_wire", fake_run)
    argv = ["wire", "--transport", "audiosocket", "--spawn", "--out", str(tmp_path), *extra]
    assert main(argv) == 1
    (cfg,) = seen
    return cfg


def test_defaults_are_staggered_with_varied_replies(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cfg = _run(monkeypatch, tmp_path, "--llm-mock")
    assert cfg.arrivals == "staggered" and cfg.soak_minutes is None
    assert cfg.mock_llm is not None
    assert cfg.mock_llm.reply is None and cfg.mock_llm.seed is None


def test_arrivals_soak_and_a_fixed_reply_reach_the_run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cfg = _run(
        monkeypatch,
        tmp_path,
        "--arrivals",
        "both",
        "--calls",
        "4",
        "--soak",
        "0.1",
        "--llm-mock",
        "--fixed-reply",
        "Sure.",
        "--reply-seed",
        "5",
    )
    assert (cfg.arrivals, cfg.soak_minutes, cfg.calls) == ("both", 0.1, 4)
    assert cfg.mock_llm is not None
    assert (cfg.mock_llm.reply, cfg.mock_llm.seed) == ("Sure.", 5)


def test_soak_and_sweep_do_not_go_together(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    argv = ["wire", "--transport", "audiosocket", "--spawn", "--out", str(tmp_path)]
    assert main([*argv, "--soak", "1", "--sweep"]) == 2
    assert "--soak and --sweep" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*argv, "--arrivals", "trickle"])


def _step(calls: int, arrivals: str) -> StepResult:
    tl = CallTimeline(call=0, answered=0.0, ended=60.0, ended_by="caller")
    return StepResult(
        calls=calls,
        timelines=[tl],
        wall_s=60.0,
        cpu_s=30.0,
        arrivals=arrivals,
        bench_cpu_s=1.5,
    )


def test_the_report_has_both_series_and_the_bench_cpu(tmp_path: Path) -> None:
    steps = [_step(1, "burst"), _step(2, "burst"), _step(1, "staggered")]
    report = wire_report(
        steps,
        transport="audiosocket",
        scenario={"name": "demo", "agent": "a", "lines": 1},
        node={"mode": "spawned"},
        machine={"cpu_count": 2},
        capacity_calls=None,
        capacity_by_arrivals={"burst": None, "staggered": None},
        swept=True,
        target_p95_ms=1500.0,
    )
    json_path, md_path = write_wire_report(report, tmp_path)
    doc = json.loads(json_path.read_text())
    assert doc["arrivals"] == ["burst", "staggered"]
    rows = doc["capacity"]["by_calls"]
    assert [(r["calls"], r["arrivals"]) for r in rows] == [
        (1, "burst"),
        (2, "burst"),
        (1, "staggered"),
    ]
    assert all(r["bench_cpu_s"] == 1.5 and r["node_cpu_s"] == 30.0 for r in rows)
    assert doc["steps"][0]["bench_process"] == {"cpu_s": 1.5, "cpu_s_per_call_minute": 1.5}
    assert set(doc["capacity"]["by_arrivals"]) == {"burst", "staggered"}
    md = md_path.read_text()
    assert "arrivals burst, staggered" in md
    assert "| bench CPU s |" in md and "| 2 | burst |" in md
    paths = write_plots(report, steps, tmp_path)
    assert all(p.exists() for p in paths)


def test_a_sweep_of_both_reports_each_capacity_and_heads_with_the_staggered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bench.scenario import WIRE_SCENARIO, load_scenario

    def fake_capacity(steps: list[StepResult], target_p95_ms: float) -> int:
        return max(s.calls for s in steps)

    monkeypatch.setattr(bench.wire.run, "capacity", fake_capacity)
    cfg = WireConfig(
        transport="audiosocket",
        out=tmp_path,
        scenario=load_scenario(None, default=WIRE_SCENARIO),
        sweep=True,
        arrivals="both",
    )
    steps = [_step(1, "burst"), _step(2, "burst"), _step(1, "staggered"), _step(3, "staggered")]
    report = bench.wire.run._report(cfg, steps, "a", {}, {})
    assert report["capacity"]["by_arrivals"] == {"burst": 2, "staggered": 3}
    assert report["capacity"]["calls"] == 3
