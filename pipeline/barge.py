"""Speech over the agent's reply, read from its words: does it say something (a barge-in),
or only acknowledge the agent (a backchannel: "mhm", "okay")? Sans-IO: text in, verdict out.

Whisper tiny hears a short hum in its own ways: spelled ("M H M.", "M A M."), as a hum it
does not write the usual way ("Hmhm", "Em"), or, in a partial of half a word, as a stray word
that is not there ("Hup.", "Type.", "M A can."; the bench's turn-taking set, issue 16). So a
partial barges in before the agent's `backchannel_max_ms` only on words it can trust: two
words that are neither acknowledgements, hums nor stray letters, or one such word that two
partials in a row agree on (`SttStream.committed`). Until then the agent stays paused (the
caller hears it stop at once either way); the final transcript decides speech that ends
first, where a hum also reads as a backchannel (`acknowledges`). The words and the hums are
read as `pipeline.turn` reads backchannels (`backchannel_words`, `acknowledging`, `HUM`).
"""

from __future__ import annotations

from pipeline.turn import acknowledging, backchannel_words, is_backchannel


def acknowledges(text: str) -> bool:
    """Whether a final transcript only acknowledges the agent: a backchannel
    (`pipeline.turn.is_backchannel`), or a hum the recogniser wrote its own way."""
    return is_backchannel(text, hums=True)


def content_words(text: str) -> list[str]:
    """The words of `text` that say something: not acknowledgements, hums or stray letters."""
    return [
        w
        for w in backchannel_words(text)
        if not acknowledging(w, hums=True) and not (len(w) == 1 and w.isalpha())
    ]


def says_something(partial: str, agreed: str) -> bool:
    """Whether a partial transcript of speech over the agent is a barge-in by its words: two
    content words, or one that the partial before it agreed on (`agreed`, the prefix two
    partials in a row share)."""
    return len(content_words(partial)) >= 2 or bool(content_words(agreed))
