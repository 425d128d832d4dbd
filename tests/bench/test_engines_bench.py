"""`voicenode-bench engines` at a tiny size (2 streams, 3 s, cpu): the report's fields, its
files and the plot. Speeds are not asserted: this machine is shared."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from bench.cli import main
from bench.engines import StepResult
from bench.engines_cli import stream_counts
from bench.engines_report import build_report
from pipeline.devices import CUDA_PROVIDER, cuda_device_count, onnx_providers_available


def test_stream_counts() -> None:
    assert stream_counts("8") == [8]
    assert stream_counts("16,1,2,4,2") == [1, 2, 4, 16]
    for bad in ("0", "2,x", ""):
        with pytest.raises(argparse.ArgumentTypeError):
            stream_counts(bad)


def _step(streams: int, final_s: float, audio_s: float, errors: tuple[str, ...] = ()) -> StepResult:
    return StepResult(streams, 10.0, [final_s] * 4, [audio_s] * 4, vad_runs=1, errors=list(errors))


def test_streams_per_device_is_the_largest_count_within_the_slo() -> None:
    steps = [_step(1, 0.2, 0.2), _step(2, 0.3, 0.3), _step(4, 0.5, 0.5), _step(8, 0.2, 0.2)]
    report = build_report(steps, device="cpu", slo_ms=700, seconds=10)
    assert [s["meets_slo"] for s in report["steps"]] == [True, True, False, True]
    assert report["streams_per_device"] == 8
    failing = build_report(
        [_step(1, 0.1, 0.1, ("TtsBusy: full",))], device="cpu", slo_ms=700, seconds=10
    )
    assert failing["streams_per_device"] is None


def test_two_streams_three_seconds_on_the_cpu(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "engines"
    code = main(
        ["engines", "--device", "cpu", "--streams", "2", "--seconds", "3", "--out", str(out)]
    )
    assert code == 0, capsys.readouterr()
    report = json.loads((out / "report.json").read_text())
    assert report["device"] == "cpu" and report["seconds_per_step"] == 3.0
    assert set(report) >= {"slo_ms", "machine", "steps", "streams_per_device"}
    (step,) = report["steps"]
    assert step["streams"] == 2 and step["turns"] >= 2 and step["errors"] == []
    for key in ("stt_final_ms", "tts_first_audio_ms"):
        assert step[key]["n"] == step["turns"] and 0 < step[key]["p50"] <= step[key]["p95"]
    assert step["vad"]["runs"] > 0 and step["vad"]["windows_per_run"] >= 1
    assert step["vad"]["ms_per_stream_s"] > 0
    assert step["stt_batches"]["mean"] >= 1 and sum(step["stt_batches"]["sizes"].values()) > 0
    assert step["cpu_cores"] > 0 and isinstance(step["meets_slo"], bool)
    assert report["streams_per_device"] in (None, 2)
    assert "| 2 |" in (out / "report.md").read_text()
    assert (out / "engines.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.skipif(
    cuda_device_count() > 0 or CUDA_PROVIDER in onnx_providers_available(),
    reason="this machine has CUDA: nothing is missing",
)
def test_an_engine_on_a_missing_device_exits_2_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["engines", "--vad-device", "cuda", "--streams", "1", "--seconds", "1"]
    assert main([*args, "--out", str(tmp_path / "out")]) == 2
    assert "vad.device = cuda: " in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
