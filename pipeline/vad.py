"""Voice activity: webrtcvad as a cheap gate, Silero v6 (ONNX) for the decision.

One onnxruntime session per process (`SileroModel`), recurrent state per call (`VadStream`).
Silero looks at 512-sample windows (32 ms) with 64 samples of context; frames are 20 ms, so
`VadStream` buffers samples and reports the latest probability for each frame it is fed.
While webrtcvad has heard no voice for `gate_hangover` frames, Silero is skipped and its state
reset: silence costs almost nothing.

`VadStream.score` (what the call session uses) scores a completed window in the event loop's
shared batch (`pipeline/vad_batch.py`: one Silero run per 20 ms tick for all live calls)
when the model can batch (`SileroModel` runs the batch-edited graph of
`pipeline/silero_graph.py`); `VadStream.feed` and models without `run_batch` (the fakes) run
one window per call inline, as before.
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
from pipeline.devices import check_session, onnx_providers
from pipeline.silero_graph import batched_silero
from pipeline.vad_batch import BatchVadModel, VadBatcher, shared_batcher

WINDOW = 512
CONTEXT = 64
ROW = CONTEXT + WINDOW


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
    """The shared Silero v6 ONNX session, batch-edited (`batched_silero`): `run` scores one
    window, `run_batch` many calls' windows in one run. Thread-safe (onnxruntime sessions
    are)."""

    def __init__(self, path: str | Path | None = None, *, device: str = "cpu") -> None:
        """`device`: `vad.device` (`cuda`: onnxruntime's CUDA provider, or `DeviceError`)."""
        import onnxruntime

        providers = onnx_providers("vad.device", device)
        opts = onnxruntime.SessionOptions()
        opts.inter_op_num_threads = 1
        opts.intra_op_num_threads = 1
        opts.log_severity_level = 3
        raw = Path(path or default_silero_path()).read_bytes()
        self._session = onnxruntime.InferenceSession(
            batched_silero(raw),
            providers=providers,
            sess_options=opts,
        )
        check_session("vad.device", device, self._session)
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

    def run_batch(
        self,
        windows: npt.NDArray[np.float32],
        h: npt.NDArray[np.float32],
        c: npt.NDArray[np.float32],
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """B calls' windows [B, CONTEXT + WINDOW], states [1, B, 128] → (probabilities [B],
        h [1, B, 128], c [1, B, 128]); row i depends on row i's window and state only."""
        out, h2, c2 = self._session.run(None, {"input": windows, "h": h, "c": c})
        return np.asarray(out, dtype=np.float32).reshape(-1), h2, c2


Gate = Callable[[bytes], bool]


def open_gate(pcm: bytes) -> bool:
    """No gate: Silero scores every frame (`vad.gate = "none"`)."""
    return True


def webrtc_gate(mode: int) -> Gate:
    """webrtcvad's verdict on one 20 ms frame at 16 kHz."""
    vad = webrtcvad.Vad(mode)
    return lambda pcm: bool(vad.is_speech(pcm, SAMPLE_RATE))


class VadStream:
    """One call's voice activity. Feed every inbound frame; get a speech probability back."""

    def __init__(
        self,
        model: VadModel,
        *,
        gate: Gate,
        gate_hangover: int = 15,
        batcher: VadBatcher | None = None,
    ) -> None:
        """`batcher`: where `score` sends windows; by default the running loop's shared one
        for a model with `run_batch` (`shared_batcher`), none (inline runs) otherwise."""
        self._model = model
        self._gate = gate
        self._gate_hangover = gate_hangover
        self._since_voice = gate_hangover + 1
        # [context | samples not yet scored]: a window is its first ROW samples
        self._buf = np.zeros(ROW + FRAME_SAMPLES, dtype=np.float32)
        self._fill = CONTEXT
        self._reset_state()
        self.probability = 0.0
        self.silero_windows = 0
        self._batcher = batcher
        self._open = False

    def _reset_state(self) -> None:
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._buf[:CONTEXT] = 0.0
        self._fill = CONTEXT

    def feed(self, frame: AudioFrame) -> float:
        """The speech probability after this frame (0 while the gate hears no voice); the
        window, if the frame completes one, scored on its own."""
        window = self._advance(frame)
        if window is not None:
            self._accept(*self._model.run(window, self._h, self._c))
        return self.probability

    async def score(self, frame: AudioFrame) -> float:
        """As `feed`, with the window scored in the loop's shared batch when the model
        batches (waits at most one frame, see `pipeline/vad_batch.py`); without a window to
        score it returns at once, without yielding to the loop."""
        window = self._advance(frame)
        if window is not None:
            batcher = self._shared_batcher()
            if batcher is None:
                self._accept(*self._model.run(window, self._h, self._c))
            else:
                scored = batcher.run_alone(window, self._h, self._c)
                if scored is None:
                    scored = await batcher.submit(window, self._h, self._c)
                self._accept(*scored)
        return self.probability

    def _shared_batcher(self) -> VadBatcher | None:
        if self._batcher is None and isinstance(self._model, BatchVadModel):
            self._batcher = shared_batcher(self._model)
            self._batcher.opened(self)  # this stream's gate is open: it has a window
        return self._batcher

    def _advance(self, frame: AudioFrame) -> npt.NDArray[np.float32] | None:
        """Gate the frame and buffer it; the window [CONTEXT + WINDOW] it completes, if any
        (at most one: a frame is shorter than a window)."""
        voiced = self._gate(frame.pcm)
        self._since_voice = 0 if voiced else self._since_voice + 1
        if self._since_voice > self._gate_hangover:
            if self.probability != 0.0 or self._fill > CONTEXT:
                self._reset_state()
            self._set_open(False)
            self.probability = 0.0
            return None
        self._set_open(True)
        end = self._fill + FRAME_SAMPLES
        # int16 / 32768 is exact in float32: the same samples the model always got
        np.multiply(frame.samples, 1 / 32768, out=self._buf[self._fill : end], casting="unsafe")
        if end < ROW:
            self._fill = end
            return None
        window = self._buf[:ROW].copy()
        # the window's last CONTEXT samples are the next one's context; the rest waits
        self._buf[: end - WINDOW] = self._buf[WINDOW:end]
        self._fill = end - WINDOW
        return window

    def close(self) -> None:
        """The call is over: the batcher no longer waits for this stream's windows."""
        self._set_open(False)

    def _accept(self, p: float, h: npt.NDArray[np.float32], c: npt.NDArray[np.float32]) -> None:
        self.probability, self._h, self._c = p, h, c
        self.silero_windows += 1

    def _set_open(self, is_open: bool) -> None:
        """Tell the batcher whether this stream may submit (it flushes early once all have)."""
        if is_open == self._open or self._batcher is None:
            self._open = is_open
            return
        self._open = is_open
        if is_open:
            self._batcher.opened(self)
        else:
            self._batcher.closed(self)


assert FRAME_SAMPLES < WINDOW
