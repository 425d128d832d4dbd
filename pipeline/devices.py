"""Where the engines run: `stt.device` (CTranslate2), `tts.device` and `vad.device`
(onnxruntime's CUDA execution provider), each `cpu` or `cuda` (`stt.device` also `auto`).

A setting that asks for CUDA gets it or the node does not start: `DeviceError` names the
setting and what is missing (no device, a CPU-only build, CUDA libraries that do not load);
nothing falls back to the CPU on its own. Only `stt.device = auto` chooses: CUDA when
CTranslate2 finds a device, else the CPU (logged). The CUDA runtime libraries come with the
`voicenode[gpu]` extra (docs/operations.md, "GPU").
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from config.schema import Settings
from core.errors import ConfigError, EngineError

log = logging.getLogger(__name__)

CUDA_PROVIDER = "CUDAExecutionProvider"
CPU_PROVIDER = "CPUExecutionProvider"
_INSTALL = "install voicenode[gpu] on a machine with an NVIDIA GPU and driver, or set {key} = cpu"


class DeviceError(EngineError, ConfigError):
    """A device setting asks for what this machine does not have; the message names it.

    A `ConfigError` too: the node refuses to start on it (`voicenode serve` exits 2)."""


def cuda_device_count() -> int:
    """CUDA devices CTranslate2 can use (0 on a CPU-only build or without a driver)."""
    import ctranslate2

    return int(ctranslate2.get_cuda_device_count())


def onnx_providers_available() -> list[str]:
    import onnxruntime

    return list(onnxruntime.get_available_providers())


def stt_device(setting: str, count: Callable[[], int] = cuda_device_count) -> str:
    """The CTranslate2 device for `stt.device = setting`: `cpu` or `cuda`."""
    if setting == "cpu":
        return "cpu"
    devices = count()
    if setting == "auto":
        chosen = "cuda" if devices else "cpu"
        log.info("stt.device = auto", extra={"device": chosen, "cuda_devices": devices})
        return chosen
    if devices < 1:
        raise DeviceError(
            f"stt.device = {setting}: CTranslate2 finds no CUDA device "
            f"(ctranslate2.get_cuda_device_count() is 0: no GPU or driver, or a CPU-only "
            f"CTranslate2); {_INSTALL.format(key='stt.device')}"
        )
    return "cuda"


def onnx_providers(
    key: str, device: str, available: Callable[[], Sequence[str]] = onnx_providers_available
) -> list[str]:
    """The onnxruntime providers for `key = device` (`tts.device`, `vad.device`): CUDA first
    (onnxruntime places the few operators CUDA lacks on the CPU), or the CPU alone."""
    if device == "cpu":
        return [CPU_PROVIDER]
    have = list(available())
    if CUDA_PROVIDER not in have:
        raise DeviceError(
            f"{key} = {device}: onnxruntime has no {CUDA_PROVIDER} (it offers "
            f"{', '.join(have) or 'none'}: the CPU-only onnxruntime package is installed); "
            f"{_INSTALL.format(key=key)}"
        )
    return [CUDA_PROVIDER, CPU_PROVIDER]


def check_session(key: str, device: str, session: Any) -> None:
    """`session` (an onnxruntime InferenceSession) really runs on `device`: onnxruntime
    only warns and runs on the CPU when its CUDA provider cannot load its libraries."""
    if device == "cuda" and CUDA_PROVIDER not in session.get_providers():
        raise DeviceError(
            f"{key} = cuda: onnxruntime could not start its CUDA provider (the CUDA or cuDNN "
            f"libraries are missing or do not match; see its warning above); "
            f"{_INSTALL.format(key=key)}"
        )


def wants_gpu(settings: Settings) -> bool:
    """Some engine is asked to run on a GPU (`auto` included)."""
    return settings.stt.device != "cpu" or "cuda" in (settings.tts.device, settings.vad.device)


def check_devices(settings: Settings) -> None:
    """Raise `DeviceError` for the first device setting this machine cannot honour (the
    quick check; loading the engines checks the libraries too)."""
    stt_device(settings.stt.device)
    onnx_providers("tts.device", settings.tts.device)
    onnx_providers("vad.device", settings.vad.device)
