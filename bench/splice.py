"""A line with pauses inside it, as a person says it: the whole line synthesized once, the
scenario's silences spliced in at the part boundaries.

Rendering each part on its own makes every part end like a sentence (the pitch falls), so an
audio end-of-turn model rightly hears the first part as a finished turn. Spoken whole, the
voice keeps the sentence going over the boundary; the pause is then cut into the audio:

- the expected place of a boundary is where the speech of the parts before it ends when
  they are rendered alone (only for timing: none of that audio is used);
- after punctuation (a comma: both voices leave a short low-energy gap there) the cut is the
  middle of the low-energy gap (10 ms frames 35 dB under the loudest, at least 60 ms)
  nearest that place, within 300 ms;
- between two words without punctuation, or when no gap is near, the cut is the quietest
  10 ms frame within 150 ms of that place.

Within the chosen frame the cut is at its quietest sample, so the splice does not click.
The audio before and after each silence is the whole rendering's, sample for sample.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

Samples = npt.NDArray[np.int16]
Render = Callable[[str], Samples]

SAMPLE_RATE = 16_000
FRAME = 160  # 10 ms
GAP_DB = -35.0
"""A frame this far under the loudest frame is part of a gap."""
MIN_GAP_FRAMES = 6
"""The shortest gap taken for a punctuation pause (60 ms)."""
NEAR_FRAMES = 15
"""Without a gap, the cut is the quietest frame within this many frames (150 ms)."""
GAP_REACH = 30
"""A gap is taken only within this many frames (300 ms) of the expected place."""

_PUNCTUATED = re.compile(r"[,.;:!?\-]\W*$")


def render_spliced(parts: Sequence[str | int], render: Render) -> Samples:
    """`parts` (text, then silences in ms and text alternately) spoken as one line by
    `render`, each silence inserted at its boundary in that one rendering."""
    texts = [p for p in parts if isinstance(p, str)]
    pauses = [p for p in parts if not isinstance(p, str)]
    whole = np.asarray(render(" ".join(texts)), dtype=np.int16)
    cuts = boundaries(whole, texts, render)
    pieces: list[Samples] = []
    start = 0
    for cut, pause in zip(cuts, pauses, strict=True):
        pieces += [whole[start:cut], np.zeros(pause * SAMPLE_RATE // 1000, dtype=np.int16)]
        start = cut
    pieces.append(whole[start:])
    return np.concatenate(pieces).astype(np.int16)


def boundaries(audio: Samples, texts: Sequence[str], render: Render) -> list[int]:
    """The sample index of each boundary between `texts` spoken in `audio` (ascending); the
    expected place of each is where the speech of the texts before it, rendered alone, ends."""
    db = frame_db(audio)
    if len(db) == 0:
        return [0] * (len(texts) - 1)
    gaps = low_gaps(db)
    cuts: list[int] = []
    floor = 0
    for k in range(1, len(texts)):
        expected = _speech_end(render(" ".join(texts[:k])))
        frame = None
        if _PUNCTUATED.search(texts[k - 1]):
            frame = _nearest_gap(gaps, expected, floor)
        if frame is None:
            frame = _quietest_frame(db, expected, floor)
        cuts.append(_quietest_sample(audio, frame))
        floor = frame + 1
    return cuts


def _speech_end(audio: Samples) -> int:
    """The frame after the last one within `GAP_DB` of the loudest."""
    loud = np.flatnonzero(frame_db(audio) > GAP_DB)
    return int(loud[-1]) + 1 if len(loud) else 0


def frame_db(audio: Samples) -> npt.NDArray[np.float64]:
    """Each 10 ms frame's RMS in dB under the loudest frame's."""
    n = len(audio) // FRAME
    if n == 0:
        return np.zeros(0)
    frames = audio[: n * FRAME].astype(np.float64).reshape(n, FRAME)
    rms = np.maximum(np.sqrt(np.mean(frames**2, axis=1)), 1.0)
    return np.asarray(20 * np.log10(rms / rms.max()), dtype=np.float64)


def low_gaps(db: npt.NDArray[np.float64]) -> list[tuple[int, int]]:
    """Runs of quiet frames `[start, end)` of at least `MIN_GAP_FRAMES` between the first and
    the last loud frame."""
    loud = np.flatnonzero(db > GAP_DB)
    if len(loud) == 0:
        return []
    first, last = int(loud[0]), int(loud[-1]) + 1
    quiet = np.concatenate([[False], db[first:last] <= GAP_DB, [False]])
    edges = np.flatnonzero(np.diff(quiet.astype(np.int8)))
    runs = zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True)
    return [(first + s, first + e) for s, e in runs if e - s >= MIN_GAP_FRAMES]


def _nearest_gap(gaps: Sequence[tuple[int, int]], expected: int, floor: int) -> int | None:
    """The middle frame of the gap (after `floor`) nearest `expected`, if one is within
    `GAP_REACH` frames of it (0 frames away when it holds `expected`)."""

    def distance(gap: tuple[int, int]) -> int:
        start, end = gap
        return max(start - expected, expected - end, 0)

    near = [g for g in gaps if g[0] >= floor and distance(g) <= GAP_REACH]
    if not near:
        return None
    start, end = min(near, key=distance)
    return (start + end) // 2


def _quietest_frame(db: npt.NDArray[np.float64], centre: int, floor: int) -> int:
    lo = min(max(floor, centre - NEAR_FRAMES, 0), len(db) - 1)
    hi = max(min(centre + NEAR_FRAMES + 1, len(db)), lo + 1)
    return lo + int(np.argmin(db[lo:hi]))


def _quietest_sample(audio: Samples, frame: int) -> int:
    chunk = np.abs(audio[frame * FRAME : (frame + 1) * FRAME].astype(np.int32))
    return frame * FRAME + (int(np.argmin(chunk)) if len(chunk) else 0)
