"""How many threads the inference engines get: the thread budget, from the CPU count.

Pure: `thread_budget(cpus, stt, tts)` decides, `usable_cpus()` reads the machine. The rule
(docs/operations.md, "Engine threads"):

- the event loop keeps one core (audio pacing, signalling, the API); the engines share the
  rest (`engine_cores`, at least 1: on one CPU everything shares it);
- STT (CTranslate2's intra-op threads): `stt.cpu_threads`, at most `engine_cores - 1` (TTS
  keeps one; at least 1); 0 means half of them;
- TTS (Piper on onnxruntime) gets the engine cores STT does not (at least 1): that many
  synthesis workers, or `tts.workers` when set (never more than those cores), each with
  the cores left per worker as its intra-op threads (at least 1);
- VAD (Silero on onnxruntime) runs one intra-op thread (`pipeline.vad`);
- numpy's BLAS runs on the calling thread only (`limit_blas_threads`, which `pipeline.engines`
  applies when it loads the models).
"""

from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass
from pathlib import Path

from config.schema import SttSettings, TtsSettings


@dataclass(frozen=True, slots=True)
class ThreadBudget:
    cpus: int
    """CPUs this process may run on."""
    engine_cores: int
    """What the engines share: all CPUs but the event loop's one."""
    stt_threads: int
    """CTranslate2 intra-op threads (`stt.cpu_threads` as loaded)."""
    tts_workers: int
    """Piper syntheses run at once (one worker thread each)."""
    tts_threads: int
    """onnxruntime intra-op threads per synthesis."""
    vad_threads: int = 1
    """onnxruntime intra-op threads of the shared Silero session (fixed in `pipeline.vad`)."""
    blas_threads: int = 1
    """Threads of numpy's BLAS (OpenBLAS): its products in the node are small (the mel
    filters of a decode's or a pause's features) and made on the engines' own threads, and
    OpenBLAS's idle threads spin after each one (`limit_blas_threads`)."""


def thread_budget(cpus: int, stt: SttSettings, tts: TtsSettings) -> ThreadBudget:
    """The engines' threads on `cpus` CPUs, under the settings' caps (see the module doc)."""
    cpus = max(1, cpus)
    engine_cores = max(1, cpus - 1)
    stt_cap = max(1, engine_cores - 1)  # TTS keeps at least one of them
    stt_threads = max(1, min(stt.cpu_threads or engine_cores // 2, stt_cap))
    tts_cores = max(1, engine_cores - stt_threads)
    workers = min(tts.workers, tts_cores) if tts.workers else tts_cores
    return ThreadBudget(
        cpus=cpus,
        engine_cores=engine_cores,
        stt_threads=stt_threads,
        tts_workers=workers,
        tts_threads=max(1, tts_cores // workers),
    )


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask, which a container's cpuset
    narrows), else the machine's count."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


_OPENBLAS_SETTERS = (
    "scipy_openblas_set_num_threads64_",  # numpy's wheels (scipy-openblas, 64-bit ints)
    "scipy_openblas_set_num_threads",
    "openblas_set_num_threads64_",
    "openblas_set_num_threads",  # a system OpenBLAS
)


def openblas_libraries(maps: Path = Path("/proc/self/maps")) -> list[str]:
    """The OpenBLAS shared libraries loaded in this process (numpy's), from its memory map."""
    try:
        lines = maps.read_text().splitlines()
    except OSError:
        return []
    found = {line.split()[-1] for line in lines if "openblas" in line.rsplit("/", 1)[-1]}
    return sorted(p for p in found if p.startswith("/"))


def limit_blas_threads(threads: int = 1) -> list[str]:
    """Run numpy's BLAS (OpenBLAS) on `threads` threads; the libraries set (none found: [])."""
    import numpy  # noqa: F401  (loads numpy's OpenBLAS, if it has one)

    done = []
    for path in openblas_libraries():
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        setter = next((getattr(lib, n) for n in _OPENBLAS_SETTERS if hasattr(lib, n)), None)
        if setter is not None:
            setter(ctypes.c_int(threads))
            done.append(path)
    return done


def blas_threads(path: str) -> int | None:
    """The threads the OpenBLAS library at `path` runs (None: not an OpenBLAS)."""
    lib = ctypes.CDLL(path)
    getters = (s.replace("_set_", "_get_") for s in _OPENBLAS_SETTERS)
    getter = next((getattr(lib, n) for n in getters if hasattr(lib, n)), None)
    return None if getter is None else int(getter())
