"""The one audio format inside a node: 16 kHz mono signed 16-bit, 20 ms frames."""

from __future__ import annotations

from typing import Any, Final

import msgspec
import numpy as np
import numpy.typing as npt

SAMPLE_RATE: Final = 16_000
FRAME_MS: Final = 20
FRAME_SAMPLES: Final = SAMPLE_RATE * FRAME_MS // 1000  # 320
FRAME_BYTES: Final = FRAME_SAMPLES * 2

Samples = npt.NDArray[np.int16]


class AudioFrame(msgspec.Struct, frozen=True):
    """20 ms of 16 kHz mono int16 audio (little-endian bytes) and its position in the stream.

    `seq` counts frames from the start of the stream, so `seq * 20 ms` is the frame's media time.
    """

    pcm: bytes
    seq: int = 0

    def __post_init__(self) -> None:
        if len(self.pcm) != FRAME_BYTES:
            raise ValueError(f"an AudioFrame holds {FRAME_BYTES} bytes, got {len(self.pcm)}")

    @property
    def samples(self) -> Samples:
        """A read-only int16 view of the frame (no copy)."""
        return np.frombuffer(self.pcm, dtype=np.int16)

    @classmethod
    def from_samples(cls, samples: npt.NDArray[np.int16], seq: int = 0) -> AudioFrame:
        return cls(_pcm_bytes(samples), seq)

    @classmethod
    def silence(cls, seq: int = 0) -> AudioFrame:
        return cls(bytes(FRAME_BYTES), seq)


SILENCE_PCM: Final = bytes(FRAME_BYTES)


def frames_from_samples(samples: npt.NDArray[np.int16], start_seq: int = 0) -> list[AudioFrame]:
    """Cut 16 kHz samples into frames; the last one is padded with silence."""
    n = len(samples)
    pad = (-n) % FRAME_SAMPLES
    if pad:
        samples = np.concatenate([samples, np.zeros(pad, dtype=np.int16)])
    data = _pcm_bytes(samples)
    return [
        AudioFrame(data[i : i + FRAME_BYTES], start_seq + k)
        for k, i in enumerate(range(0, len(data), FRAME_BYTES))
    ]


def _pcm_bytes(samples: npt.NDArray[np.integer[Any]]) -> bytes:
    """Little-endian int16 bytes of integer samples.

    Refuses what a cast would silently corrupt: float audio (0.5 would become 0, so float TTS
    output would turn into silence) and integers outside the int16 range (they would wrap).
    """
    arr = np.asarray(samples)
    if arr.dtype.kind not in "iu":
        raise ValueError(f"expected int16 samples, got dtype {arr.dtype} (scale float audio first)")
    if arr.dtype.itemsize > 2 or arr.dtype == np.uint16:
        if arr.size and (arr.min() < -32768 or arr.max() > 32767):
            raise ValueError(f"samples out of int16 range: [{arr.min()}, {arr.max()}]")
    return np.ascontiguousarray(arr, dtype="<i2").tobytes()


def samples_of(frames: list[AudioFrame]) -> Samples:
    if not frames:
        return np.zeros(0, dtype=np.int16)
    return np.frombuffer(b"".join(f.pcm for f in frames), dtype=np.int16)
