"""A line with pauses inside it (`parts`) is rendered whole, once, and the scenario's silences
are spliced in at the part boundaries: with the real caller voices (Piper, espeak-ng), and with
tones for the choice of the cut."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import numpy.typing as npt
import pytest

from bench.scenario import Render, render_parts
from bench.splice import boundaries
from media.speech import CallerVoice, espeak

from .wire_fakes import silence, tone

Samples = npt.NDArray[np.int16]
LINE = ("I could do Monday,", 500, "or Friday.")
TEXTS = ["I could do Monday,", "or Friday."]


@pytest.fixture(scope="module")
def piper() -> Iterator[Render]:
    yield CallerVoice.load(threads=1)


def _voice(name: str, piper: Render) -> Render:
    return piper if name == "piper" else espeak


def _longest_quiet_run(audio: Samples) -> tuple[int, int]:
    """Samples `[start, end)` of the longest run of 10 ms frames 35 dB or more under the
    loudest frame, between the first and the last loud frame: the comma's pause in a line
    with one comma and no other pause."""
    n = len(audio) // 160
    rms = np.sqrt(np.mean(audio[: n * 160].astype(np.float64).reshape(n, 160) ** 2, axis=1))
    quiet = rms <= rms.max() * 10 ** (-35 / 20)
    loud = np.flatnonzero(~quiet)
    best, start = (0, 0), None
    for i in range(int(loud[0]), int(loud[-1]) + 1):
        if quiet[i] and start is None:
            start = i
        elif not quiet[i] and start is not None:
            best = max(best, (start, i), key=lambda r: r[1] - r[0])
            start = None
    return best[0] * 160, best[1] * 160


@pytest.mark.parametrize("name", ["piper", "espeak"])
def test_a_two_part_line_is_one_rendering_with_the_silence_spliced_in(
    name: str, piper: Render
) -> None:
    render = _voice(name, piper)
    whole = render("I could do Monday, or Friday.")
    line = render_parts(LINE, render)
    assert len(line) == len(whole) + 500 * 16
    (cut,) = boundaries(whole, TEXTS, render)
    # Sample-exact: the whole line's audio up to the cut, exactly 500 ms of silence, the rest.
    assert np.array_equal(line[:cut], whole[:cut])
    assert np.all(line[cut : cut + 8000] == 0)
    assert np.array_equal(line[cut + 8000 :], whole[cut:])
    # Not two renderings: the part after the pause is not "or Friday." said on its own.
    alone = render("or Friday.")
    assert not np.array_equal(line[cut + 8000 :][: len(alone)], alone)


@pytest.mark.parametrize("name", ["piper", "espeak"])
def test_the_cut_is_in_the_pause_at_the_comma(name: str, piper: Render) -> None:
    render = _voice(name, piper)
    whole = render("I could do Monday, or Friday.")
    start, end = _longest_quiet_run(whole)
    assert end - start >= 80 * 16  # the comma's pause is there to be found
    (cut,) = boundaries(whole, TEXTS, render)
    assert start <= cut < end


def _words(seconds: dict[str, float], gap_s: float, dip_s: float = 0.0) -> Render:
    """A voice of tones: each word a tone of its length (0.4 s unknown words), `gap_s` of
    silence after a comma, `dip_s` of a quieter tone between other words."""

    def render(text: str) -> Samples:
        out: list[Samples] = []
        for word in text.split():
            out.append(tone(seconds.get(word.strip(",."), 0.4)))
            if word.endswith(","):
                out.append(silence(gap_s))
            elif dip_s:
                out.append(tone(dip_s, amplitude=800))
        return np.concatenate(out)

    return render


def test_a_cut_at_a_comma_takes_the_gap_nearest_where_the_part_ends() -> None:
    # Two commas, the boundary after the second: the first gap is not taken.
    render = _words({"um": 0.3}, gap_s=0.2)
    texts = ["yes, um,", "that's right."]
    whole = render("yes, um, that's right.")
    (cut,) = boundaries(whole, texts, render)
    assert 0.9 * 16_000 <= cut < 1.1 * 16_000  # 0.4 + 0.2 + 0.3, then the 0.2 s gap


def test_a_cut_between_words_without_a_comma_takes_the_quietest_frame_near_the_end() -> None:
    render = _words({}, gap_s=0.0, dip_s=0.05)
    texts = ["do you take", "Delta Dental"]
    whole = render("do you take Delta Dental")
    (cut,) = boundaries(whole, texts, render)
    # "take" ends at 3 * 0.4 + 2 * 0.05 = 1.3 s, its quieter 50 ms follow.
    assert 1.3 * 16_000 <= cut < 1.35 * 16_000
    spoken = render_parts(("do you take", 600, "Delta Dental"), render)
    assert np.all(spoken[cut : cut + 600 * 16] == 0)
    assert np.array_equal(spoken[cut + 600 * 16 :], whole[cut:])


def test_three_parts_get_their_own_silences_in_order() -> None:
    render = _words({}, gap_s=0.15)
    spoken = render_parts(("five five five,", 700, "two one two,", 600, "three four."), render)
    whole = render("five five five, two one two, three four.")
    assert len(spoken) == len(whole) + (700 + 600) * 16
    first, second = boundaries(whole, ["five five five,", "two one two,", "three four."], render)
    assert 1.2 * 16_000 <= first < 1.35 * 16_000 < 2.55 * 16_000 <= second < 2.7 * 16_000
    assert np.array_equal(spoken[:first], whole[:first])
    assert np.all(spoken[first : first + 700 * 16] == 0)
    after = first + 700 * 16
    assert np.array_equal(spoken[after : after + second - first], whole[first:second])
    assert np.all(spoken[after + second - first :][: 600 * 16] == 0)
    assert np.array_equal(spoken[-(len(whole) - second) :], whole[second:])
