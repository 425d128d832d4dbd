"""Speech over the agent's reply, read from its words: does it say something (a barge-in),
or only acknowledge the agent (a backchannel: "mhm", "okay")? Sans-IO: text in, verdict out.

Whisper tiny hears a short hum in its own ways: spelled ("M H M.", "M A M."), as a hum it
does not write the usual way ("Hmhm", "Em"), or, in a partial of half a word, as a stray word
that is not there ("Hup.", "Type.", "M A can."; the bench's turn-taking set, issue 16). So a
partial barges in before the agent's `backchannel_max_ms` only on words it can trust: two
words that are neither acknowledgements, hums nor stray letters, or one such word that two
partials in a row agree on (`SttStream.committed`). Until then the agent stays paused (the
caller hears it stop at once either way); the final transcript decides speech that ends
first, where a hum also reads as a backchannel (`acknowledges`).
"""

from __future__ import annotations

import re

from pipeline.turn import BACKCHANNEL_MAX_WORDS, is_backchannel
from pipeline.turn_text import WORD

HUM = re.compile(r"h*m+(?:h+m*)+|h+m+|m+[ah]+m+|e+m+|[mn]*n[mn]*")
"""A hum written as one word: "mhm", "hmm", "hmhm", "mmhmm", "mam" (spelled "M A M"), "em",
"nmm" (spelled "N M M", Piper's "Mm-hmm."). Not "mmmm" ("Mm-mm.", a no) nor "uhuh" ("Uh-uh.")."""


def _words(text: str) -> list[str]:
    words = WORD.findall(text.lower().replace("-", ""))
    if len(words) > 1 and all(len(w) == 1 for w in words):
        return ["".join(words)]  # spelled out, as `is_backchannel` reads it
    return words


def _acknowledging(word: str) -> bool:
    return is_backchannel(word) or HUM.fullmatch(word) is not None


def acknowledges(text: str) -> bool:
    """Whether a final transcript only acknowledges the agent: a backchannel
    (`pipeline.turn.is_backchannel`), or a hum the recogniser wrote its own way."""
    words = _words(text)
    return len(words) <= BACKCHANNEL_MAX_WORDS and all(_acknowledging(w) for w in words)


def content_words(text: str) -> list[str]:
    """The words of `text` that say something: not acknowledgements, hums or stray letters."""
    return [w for w in _words(text) if not _acknowledging(w) and not (len(w) == 1 and w.isalpha())]


def says_something(partial: str, agreed: str) -> bool:
    """Whether a partial transcript of speech over the agent is a barge-in by its words: two
    content words, or one that the partial before it agreed on (`agreed`, the prefix two
    partials in a row share)."""
    return len(content_words(partial)) >= 2 or bool(content_words(agreed))
