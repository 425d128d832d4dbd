"""Install the Smart Turn v3.2 end-of-turn model (BSD-2-Clause) into this environment.

The ONNX file ships inside the `pipecat-ai` wheel on PyPI (`pipecat/audio/turn/smart_turn/data/`).
This takes that one file from the wheel (downloaded with pip, no dependencies, nothing
installed), checks both checksums, and writes it to `<env>/share/voicenode/models/`, where
`pipeline.turn_model.default_model_path()` looks. Run with the environment's python:

    .venv/bin/python deploy/models/fetch_smart_turn.py

`make venv` runs it. Nothing is fetched when the file is already there with the right checksum.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

WHEEL = "pipecat_ai-1.14.0-py3-none-any.whl"
WHEEL_SHA256 = "0352f504b44e78bdf524e45af4bc759601c835b9b7dc195efe5e03384b974a44"
MEMBER = "pipecat/audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx"
MODEL_SHA256 = "2bb026316b14a660486a75b1733cd3fbab8c2fd0314dc9af7be49f8cca967e4f"
TARGET = Path(sys.prefix) / "share" / "voicenode" / "models" / "smart-turn-v3.2-cpu.onnx"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def main() -> int:
    if TARGET.is_file() and sha256(TARGET.read_bytes()) == MODEL_SHA256:
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        pip = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary", ":all:"]
        subprocess.run([*pip, "-d", tmp, "pipecat-ai==1.14.0"], check=True)
        wheel = Path(tmp) / WHEEL
        if sha256(wheel.read_bytes()) != WHEEL_SHA256:
            print(f"fetch_smart_turn: {WHEEL} does not match its checksum", file=sys.stderr)
            return 1
        with zipfile.ZipFile(wheel) as archive:
            model = archive.read(MEMBER)
    if sha256(model) != MODEL_SHA256:
        print(f"fetch_smart_turn: {MEMBER} does not match its checksum", file=sys.stderr)
        return 1
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    partial = TARGET.with_suffix(".part")
    partial.write_bytes(model)
    partial.replace(TARGET)
    print(f"installed {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
