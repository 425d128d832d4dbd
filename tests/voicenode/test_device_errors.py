"""`voicenode serve` with an engine on CUDA and no CUDA here exits 2 naming the setting: a node
asked for a GPU never starts on the CPU instead."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.devices import CUDA_PROVIDER, cuda_device_count, onnx_providers_available

HAS_CUDA = cuda_device_count() > 0 or CUDA_PROVIDER in onnx_providers_available()


@pytest.mark.skipif(HAS_CUDA, reason="this machine has CUDA: nothing is missing")
@pytest.mark.parametrize("key", ["stt", "tts", "vad"])
def test_serve_exits_2_naming_the_device_setting(key: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICENODE_")}
    env.update(
        {
            f"VOICENODE_{key.upper()}__DEVICE": "cuda",
            "VOICENODE_NODE__DATA_DIR": str(tmp_path),
            "VOICENODE_HTTP__PORT": "0",
            "VOICENODE_NODE__LOG_FORMAT": "text",
        }
    )
    r = subprocess.run(
        [sys.executable, "-m", "voicenode.cli", "serve"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert r.returncode == 2, r.stdout[-2000:] + r.stderr[-2000:]
    assert f"voicenode: configuration error: {key}.device = cuda: " in r.stdout
    assert "call the node at" not in r.stdout  # it never served
