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
- `pause_ms`: silence before the line once the agent finished (default: the scenario's).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import msgspec

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

DEFAULT_SCENARIO = "receptionist_booking.toml"
WIRE_SCENARIO = "receptionist_wire.toml"


class ScenarioError(ValueError):
    """A scenario file is missing or invalid; the message names the file and the problem."""


class Line(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One caller line with its options."""

    text: str = ""
    wav: str = ""
    expect: str = ""
    barge_in_ms: Annotated[int, msgspec.Meta(ge=0, le=60_000)] | None = None
    pause_ms: Annotated[int, msgspec.Meta(ge=0, le=60_000)] | None = None

    def __post_init__(self) -> None:
        if not self.text.strip() and not self.wav:
            raise ValueError("a line needs `text` or `wav`")


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

    @property
    def items(self) -> tuple[Line, ...]:
        """Every line as a `Line` (plain strings become `Line(text=...)`)."""
        return tuple(Line(text=x) if isinstance(x, str) else x for x in self.lines)

    @property
    def texts(self) -> tuple[str, ...]:
        """The reference text of every line ("" for a WAV line without one)."""
        return tuple(line.text for line in self.items)


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
        raise ScenarioError(f"{where}: {exc}") from exc
    if isinstance(where, Path):
        scenario = _wavs_relative_to(scenario, where.parent)
    return scenario


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


Render = Callable[[str], "npt.NDArray[np.int16]"]
"""Text -> 16 kHz int16 samples in the caller voice."""


def phone_line(samples: npt.NDArray[np.int16]) -> npt.NDArray[np.int16]:
    """`samples` sent through a G.711 mu-law 8 kHz line and back."""
    from media.g711 import ulaw_decode, ulaw_encode
    from media.resample import resample

    narrow = resample(samples, 16_000, 8_000)
    return resample(ulaw_decode(ulaw_encode(narrow)), 8_000, 16_000)


def speak_lines(scenario: Scenario, render: Render) -> list[SpokenLine]:
    """Every line as audio: text rendered by `render`, WAVs read, through the phone line when
    the scenario says so. Raises ScenarioError for a WAV that cannot be read."""
    from media.wav import AudioFormatError, read_wav

    out: list[SpokenLine] = []
    for i, line in enumerate(scenario.items, start=1):
        if line.wav:
            path = Path(line.wav)
            try:
                samples = read_wav(path)
            except (OSError, AudioFormatError) as exc:
                raise ScenarioError(f"line {i}: cannot read {path}: {exc}") from exc
        else:
            samples = render(line.text)
        if scenario.phone_line:
            samples = phone_line(samples)
        pause = line.pause_ms if line.pause_ms is not None else scenario.pause_ms
        out.append(
            SpokenLine(
                samples=samples,
                text=line.text,
                expect=line.expect,
                barge_in_ms=line.barge_in_ms,
                pause_ms=pause,
            )
        )
    return out


_WORD = re.compile(r"[a-z0-9']+")


def words(text: str) -> list[str]:
    """Lower-case words without punctuation (apostrophes kept: "that's")."""
    return _WORD.findall(text.lower())
