"""Device settings (`pipeline.devices`): CUDA asked for is CUDA or a `DeviceError` naming the
setting, never a quiet fall back to the CPU; `stt.device = auto` alone chooses."""

from __future__ import annotations

import msgspec
import pytest

from config.schema import Settings, SttSettings, TtsSettings, VadSettings
from core.errors import ConfigError, EngineError
from pipeline.devices import (
    CPU_PROVIDER,
    CUDA_PROVIDER,
    DeviceError,
    check_devices,
    check_session,
    cuda_device_count,
    onnx_providers,
    onnx_providers_available,
    stt_device,
    wants_gpu,
)

HAS_CUDA = cuda_device_count() > 0 or CUDA_PROVIDER in onnx_providers_available()
cpu_only = pytest.mark.skipif(HAS_CUDA, reason="this machine has CUDA: nothing is missing")


class _Session:
    def __init__(self, providers: list[str]) -> None:
        self._providers = providers

    def get_providers(self) -> list[str]:
        return self._providers


def test_a_device_error_is_an_engine_error_and_a_configuration_error() -> None:
    err = DeviceError("stt.device = cuda: ...")
    assert isinstance(err, EngineError) and isinstance(err, ConfigError)
    assert not err.retryable


def test_stt_device_cpu_asks_nothing() -> None:
    def count() -> int:
        raise AssertionError("cpu must not look for CUDA")

    assert stt_device("cpu", count) == "cpu"


def test_stt_device_cuda_needs_a_device() -> None:
    assert stt_device("cuda", lambda: 1) == "cuda"
    with pytest.raises(DeviceError, match=r"^stt\.device = cuda: CTranslate2 finds no CUDA device"):
        stt_device("cuda", lambda: 0)


def test_stt_device_auto_chooses() -> None:
    assert stt_device("auto", lambda: 2) == "cuda"
    assert stt_device("auto", lambda: 0) == "cpu"


def test_onnx_providers() -> None:
    assert onnx_providers("tts.device", "cpu", lambda: []) == [CPU_PROVIDER]
    have = [CUDA_PROVIDER, CPU_PROVIDER]
    assert onnx_providers("vad.device", "cuda", lambda: have) == [CUDA_PROVIDER, CPU_PROVIDER]
    with pytest.raises(DeviceError, match=r"^vad\.device = cuda: onnxruntime has no CUDA"):
        onnx_providers("vad.device", "cuda", lambda: [CPU_PROVIDER])


def test_a_session_that_fell_back_to_the_cpu_is_refused() -> None:
    check_session("tts.device", "cuda", _Session([CUDA_PROVIDER, CPU_PROVIDER]))
    check_session("tts.device", "cpu", _Session([CPU_PROVIDER]))
    with pytest.raises(DeviceError, match=r"^tts\.device = cuda: onnxruntime could not start"):
        check_session("tts.device", "cuda", _Session([CPU_PROVIDER]))


def _settings(stt: str = "cpu", tts: str = "cpu", vad: str = "cpu") -> Settings:
    return Settings(
        stt=msgspec.convert({"device": stt}, SttSettings),
        tts=msgspec.convert({"device": tts}, TtsSettings),
        vad=msgspec.convert({"device": vad}, VadSettings),
    )


def test_wants_gpu() -> None:
    assert not wants_gpu(_settings())
    assert wants_gpu(_settings(stt="auto"))
    assert wants_gpu(_settings(tts="cuda"))
    assert wants_gpu(_settings(vad="cuda"))


@cpu_only
@pytest.mark.parametrize("key", ["stt", "tts", "vad"])
def test_check_devices_on_a_machine_without_cuda(key: str) -> None:
    check_devices(_settings(stt="auto"))  # auto: the CPU
    with pytest.raises(DeviceError, match=rf"^{key}\.device = cuda: "):
        check_devices(_settings(**{key: "cuda"}))


@cpu_only
def test_the_real_engines_refuse_cuda_here() -> None:
    from pipeline.stt_engine import SttEngine
    from pipeline.tts import TtsEngine
    from pipeline.vad import SileroModel

    with pytest.raises(DeviceError, match=r"^vad\.device = cuda"):
        SileroModel(device="cuda")
    with pytest.raises(DeviceError, match=r"^tts\.device = cuda"):
        TtsEngine(msgspec.convert({"device": "cuda"}, TtsSettings))
    with pytest.raises(DeviceError, match=r"^stt\.device = cuda"):
        SttEngine(msgspec.convert({"device": "cuda"}, SttSettings))
