"""The campaign far end (`far_end.py`, `sipp/uas_far_end.xml`) answers each kind of number as
it says, several calls at once: callers (sipp, `sipp/uac_far_end.xml`) dial one number of each
kind together and hear, on the wire (an RTP tap on their media port), the person's "Hello?" or
the machine's greeting and beep; busy is 486, no answer rings then 480, or 487 when the caller
gives up; an unknown number is 404. The far end's own count of calls per number (its message
log) is what the campaign test takes as the witness, so it is checked against the calls made.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from media.tone import BeepDetector
from tests.support.ports import free_port
from tests.support.sipp import RtpTap

from .far_end import FarEnd, FarEndAudio, beep, far_end, number, render_audio
from .far_end import heard as heard_file
from .sipp import SCENARIOS, SippResult, run_sipp

pytestmark = pytest.mark.timeout(120)

RING_MS = 1500
FRAME = 320  # 20 ms at 16 kHz


def uac_scenario(workdir: Path, tag: str, *, hold_ms: int, cancel_ms: int | None) -> Path:
    text = (SCENARIOS / "uac_far_end.xml").read_text()
    fill = {
        "HOLD_MS": str(hold_ms),
        "CANCEL_MS": str(cancel_ms or 0),
        "CANCEL_OPTIONAL": "false" if cancel_ms else "true",
        "AFTER_RING": "cancel" if cancel_ms else "ringing",
    }
    for key, value in fill.items():
        text = text.replace(f"@{key}@", value)
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / f"uac_far_end_{tag}.xml"
    path.write_text(text)
    return path


async def dial(
    far: FarEnd, workdir: Path, tag: str, to: str, *, hold_ms: int = 0, cancel_ms: int | None = None
) -> tuple[SippResult, npt.NDArray[np.int16]]:
    """One call to `to`; what sipp saw and the 16 kHz audio that reached its media port."""
    media = free_port()
    scenario = uac_scenario(workdir, tag, hold_ms=hold_ms, cancel_ms=cancel_ms)
    with RtpTap(media) as tap:
        result = await run_sipp(
            str(scenario),
            f"127.0.0.1:{far.port}",
            workdir / tag,
            service=to,
            timeout_s=30,
            extra=["-mp", str(media)],
        )
    assert result.returncode == 0, result.explain()
    return result, tap.pcmu_audio()


def same_start(heard: npt.NDArray[np.int16], sent: npt.NDArray[np.int16], seconds: float) -> bool:
    """The first `seconds` heard are the first `seconds` the far end played."""
    n = int(16_000 * seconds)
    assert len(heard) >= n, f"heard only {len(heard) / 16_000:.2f} s"
    a, b = heard[:n].astype(np.float64), sent[:n].astype(np.float64)
    return float(np.corrcoef(a, b)[0, 1]) > 0.99


def beeps(audio: npt.NDArray[np.int16]) -> list[tuple[float, float, float]]:
    """(start s, duration ms, Hz) of every beep in `audio`."""
    detector, found = BeepDetector(), []
    for i in range(0, len(audio) - FRAME + 1, FRAME):
        got = detector.feed(audio[i : i + FRAME], i / 16_000)
        if got is not None:
            found.append((got.started_s, got.duration_ms, got.hz))
    return found


@pytest.fixture(scope="module")
def audio(tmp_path_factory: pytest.TempPathFactory) -> FarEndAudio:
    return render_audio(tmp_path_factory.mktemp("far-end-audio"))


async def test_each_kind_answers_as_it_says(audio: FarEndAudio, tmp_path: Path) -> None:
    machine_ms = int((0.3 + len(audio.greeting) / 16_000 + 0.4 + 2.0) * 1000)
    async with far_end(tmp_path / "far", audio, ring_ms=RING_MS) as far:
        calls = {
            "human": dial(far, tmp_path, "human", number("human", 1), hold_ms=3000),
            "human2": dial(far, tmp_path, "human2", number("human", 2), hold_ms=3000),
            "machine": dial(far, tmp_path, "machine", number("machine", 1), hold_ms=machine_ms),
            "busy": dial(far, tmp_path, "busy", number("busy", 1)),
            "no_answer": dial(far, tmp_path, "no_answer", number("no_answer", 1)),
            "cancel": dial(far, tmp_path, "cancel", number("no_answer", 2), cancel_ms=300),
            "unknown": dial(far, tmp_path, "unknown", "+19995550000"),
        }
        done = dict(zip(calls, await asyncio.gather(*calls.values()), strict=True))
        dialled, finals = far.dialled(), far.responses()

    statuses = {tag: result.statuses() for tag, (result, _) in done.items()}
    assert statuses["human"][:2] == [180, 200]
    assert statuses["machine"][:2] == [180, 200]
    assert statuses["busy"] == [486]
    assert statuses["no_answer"] == [180, 480]
    assert statuses["cancel"] == [180, 200, 487]  # 200 for the CANCEL, 487 for the INVITE
    assert statuses["unknown"] == [404]

    person = heard_file(audio.human_file)
    for tag in ("human", "human2"):
        heard = done[tag][1]
        assert same_start(heard, person, 2.0), f"{tag} did not hear the person's hello"
        assert beeps(heard) == []

    heard = done["machine"][1]
    assert same_start(heard, heard_file(audio.machine_file), machine_ms / 1000 - 1)
    (found,) = beeps(heard)
    greeting_s = 0.3 + len(audio.greeting) / 16_000 + 0.4
    assert abs(found[0] - greeting_s) < 0.1, found  # where the far end put it in its audio
    assert abs(found[1] - len(beep()) / 16) < 60 and abs(found[2] - 1000) < 20, found
    for tag in ("busy", "no_answer", "cancel", "unknown"):
        assert len(done[tag][1]) == 0, f"{tag}: audio before any answer"

    assert dialled == {
        number("human", 1): 1,
        number("human", 2): 1,
        number("machine", 1): 1,
        number("busy", 1): 1,
        number("no_answer", 1): 1,
        number("no_answer", 2): 1,
        "+19995550000": 1,
    }
    assert sorted(finals.values()) == sorted([200, 200, 200, 486, 480, 487, 404])
