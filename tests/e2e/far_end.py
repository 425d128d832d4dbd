"""A trunk's far end for outbound campaigns: one sipp UAS that answers each INVITE by what its
called number is (`sipp/uas_far_end.xml`), and is the witness of what was dialled.

The kind of a number is its prefix (`number(kind, n)`):

| kind | prefix | what the caller meets |
| --- | --- | --- |
| `human` | +1555010 | 180, 200, a short "Hello?" (Piper's caller voice), then silence |
| `machine` | +1555020 | 180, 200, a greeting (espeak-ng), a 1 kHz beep, the silence it records |
| `busy` | +1555030 | 486 Busy Here |
| `no_answer` | +1555040 | 180 Ringing, 480 after `ring_ms` (487 if the caller CANCELs first) |

Anything else is a 404. Audio goes out as 8 kHz mu-law RTP (sipp's `rtp_stream`), each file
long enough to keep the line open until the caller hangs up.

`FarEnd.dialled()` reads sipp's message log (`-trace_msg`, every message as it arrives) and
counts each number's calls by their distinct Call-IDs (a retransmitted INVITE is one call);
`FarEnd.responses()` tells what each call was answered. Start it with `far_end(...)`.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import signal
import subprocess
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

from media.g711 import ulaw_decode, ulaw_encode
from media.resample import resample
from media.speech import CallerVoice, espeak
from tests.support.ports import free_port, free_port_run, udp_port_bound

Kind = Literal["human", "machine", "busy", "no_answer"]
KINDS: Final[tuple[Kind, ...]] = ("human", "machine", "busy", "no_answer")
PREFIXES: Final[dict[Kind, str]] = {
    "human": "+1555010",
    "machine": "+1555020",
    "busy": "+1555030",
    "no_answer": "+1555040",
}
SCENARIO: Final = Path(__file__).parent / "sipp" / "uas_far_end.xml"
RATE: Final = 16_000

HUMAN_LINE: Final = "Hello?"
MACHINE_LINE: Final = (
    "Hi, you have reached the Miller family. Please leave a message after the tone."
)
BEEP_HZ: Final = 1000.0
BEEP_S: Final = 0.6
HUMAN_SILENCE_S: Final = 30.0
"""After "Hello?", the person listens this long (the line stays open; RTP keeps flowing)."""
RECORDING_S: Final = 40.0
"""After the beep, the machine records this long."""


def number(kind: Kind, n: int) -> str:
    """The `n`-th number (0-999) that answers as `kind`."""
    assert 0 <= n < 1000
    return f"{PREFIXES[kind]}{n:03d}"


def kind_of(dialled: str) -> Kind | None:
    for kind, prefix in PREFIXES.items():
        if dialled.startswith(prefix):
            return kind
    return None


def silence(seconds: float) -> npt.NDArray[np.int16]:
    return np.zeros(int(RATE * seconds), dtype=np.int16)


def beep(seconds: float = BEEP_S, hz: float = BEEP_HZ) -> npt.NDArray[np.int16]:
    """A steady tone at -10 dBFS, as an answering machine's beep."""
    t = np.arange(int(RATE * seconds)) / RATE
    return np.asarray(0.316 * 32767 * np.sin(2 * np.pi * hz * t), dtype=np.int16)


@dataclass(frozen=True)
class FarEndAudio:
    """What the far end plays: 8 kHz mu-law files, and the speech in them (16 kHz)."""

    human_file: Path
    machine_file: Path
    hello: npt.NDArray[np.int16]
    greeting: npt.NDArray[np.int16]


def render_audio(workdir: Path) -> FarEndAudio:
    """The person's "Hello?" (Piper's caller voice, 200 ms after the answer) and the machine's
    greeting (espeak-ng, another voice: a recording), its beep and the silence after each."""
    hello = CallerVoice.load(threads=1)(HUMAN_LINE)
    greeting = espeak(MACHINE_LINE)
    human = np.concatenate([silence(0.2), hello, silence(HUMAN_SILENCE_S)])
    machine = np.concatenate([silence(0.3), greeting, silence(0.4), beep(), silence(RECORDING_S)])
    workdir.mkdir(parents=True, exist_ok=True)
    return FarEndAudio(
        write_ulaw(human, workdir / "human.ulaw"),
        write_ulaw(machine, workdir / "machine.ulaw"),
        hello,
        greeting,
    )


def write_ulaw(samples16k: npt.NDArray[np.int16], path: Path) -> Path:
    """16 kHz audio as headerless 8 kHz mu-law: sipp 3.6's `rtp_stream` sends a file's bytes
    as they are (a WAV header would go out as 5 ms of noise)."""
    path.write_bytes(bytes(ulaw_encode(resample(samples16k, RATE, 8_000))))
    return path


def heard(path: Path) -> npt.NDArray[np.int16]:
    """What a caller hears of a file the far end plays, at 16 kHz."""
    return resample(ulaw_decode(path.read_bytes()), 8_000, RATE)


_CALL_ID = re.compile(r"^(?:Call-ID|i)\s*:\s*(\S+)", re.IGNORECASE | re.MULTILINE)
_INVITE = re.compile(r"^INVITE sip:([^@;>\s]+)@", re.MULTILINE)
_STATUS = re.compile(r"^SIP/2\.0 (\d{3})", re.MULTILINE)


@dataclass
class FarEnd:
    """A running far end: `port` takes INVITEs on 127.0.0.1 (UDP)."""

    port: int
    media_port: int
    workdir: Path
    process: asyncio.subprocess.Process

    @property
    def trunk_uri(self) -> str:
        """What the node's `sip.trunk.uri` is set to for its numbers to reach this far end."""
        return f"sip:127.0.0.1:{self.port}"

    @property
    def message_log(self) -> Path:
        return self.workdir / "far-end-messages.log"

    def _messages(self) -> list[tuple[bool, str]]:
        """(sent, text) for every message sipp logged so far."""
        text = self.message_log.read_text(errors="replace") if self.message_log.exists() else ""
        out = []
        for chunk in re.split(r"^-{10,} .*$", text, flags=re.MULTILINE):
            head, _, body = chunk.strip("\n").partition("\n")
            if " message sent " in head or " message received " in head:
                out.append((" sent " in head, body.replace("\r\n", "\n").strip("\n")))
        return out

    def calls(self) -> dict[str, set[str]]:
        """Each dialled number (the request-URI's user part) → the Call-IDs of its INVITEs."""
        seen: dict[str, set[str]] = defaultdict(set)
        for sent, text in self._messages():
            invite, call_id = _INVITE.match(text), _CALL_ID.search(text)
            if not sent and invite and call_id:
                seen[invite.group(1)].add(call_id.group(1))
        return dict(seen)

    def dialled(self) -> Counter[str]:
        """How many calls reached each number."""
        return Counter({n: len(ids) for n, ids in self.calls().items()})

    def responses(self) -> dict[str, int]:
        """Call-ID → the final status the far end answered its INVITE with (200, 486, ...)."""
        finals: dict[str, int] = {}
        for sent, text in self._messages():
            status, call_id = _STATUS.match(text), _CALL_ID.search(text)
            if sent and status and call_id and "INVITE" in _cseq(text):
                code = int(status.group(1))
                if code >= 200:
                    finals.setdefault(call_id.group(1), code)
        return finals

    def errors(self) -> str:
        path = self.workdir / "far-end-errors.log"
        return path.read_text(errors="replace") if path.exists() else ""


def _cseq(text: str) -> str:
    found = re.search(r"^CSeq\s*:\s*(.+)$", text, re.IGNORECASE | re.MULTILINE)
    return found.group(1) if found else ""


def scenario(audio: FarEndAudio, ring_ms: int) -> str:
    text = SCENARIO.read_text()
    fill = {
        "HUMAN_FILE": str(audio.human_file),
        "MACHINE_FILE": str(audio.machine_file),
        "RING_MS": str(ring_ms),
        **{kind.upper(): re.escape(prefix) for kind, prefix in PREFIXES.items()},
    }
    for key, value in fill.items():
        text = text.replace(f"@{key}@", value)
    return text


def write_scenario(workdir: Path, audio: FarEndAudio, ring_ms: int) -> Path:
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "uas_far_end.xml"
    path.write_text(scenario(audio, ring_ms))
    return path


@asynccontextmanager
async def far_end(
    workdir: Path, audio: FarEndAudio, *, ring_ms: int = 3000, max_calls: int = 1000
) -> AsyncIterator[FarEnd]:
    """sipp as the far end on free 127.0.0.1 ports, until the block ends (then SIGTERM)."""
    exe = shutil.which("sipp")
    assert exe, "sipp is installed by `make system-packages` (Debian package sip-tester)"
    path = await asyncio.to_thread(write_scenario, workdir, audio, ring_ms)
    port, media = free_port(), free_port_run(4)
    end = workdir / "far-end"
    args = [
        exe, "-sf", str(path), "-p", str(port), "-i", "127.0.0.1", "-mi", "127.0.0.1",
        "-mp", str(media), "-t", "u1", "-m", str(max_calls), "-nostdin",
        "-trace_err", "-error_file", f"{end}-errors.log",
        "-trace_msg", "-message_file", f"{end}-messages.log",
    ]  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        *args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    far = FarEnd(port, media, workdir, proc)
    try:
        async with asyncio.timeout(10):
            while not udp_port_bound(port):
                assert proc.returncode is None, f"sipp exited: {far.errors()}"
                await asyncio.sleep(0.02)  # a readiness probe: sipp announces nothing
        yield far
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(10):
                    await proc.wait()
            except TimeoutError:
                proc.kill()
                await proc.wait()
