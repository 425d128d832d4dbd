"""Bench scenarios: the caller's lines for one call, in a TOML file.

    name = "receptionist_wire"
    agent = "receptionist"
    phone_line = true                   # caller audio through G.711 mu-law 8 kHz and back
    expect_greeting = "Bright Smile Dental"
    lines = [
      "Hi, I'd like to book a cleaning.",                       # plain text
      { text = "My name is Maria Garcia.", expect = "what day" },
      { text = "Actually, book me for Tuesday.", barge_in_ms = 800 },
      { wav = "lines/goodbye.wav", text = "Goodbye." },         # a recording (text: reference)
    ]

A line is a string (spoken with the caller voice) or a table:
- `text`: what the caller says: rendered with the caller voice, and the reference transcript
  for the WER of the node's transcripts;
- `wav`: a mono WAV file (any supported rate; relative to the scenario file) spoken instead of
  rendering `text` (then `text`, if given, is only the reference);
- `expect`: words the agent's reply to this line should contain (case and punctuation ignored);
- `barge_in_ms`: speak this line that long after the agent *starts* its previous reply
  (barge-in) instead of after it finished;
- `pause_ms`: silence before the line once the agent finished (default: the scenario's);
- `parts`: the line spoken with silences inside it, instead of `text`: text parts and pause
  lengths in ms, starting and ending with text (`["My number is five five five,", 700,
  "two one two,", 600, "three four."]`); its reference text is the text parts joined. The
  line is rendered whole, once, and each silence spliced in at its boundary (`bench.splice`),
  so the voice carries the sentence over the pause as a person does, instead of ending each
  part like a sentence;
- `category`: what kind of line it is, for the turn-taking report (default: the scenario's
  `category`): e.g. hesitation, numbers, list, question, one-word, backchannel, barge-in;
- `voice`: "piper" or "espeak": always speak this line in that voice (default: the run's);
- `backchannel`: a short "mhm" said over the agent's reply `barge_in_ms` after it starts,
  which must not interrupt it (needs `barge_in_ms`); the caller then waits for the reply.

An invalid line is reported with its number (from 1): "line 3: ...".
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import msgspec

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

DEFAULT_SCENARIO = "receptionist_booking.toml"
WIRE_SCENARIO = "receptionist_wire.toml"


class ScenarioError(ValueError):
    """A scenario file is missing or invalid; the message names the file and the problem."""


Voice = Literal["piper", "espeak"]
VOICES: tuple[Voice, ...] = ("piper", "espeak")
Part = str | Annotated[int, msgspec.Meta(ge=0, le=10_000)]
"""A piece of a line: text to say, or silence in ms."""


class Line(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One caller line with its options."""

    text: str = ""
    wav: str = ""
    expect: str = ""
    barge_in_ms: Annotated[int, msgspec.Meta(ge=0, le=60_000)] | None = None
    pause_ms: Annotated[int, msgspec.Meta(ge=0, le=60_000)] | None = None
    parts: tuple[Part, ...] = ()
    category: str = ""
    voice: Voice | None = None
    backchannel: bool = False

    def __post_init__(self) -> None:
        if self.parts:
            _check_parts(self)
        elif not self.text.strip() and not self.wav:
            raise ValueError("a line needs `text` or `wav` (or `parts`)")
        if self.backchannel and self.barge_in_ms is None:
            raise ValueError("a backchannel needs `barge_in_ms` (when to say it over the reply)")

    @property
    def said(self) -> str:
        """The reference text: `text`, or the text parts joined."""
        if self.text or not self.parts:
            return self.text
        return " ".join(p for p in self.parts if isinstance(p, str))


def _check_parts(line: Line) -> None:
    if line.text or line.wav:
        raise ValueError("`parts` replaces `text` and `wav`: give only one of them")
    first, last = line.parts[0], line.parts[-1]
    if not isinstance(first, str) or not isinstance(last, str):
        raise ValueError("`parts` must start and end with text")
    if any(isinstance(p, str) and not p.strip() for p in line.parts):
        raise ValueError("a text part of `parts` is empty")


class Scenario(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Caller lines for one call, spoken in order, each after the agent finished its reply
    (or, with `barge_in_ms`, while it speaks)."""

    name: Annotated[str, msgspec.Meta(min_length=1)]
    lines: Annotated[
        tuple[Annotated[str, msgspec.Meta(min_length=1)] | Line, ...], msgspec.Meta(min_length=1)
    ]
    agent: str = "receptionist"
    phone_line: bool = True
    """Send the caller's audio through a G.711 mu-law 8 kHz line and back, as on a PSTN call."""
    description: str = ""
    expect_greeting: str = ""
    """Words the agent's greeting should contain."""
    pause_ms: Annotated[int, msgspec.Meta(ge=0, le=60_000)] = 300
    """Silence between the end of the agent's reply and the caller's next line."""
    category: str = ""
    """The category of the lines that do not name their own."""

    @property
    def items(self) -> tuple[Line, ...]:
        """Every line as a `Line` (plain strings become `Line(text=...)`)."""
        return tuple(Line(text=x) if isinstance(x, str) else x for x in self.lines)

    @property
    def texts(self) -> tuple[str, ...]:
        """The reference text of every line ("" for a WAV line without one)."""
        return tuple(line.said for line in self.items)


def default_scenario_path(name: str = DEFAULT_SCENARIO) -> Traversable:
    return files("bench") / "scenarios" / name


def load_scenario(
    path: Path | Traversable | None = None, *, default: str = DEFAULT_SCENARIO
) -> Scenario:
    """Read and validate a scenario file; the embedded `default` when `path` is None."""
    where = default_scenario_path(default) if path is None else path
    if isinstance(where, Path) and not where.is_file():
        raise ScenarioError(f"{where}: scenario file not found")
    try:
        text = where.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"{where}: cannot read scenario file: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"{where}: not UTF-8 text: {exc}") from exc
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{where}: not valid TOML: {exc}") from exc
    try:
        scenario = msgspec.convert(raw, Scenario, strict=True)
    except msgspec.ValidationError as exc:
        raise ScenarioError(f"{where}: {_name_the_line(str(exc))}") from exc
    if isinstance(where, Path):
        scenario = _wavs_relative_to(scenario, where.parent)
    return scenario


_LINE_AT = re.compile(r" - at `\$\.lines\[(\d+)\](.*)`$")


def _name_the_line(message: str) -> str:
    """msgspec's "... - at `$.lines[2].voice`" as "line 3: ... (at `voice`)"."""
    found = _LINE_AT.search(message)
    if found is None:
        return message
    where = found.group(2).lstrip(".")
    text = message[: found.start()]
    return f"line {int(found.group(1)) + 1}: {text}" + (f" (at `{where}`)" if where else "")


def _wavs_relative_to(scenario: Scenario, base: Path) -> Scenario:
    """WAV paths made absolute against the scenario file's directory."""
    lines = tuple(
        msgspec.structs.replace(x, wav=str(base / x.wav))
        if isinstance(x, Line) and x.wav and not Path(x.wav).is_absolute()
        else x
        for x in scenario.lines
    )
    return msgspec.structs.replace(scenario, lines=lines)


@dataclass(frozen=True)
class SpokenLine:
    """A line ready to send: 16 kHz int16 samples and what the caller loop needs to know."""

    samples: npt.NDArray[np.int16]
    text: str
    expect: str = ""
    barge_in_ms: int | None = None
    pause_ms: int = 300
    category: str = ""
    voice: str = ""
    """The voice that spoke it ("piper", "espeak"; "" when not known, e.g. a WAV)."""
    backchannel: bool = False
    voiced: tuple[float, float] = (0.0, 0.0)
    """Seconds from the first sample to the first and to the last voiced sample."""


Render = Callable[[str], "npt.NDArray[np.int16]"]
"""Text -> 16 kHz int16 samples in the caller voice."""

SAMPLE_RATE = 16_000
_WINDOW = 160  # 10 ms


def voiced_span(samples: npt.NDArray[np.int16]) -> tuple[float, float]:
    """Seconds to the start of the first and the end of the last 10 ms window with speech in
    it: RMS within 30 dB of the loudest window (and above -50 dBFS). (0, 0) for silence."""
    import numpy as np

    n = len(samples) // _WINDOW
    if n == 0:
        return (0.0, 0.0)
    windows = samples[: n * _WINDOW].astype(np.float64).reshape(n, _WINDOW)
    rms = np.sqrt(np.mean(windows**2, axis=1))
    floor = max(float(rms.max()) * 10 ** (-30 / 20), 32768 * 10 ** (-50 / 20))
    loud = np.flatnonzero(rms >= floor)
    if len(loud) == 0:
        return (0.0, 0.0)
    return (int(loud[0]) * _WINDOW / SAMPLE_RATE, (int(loud[-1]) + 1) * _WINDOW / SAMPLE_RATE)


def render_parts(parts: tuple[Part, ...], render: Render) -> npt.NDArray[np.int16]:
    """The text parts rendered as one line, with each `int` part spliced in as that many ms of
    silence at its boundary (see `bench.splice`)."""
    from bench.splice import render_spliced

    return render_spliced(parts, render)


def phone_line(samples: npt.NDArray[np.int16]) -> npt.NDArray[np.int16]:
    """`samples` sent through a G.711 mu-law 8 kHz line and back."""
    from media.g711 import ulaw_decode, ulaw_encode
    from media.resample import resample

    narrow = resample(samples, 16_000, 8_000)
    return resample(ulaw_decode(ulaw_encode(narrow)), 8_000, 16_000)


def speak_lines(
    scenario: Scenario,
    render: Render,
    *,
    voices: Mapping[str, Render] | None = None,
    voice: str = "",
) -> list[SpokenLine]:
    """Every line as audio: text (or `parts`) rendered by `render` (the voice named `voice`;
    a line naming its own voice by that one of `voices`), WAVs read, through the phone line
    when the scenario says so. Raises ScenarioError for a WAV that cannot be read or a voice
    that `voices` lacks."""
    out: list[SpokenLine] = []
    for i, line in enumerate(scenario.items, start=1):
        said_by, name = render, voice
        if line.voice is not None and line.voice != voice:
            if voices is None or line.voice not in voices:
                raise ScenarioError(f"line {i}: no {line.voice!r} voice to speak it with")
            said_by, name = voices[line.voice], line.voice
        samples = _line_audio(i, line, said_by)
        if scenario.phone_line:
            samples = phone_line(samples)
        pause = line.pause_ms if line.pause_ms is not None else scenario.pause_ms
        out.append(
            SpokenLine(
                samples=samples,
                text=line.said,
                expect=line.expect,
                barge_in_ms=line.barge_in_ms,
                pause_ms=pause,
                category=line.category or scenario.category,
                voice="" if line.wav else name,
                backchannel=line.backchannel,
                voiced=voiced_span(samples),
            )
        )
    return out


def _line_audio(i: int, line: Line, render: Render) -> npt.NDArray[np.int16]:
    from media.wav import AudioFormatError, read_wav

    if line.wav:
        path = Path(line.wav)
        try:
            return read_wav(path)
        except (OSError, AudioFormatError) as exc:
            raise ScenarioError(f"line {i}: cannot read {path}: {exc}") from exc
    if line.parts:
        return render_parts(line.parts, render)
    return render(line.text)


_WORD = re.compile(r"[a-z0-9']+")


def words(text: str) -> list[str]:
    """Lower-case words without punctuation (apostrophes kept: "that's")."""
    return _WORD.findall(text.lower())
