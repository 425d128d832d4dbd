"""Voice activity: webrtcvad as a cheap gate, Silero v6 (ONNX) for the decision.

One onnxruntime session per process (`SileroModel`), recurrent state per call (`VadStream`).
Silero looks at 512-sample windows (32 ms) with 64 samples of context; frames are 20 ms, so
`VadStream` buffers samples and reports the latest probability for each frame it is fed.
While webrtcvad has heard no voice for `gate_hangover` frames, Silero is skipped and its state
reset: silence costs almost nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt
import webrtcvad

from media.frames import FRAME_SAMPLES, SAMPLE_RATE, AudioFrame

WINDOW = 512
CONTEXT = 64


def default_silero_path() -> Path:
    return Path(str(files("faster_whisper").joinpath("assets", "silero_vad_v6.onnx")))


class VadModel(Protocol):
    def run(
        self,
        window: npt.NDArray[np.float32],
        h: npt.NDArray[np.float32],
        c: npt.NDArray[np.float32],
    ) -> tuple[float, npt.NDArray[np.float32], npt.NDArray[np.float32]]: ...


class SileroModel:
    """The shared Silero v6 ONNX session. `run` is thread-safe (onnxruntime sessions are)."""

    def __init__(self, path: str | Path | None = None) -> None:
        import onnxruntime

        opts = onnxruntime.SessionOptions()
        opts.inter_op_num_threads = 1
        opts.intra_op_num_threads = 1
        opts.log_severity_level = 3
        self._session = onnxruntime.InferenceSession(
            str(path or default_silero_path()),
            providers=["CPUExecutionProvider"],
            sess_options=opts,
        )
        self._lock = threading.Lock()

    def run(
        self,
        window: npt.NDArray[np.float32],
        h: npt.NDArray[np.float32],
        c: npt.NDArray[np.float32],
    ) -> tuple[float, npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """One window of CONTEXT + WINDOW float samples → (speech probability, h, c)."""
        out, h2, c2 = self._session.run(None, {"input": window.reshape(1, -1), "h": h, "c": c})
        return float(np.asarray(out).reshape(-1)[0]), h2, c2


Gate = Callable[[bytes], bool]


def webrtc_gate(mode: int) -> Gate:
    """webrtcvad's verdict on one 20 ms frame at 16 kHz."""
    vad = webrtcvad.Vad(mode)
    return lambda pcm: bool(vad.is_speech(pcm, SAMPLE_RATE))


class VadStream:
    """One call's voice activity. Feed every inbound frame; get a speech probability back."""

    def __init__(self, model: VadModel, *, gate: Gate, gate_hangover: int = 15) -> None:
        self._model = model
        self._gate = gate
        self._gate_hangover = gate_hangover
        self._since_voice = gate_hangover + 1
        self._pending = np.zeros(0, dtype=np.float32)
        self._context = np.zeros(CONTEXT, dtype=np.float32)
        self._reset_state()
        self.probability = 0.0
        self.silero_windows = 0

    def _reset_state(self) -> None:
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(CONTEXT, dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)

    def feed(self, frame: AudioFrame) -> float:
        """The speech probability after this frame (0 while the gate hears no voice)."""
        voiced = self._gate(frame.pcm)
        self._since_voice = 0 if voiced else self._since_voice + 1
        if self._since_voice > self._gate_hangover:
            if self.probability != 0.0 or len(self._pending):
                self._reset_state()
            self.probability = 0.0
            return 0.0
        samples = frame.samples.astype(np.float32) / 32768.0
        self._pending = np.concatenate([self._pending, samples])
        while len(self._pending) >= WINDOW:
            chunk, self._pending = self._pending[:WINDOW], self._pending[WINDOW:]
            window = np.concatenate([self._context, chunk])
            self.probability, self._h, self._c = self._model.run(window, self._h, self._c)
            self._context = chunk[-CONTEXT:]
            self.silero_windows += 1
        return self.probability


assert FRAME_SAMPLES < WINDOW
