"""Turn detection, sans-IO: when has the caller finished speaking?

Fed one speech probability per 20 ms frame (with the frame's time), whenever it changes the
latest partial transcript, and at a pause the audio turn model's probability that the caller
has finished (`update_model`). The end-of-turn window is the agent's silence window, shortened
when the transcript reads as a complete sentence, lengthened to the list window
(`list_silence_ms`) when the line may be the first items of a list or has no words yet (each
utterance starts so: until the recogniser's first words, a pause may be between a list's
items), and to the long window after fillers, conjunctions and unfinished numbers (phone, card
and order numbers): `pipeline/turn_text.py` reads the transcript, given the agent's last line
(`agent_asked`). The audio model's verdict on the current pause comes on top (`window_s`):
confident "complete" ends the turn after the agent's `model_complete_ms` once the pause's words
are in, confident "incomplete" waits the agent's longest window when the transcript cannot tell
(a sentence it punctuates as whole is not held); a transcript that ends unfinished (a filler, a
digit string) keeps the long window whatever the model says, and one that may be a list the
list window.
"""

from __future__ import annotations

import re

import msgspec

from agents.spec import TurnSettings
from pipeline.turn_text import WORD, Ending, classify_ending  # (the transcript's rules)


class SpeechStarted(msgspec.Struct, frozen=True, tag="speech_started"):
    at: float
    """Time of the first speech frame's start."""


class SpeechPaused(msgspec.Struct, frozen=True, tag="speech_paused"):
    """Speech stopped; the turn may be over (a good moment to decode speculatively)."""

    speech_end: float


class SpeechResumed(msgspec.Struct, frozen=True, tag="speech_resumed"):
    at: float


class TurnEnded(msgspec.Struct, frozen=True, tag="turn_ended"):
    speech_start: float
    speech_end: float
    decided_at: float
    window_s: float


class SpeechDiscarded(msgspec.Struct, frozen=True, tag="speech_discarded"):
    """Speech too short to be a turn (a click, a cough)."""

    duration_s: float


TurnEvent = SpeechStarted | SpeechPaused | SpeechResumed | TurnEnded | SpeechDiscarded


_BACKCHANNEL_WORDS = frozenset(
    "mhm mm mmm hmm hm uh huh um ah aha oh uhhuh mmhmm mmhm mhmm yeah yes yep yup ok okay right "
    "sure alright "
    "i see got it great cool fine good thanks thank you".split()
)
BACKCHANNEL_MAX_WORDS = 3
HUM = re.compile(r"h*m+(?:h+m*)+|h+m+|m+[ah]+m+|e+m+|[mn]*n[mn]*")
"""A hum written as one word: "mhm", "hmm", "hmhm", "mmhmm", "mam" (spelled "M A M"), "em",
"nmm" (spelled "N M M", Piper's "Mm-hmm."). Not "mmmm" ("Mm-mm.", a no) nor "uhuh" ("Uh-uh.")."""


def backchannel_words(text: str) -> list[str]:
    """The words of speech over the agent as the backchannel rules read them: lower case,
    hyphens dropped ("Mm-hmm" one word), and a line of single letters joined into one word
    (spelled out: Whisper writes a "Mhm." as "M H M.")."""
    words = WORD.findall(text.lower().replace("-", ""))
    if len(words) > 1 and all(len(w) == 1 for w in words):
        return ["".join(words)]
    return words


def acknowledging(word: str, *, hums: bool = False) -> bool:
    """Whether one of `backchannel_words` only acknowledges the agent ("mhm", "okay", "got");
    with `hums`, a hum the recogniser wrote its own way (`HUM`: "hmhm", "em") counts too."""
    return word in _BACKCHANNEL_WORDS or (hums and HUM.fullmatch(word) is not None)


def is_backchannel(text: str, *, hums: bool = False) -> bool:
    """Whether words said over the agent only acknowledge it ("mhm", "okay", "I see", "got
    it") rather than say something (no words at all: a noise, also nothing to answer); `hums`:
    as `acknowledging` reads a word."""
    words = backchannel_words(text)
    return len(words) <= BACKCHANNEL_MAX_WORDS and all(acknowledging(w, hums=hums) for w in words)


class TurnDetector:
    """End-of-turn from VAD and transcript. Call `feed` once per frame, in order."""

    def __init__(
        self,
        settings: TurnSettings,
        *,
        speech_threshold: float = 0.5,
        silence_threshold: float = 0.35,
        frame_s: float = 0.020,
        pause_s: float = 0.16,
    ) -> None:
        self.settings = settings
        self._on = speech_threshold
        self._off = silence_threshold
        self._frame_s = frame_s
        self._pause_s = pause_s
        self._paused = False  # SpeechPaused was reported for the current silence
        self._speaking = False  # inside an utterance (possibly in a pause)
        self._voiced = False  # the current frame is speech
        self._start = 0.0
        self._last_voice_end = 0.0
        self._voiced_s = 0.0
        self._ending = Ending.UNHEARD
        self._model_p: float | None = None
        """The audio model's probability that the current pause ends the turn (None: none)."""
        self._asked = ""
        self._heard_pause = False
        """A transcript came in during the current pause (the model's "complete" needs one:
        without it "Great," reads as no words at all, not as an unfinished line)."""

    @property
    def silence_threshold(self) -> float:
        """Speech probability under which a frame is silence (once speech has started)."""
        return self._off

    @property
    def in_utterance(self) -> bool:
        return self._speaking

    @property
    def speech_start(self) -> float:
        return self._start

    @property
    def voiced_s(self) -> float:
        """Seconds of speech in the current utterance so far."""
        return self._voiced_s

    @property
    def model_probability(self) -> float | None:
        return self._model_p

    def window_s(self) -> float:
        s = self.settings
        ending, p = self._ending, self._model_p
        # (a line that may be a list's first items waits the list window whatever the model
        # says: its "complete" heard "Nine," whole in "Nine, ... ten, ... or eleven")
        if p is not None and ending in (Ending.COMPLETE, Ending.NEUTRAL, Ending.UNHEARD):
            if p >= s.model_complete_threshold and ending is not Ending.UNHEARD:
                if self._heard_pause:
                    return min(s.model_complete_ms, s.complete_silence_ms, s.silence_ms) / 1000.0
            elif p <= s.model_incomplete_threshold and ending is not Ending.COMPLETE:
                ending = Ending.INCOMPLETE  # (a sentence the transcript reads as whole stays so)
        listing = max(s.list_silence_ms, s.silence_ms)
        ms = {
            Ending.COMPLETE: min(s.complete_silence_ms, s.silence_ms),
            Ending.NEUTRAL: s.silence_ms,
            Ending.OPEN: listing,
            Ending.UNHEARD: listing,  # (no words to judge yet, nor to reply to)
            Ending.INCOMPLETE: max(s.incomplete_silence_ms, s.silence_ms),
        }[ending]
        return ms / 1000.0

    def agent_asked(self, line: str) -> None:
        """The agent's last line before the caller's utterance: its question says what kind of
        answer comes (a card number's 15-16 digits, a choice of days that may be a list)."""
        self._asked = line

    def update_transcript(self, text: str) -> None:
        self._ending = classify_ending(text, self._asked)
        self._heard_pause = self._paused

    def update_model(self, probability: float, speech_end: float) -> bool:
        """The audio model's verdict on the pause after `speech_end` (the `SpeechPaused` it was
        asked for). Taken only while that pause lasts: a verdict that arrives after the caller
        went on, or for an earlier pause, is dropped (False)."""
        if not (self._speaking and self._paused and speech_end == self._last_voice_end):
            return False
        self._model_p = probability
        return True

    def reset(self) -> None:
        self._speaking = False
        self._paused = False
        self._voiced = False
        self._voiced_s = 0.0
        self._ending = Ending.UNHEARD
        self._model_p = None

    def feed(self, probability: float, frame_end: float) -> list[TurnEvent]:
        """One frame's speech probability; `frame_end` is the time the frame ends."""
        events: list[TurnEvent] = []
        frame_start = frame_end - self._frame_s
        # Inside an utterance (in a pause too) speech is what is not silence: a soft stretch of
        # a word ("appoint-ment" through G.711 scored 0.36-0.46) resumes the utterance, where
        # needing the start threshold again ended the turn mid-word.
        voiced = probability >= (self._off if self._voiced or self._speaking else self._on)
        if voiced:
            if not self._speaking:
                self._speaking = True
                self._start = frame_start
                self._voiced_s = 0.0
                self._ending = Ending.UNHEARD  # (no transcript yet: no words to judge)
                events.append(SpeechStarted(frame_start))
            elif self._paused:
                events.append(SpeechResumed(frame_start))
            self._paused = False
            self._model_p = None
            self._voiced_s += self._frame_s
            self._last_voice_end = frame_end
        elif self._speaking:
            silence = frame_end - self._last_voice_end
            if not self._paused and silence + 1e-9 >= min(self._pause_s, self.window_s()):
                self._paused = True
                self._heard_pause = False
                events.append(SpeechPaused(self._last_voice_end))
            if silence + 1e-9 >= self.window_s():
                self._speaking = False
                if self._voiced_s * 1000 < self.settings.min_speech_ms:
                    events.append(SpeechDiscarded(self._voiced_s))
                else:
                    events.append(
                        TurnEnded(self._start, self._last_voice_end, frame_end, self.window_s())
                    )
                self._voiced_s = 0.0
                self._paused = False
                self._model_p = None
        self._voiced = voiced
        return events
