"""The engines' thread budget: the event loop keeps a core, STT and TTS share the rest."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.schema import SttSettings, TtsSettings
from pipeline.threads import (
    blas_threads,
    limit_blas_threads,
    openblas_libraries,
    thread_budget,
    usable_cpus,
)


@pytest.mark.parametrize(
    ("cpus", "stt_threads", "tts_workers", "expected"),
    [
        # cpus, stt.cpu_threads, tts.workers -> (engine cores, stt, tts workers, tts threads)
        (1, 2, 0, (1, 1, 1, 1)),  # one CPU: everything shares it
        (2, 2, 0, (1, 1, 1, 1)),  # the loop keeps one, the engines time-share the other
        (4, 2, 0, (3, 2, 1, 1)),
        (8, 2, 0, (7, 2, 5, 1)),  # five syntheses at once, one thread each
        (8, 0, 0, (7, 3, 4, 1)),  # cpu_threads 0: STT takes half the engine cores
        (8, 2, 2, (7, 2, 2, 2)),  # two workers: the TTS cores split between them
        (8, 2, 64, (7, 2, 5, 1)),  # never more workers than TTS cores
        (16, 32, 0, (15, 14, 1, 1)),  # STT capped: TTS keeps one engine core
        (3, 2, 0, (2, 1, 1, 1)),
    ],
)
def test_budget_splits_the_engine_cores(
    cpus: int, stt_threads: int, tts_workers: int, expected: tuple[int, int, int, int]
) -> None:
    b = thread_budget(cpus, SttSettings(cpu_threads=stt_threads), TtsSettings(workers=tts_workers))
    assert (b.engine_cores, b.stt_threads, b.tts_workers, b.tts_threads) == expected
    assert b.cpus == cpus and b.vad_threads == 1


def test_a_busy_engine_set_never_takes_the_loops_core() -> None:
    for cpus in range(2, 65):
        for stt_threads in (0, 1, 2, 8):
            b = thread_budget(cpus, SttSettings(cpu_threads=stt_threads), TtsSettings())
            tts = b.tts_workers * b.tts_threads
            assert b.stt_threads + tts <= max(b.engine_cores, 2), (cpus, stt_threads, b)
            if b.engine_cores >= 2:
                assert b.stt_threads + tts <= b.engine_cores


def test_usable_cpus_is_at_least_one() -> None:
    assert usable_cpus() >= 1


def test_the_openblas_libraries_are_read_from_the_memory_map(tmp_path: Path) -> None:
    maps = tmp_path / "maps"
    lib = "/venv/site-packages/numpy.libs/libscipy_openblas64_-32a4b2a6.so"
    maps.write_text(
        f"7f00-7f01 r--p 00000000 00:1f 12 {lib}\n"
        f"7f01-7f02 r-xp 00001000 00:1f 12 {lib}\n"
        "7f02-7f03 r-xp 00000000 00:1f 13 /usr/lib/libm.so.6\n"
        "7f03-7f04 rw-p 00000000 00:00 0 \n"
        "7f04-7f05 r-xp 00000000 00:1f 14 /opt/openblas-dir/libc.so\n"
    )
    assert openblas_libraries(maps) == [lib]
    assert openblas_libraries(tmp_path / "missing") == []


def test_numpys_blas_runs_on_the_threads_it_is_given() -> None:
    libraries = limit_blas_threads(1)
    if not libraries:
        pytest.skip("this numpy has no OpenBLAS")
    try:
        assert all(blas_threads(p) == 1 for p in libraries)
        if usable_cpus() >= 2:  # (OpenBLAS never runs more threads than the CPUs it found)
            assert limit_blas_threads(2) == libraries
            assert all(blas_threads(p) == 2 for p in libraries)
    finally:
        limit_blas_threads(1)
