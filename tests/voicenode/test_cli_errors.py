"""The `voicenode` command refuses bad configuration and bad audio before loading any model."""

from __future__ import annotations

import os
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from media.wav import write_wav


def voicenode(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("VOICENODE_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "voicenode.cli", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=60,
        check=False,
    )


def test_bad_environment_variable_exits_2_naming_it(tmp_path: Path) -> None:
    r = voicenode(
        "simulate", "--out", str(tmp_path), "--say", "hi", env={"VOICENODE_HTTP__PORT": "eighty"}
    )
    assert r.returncode == 2
    assert "VOICENODE_HTTP__PORT" in r.stderr and "http.port" in r.stderr
    assert "'eighty'" in r.stderr and "int" in r.stderr


def test_bad_config_file_exits_2_naming_the_key(tmp_path: Path) -> None:
    cfg = tmp_path / "node.toml"
    cfg.write_text("[vad]\nspeech_threshold = 1.5\n")
    for args in (("--config", str(cfg), "simulate"), ("simulate", "--config", str(cfg))):
        r = voicenode(*args, "--out", str(tmp_path), "--say", "hi")
        assert r.returncode == 2, r.stderr
        assert "vad.speech_threshold = 1.5" in r.stderr and "< 1.0" in r.stderr


def test_unknown_agent(tmp_path: Path) -> None:
    r = voicenode("simulate", "--agent", "nobody", "--out", str(tmp_path), "--say", "hi")
    assert r.returncode == 2
    assert "unknown agent 'nobody'" in r.stderr and "receptionist" in r.stderr


def _stereo(path: Path) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(np.zeros(3200, dtype=np.int16).tobytes())


def _truncated(path: Path) -> None:
    write_wav(path, np.ones(16000, dtype=np.int16), 16000)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _empty(path: Path) -> None:
    write_wav(path, np.zeros(0, dtype=np.int16), 16000)


def _odd_rate(path: Path) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(11025)
        w.writeframes(np.zeros(1000, dtype=np.int16).tobytes())


def _not_wav(path: Path) -> None:
    path.write_bytes(b"ID3\x03hello this is an mp3")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (_stereo, "expected mono, got 2 channels"),
        (_truncated, "truncated"),
        (_empty, "no samples"),
        (_odd_rate, "11025"),
        (_not_wav, "not a WAV"),
    ],
)
def test_bad_audio_is_refused_with_a_clear_error(make, message: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    wav = tmp_path / "line.wav"
    make(wav)
    r = voicenode("simulate", "--out", str(tmp_path / "out"), "--wav", str(wav))
    assert r.returncode == 2
    assert str(wav) in r.stderr
    assert message in r.stderr, r.stderr
    assert not (tmp_path / "out").exists()


def test_simulate_needs_a_line(tmp_path: Path) -> None:
    r = voicenode("simulate", "--out", str(tmp_path))
    assert r.returncode == 2 and "--say" in r.stderr
