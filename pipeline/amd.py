"""Answering-machine detection: is the far end of an outbound call a person or a machine, and
when may a voicemail message start? Sans-IO: fed frames, VAD speech flags and transcripts with
their times, it returns what it has decided.

The rules, in the order they are tried (times from the answer):

1. **beep**: a beep (`media.tone.BeepDetector`) is a machine's;
2. **greeting_phrase**: a transcript with a voicemail greeting's words (`pipeline.amd_words`:
   what it asks for, "leave a message", "after the tone", "not available"; how it opens,
   "you've reached", "thank you for calling"; how it signs off, "talk to you later", "bye",
   "I'll call you back") is a machine's;
3. **answer_phrase**: a transcript with a question to the caller about who they are or what
   they want ("who's calling", "how can I help"), or with two kinds of a person's answer
   (below), is a person's at once, while they may still be talking (the agent's greeting
   waits for their pause, `pipeline.screening`);
4. **long_greeting**: one utterance (speech whose pauses are all shorter than
   `human_silence_ms`) of `machine_speech_ms` (`long_greeting_ms`) or more is a machine's
   greeting, unless its transcript has words a person says to the caller and greetings do
   not (an answer: "who's calling", "speaking", "what's up", "go ahead"; what they are doing
   now: "I'm driving", "I'm at work"; a question of three words or more; an interjection to
   open with, "Oh hi, yeah, ..."): a long answer ("Hello, yes, this is Karen speaking, who
   is calling please?") is a person's;
5. **short_greeting**: a shorter utterance (or one with a person's words) followed by
   `human_silence_ms` of silence ("Hello?" and a wait for an answer; after a person's words,
   or a whole short answer heard, "Hello?", `ANSWERED_SILENCE_SHARE` of it) is a
   person's, unless a tone is playing then (it may be the beep after a short greeting: its
   end decides). Timing alone decides it: a transcript that comes late (a slow recogniser)
   does not hold it back;
6. **deadline** at `decision_ms`: a tone still playing, or an utterance still going on after
   60 % of `machine_speech_ms` without a person's words, is a machine's, a shorter one (or
   one with them) a person's; **silence**: nobody spoke, unknown.

After "machine" the detector keeps listening for the moment to start a voicemail message
(`VoicemailCue`): the end of the beep; without one, `beep_wait_ms` of silence after the
greeting; at the latest `max_greeting_s` after the answer.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Final, Literal

import msgspec
import numpy as np
import numpy.typing as npt

from agents.spec import AmdSettings
from media.tone import Beep, BeepDetector, BeepSettings
from pipeline.amd_words import (
    ANSWER_PATTERNS,
    ANSWER_PHRASES,
    GREETING_PATTERNS,
    GREETING_PHRASES,
    answer_phrase,
    greeting_phrase,
    normalise,
    person_cues,
    short_answer,
)

__all__ = [
    "ANSWER_PATTERNS",
    "ANSWER_PHRASES",
    "GREETING_PATTERNS",
    "GREETING_PHRASES",
    "AmdDecision",
    "AmdEvidence",
    "AmdOutput",
    "AnsweringMachineDetector",
    "VoicemailCue",
    "answer_phrase",
    "greeting_phrase",
    "render_voicemail",
]

AmdResult = Literal["human", "machine", "unknown"]
AmdReason = Literal[
    "beep",
    "greeting_phrase",
    "answer_phrase",
    "long_greeting",
    "short_greeting",
    "deadline",
    "silence",
]

MIN_UTTERANCE_MS: Final = 120.0
"""Voiced time below which an utterance is a click or a breath, not a "hello"."""
DEADLINE_MACHINE_SHARE: Final = 0.6
"""At the deadline, an utterance still going on this share of `machine_speech_ms` long is a
machine's greeting."""
ANSWERED_SILENCE_SHARE: Final = 0.6
"""After a person's words to the caller (an answer phrase, a question), this share of
`human_silence_ms` of silence is enough: their words say who they are, the pause that they
are waiting. So is a whole short answer ("Hello?", "Yes?", `short_answer`) in a transcript
that heard everything said so far."""
SURE_CUES: Final = 2
"""This many kinds of a person's answer in the transcript (`person_cues`: an interjection to
open with, a question, what they are doing now, an answer phrase) decide "human" at once, as a
question to the caller about who they are does alone."""


class AmdEvidence(msgspec.Struct, frozen=True, kw_only=True):
    """What the decision was made from (no transcript text: only the matched phrase)."""

    first_speech_ms: float | None
    """When speech started, from the answer (None: nobody spoke)."""
    speech_ms: float
    """Voiced time so far."""
    greeting_ms: float
    """The longest utterance (pauses shorter than `human_silence_ms` bridged)."""
    utterances: int
    silence_ms: float
    """Silence since the last speech (since the answer if nobody spoke)."""
    phrase: str = ""
    """The voicemail greeting phrase found in the transcript."""
    answer: str = ""
    """A person's answer found in the transcript: the first answer phrase (`ANSWER_PHRASES`)
    or pattern's words, else "question", else the interjection it opened with."""
    words: int = 0
    """Words in the longest transcript heard."""
    beep_hz: float | None = None
    beep_end_ms: float | None = None


class AmdDecision(msgspec.Struct, frozen=True, kw_only=True):
    result: AmdResult
    reason: AmdReason
    decided_ms: float
    """From the answer."""
    evidence: AmdEvidence


class VoicemailCue(msgspec.Struct, frozen=True, kw_only=True):
    """Start the voicemail message now."""

    at_ms: float
    """From the answer: the beep's end, or the moment the wait ended."""
    after: Literal["beep", "silence", "timeout"]
    beep_hz: float | None = None


AmdOutput = AmdDecision | VoicemailCue


def render_voicemail(template: str, variables: Mapping[str, str]) -> str:
    """The message with `$name` variables filled in; unknown ones stay as written."""
    return string.Template(template).safe_substitute(variables)


class AnsweringMachineDetector:
    """One outbound call's first seconds, fed in order. Every method returns what it decided
    (at most a decision and a cue, each once)."""

    def __init__(
        self,
        settings: AmdSettings,
        *,
        answered_at: float,
        rate: int = 16_000,
        beep: BeepSettings | None = None,
    ) -> None:
        self.settings = settings
        self.answered_at = answered_at
        self._beeps = BeepDetector(beep, rate=rate)
        self._rate = rate
        self.decision: AmdDecision | None = None
        self.cue: VoicemailCue | None = None
        self._first_speech: float | None = None
        self._utt_start: float | None = None
        self._utt_voiced_ms = 0.0
        self._last_speech: float | None = None
        self._speech_ms = 0.0
        self._greeting_ms = 0.0
        self._utterances = 0
        self._phrase = ""
        self._answer = ""
        self._cues: frozenset[str] = frozenset()
        self._opener_until: float | None = None
        self._words = 0
        self._beep: Beep | None = None

    @property
    def done(self) -> bool:
        """Nothing more to learn: a person (or unknown), or a machine with its cue."""
        d = self.decision
        return d is not None and (d.result != "machine" or self.cue is not None)

    def feed(
        self, samples: npt.NDArray[np.int16], at_s: float, speech: bool
    ) -> tuple[AmdOutput, ...]:
        """One frame starting at `at_s`, and whether the VAD heard speech in it."""
        end = at_s + len(samples) / self._rate
        beep = self._beeps.feed(samples, at_s)
        if beep is not None:
            self._beep = beep
        if speech:
            self._speech(at_s, end)
        return self._advance(end)

    def heard(
        self, text: str, at_s: float, *, audio_end_s: float | None = None
    ) -> tuple[AmdOutput, ...]:
        """A transcript (partial or final) of what the far end said, heard at `at_s`, of the
        audio up to `audio_end_s` (unknown: None)."""
        self._words = max(self._words, len(normalise(text).split()))
        if not self._phrase:
            self._phrase = greeting_phrase(text)
        if not self._answer:
            self._answer = answer_phrase(text)
        self._cues |= person_cues(text)
        if audio_end_s is not None and short_answer(text):
            self._opener_until = max(audio_end_s, self._opener_until or audio_end_s)
        return self._advance(at_s)

    def _sure_person(self) -> bool:
        """The words alone say a person: a question to the caller about who they are, or
        `SURE_CUES` kinds of a person's answer."""
        return "caller" in self._cues or len(self._cues) >= SURE_CUES

    def _short_answer_heard(self) -> bool:
        """A transcript that heard everything said so far was a whole short answer."""
        last, until = self._last_speech, self._opener_until
        return last is not None and until is not None and until >= last

    def tick(self, now: float) -> tuple[AmdOutput, ...]:
        """Time passed without frames (the deadline and the greeting bound still apply)."""
        return self._advance(now)

    def _speech(self, start: float, end: float) -> None:
        last = start if self._last_speech is None else self._last_speech
        gap_ms = 1000.0 * (start - last)
        if self._utt_start is None or gap_ms >= self.settings.human_silence_ms:
            self._utt_start, self._utt_voiced_ms = start, 0.0
        self._utt_voiced_ms += 1000.0 * (end - start)
        self._speech_ms += 1000.0 * (end - start)
        self._last_speech = end
        if self._utt_voiced_ms >= MIN_UTTERANCE_MS:
            if self._utt_voiced_ms - 1000.0 * (end - start) < MIN_UTTERANCE_MS:
                self._utterances += 1
            if self._first_speech is None:
                self._first_speech = self._utt_start
            self._greeting_ms = max(self._greeting_ms, self._utterance_ms())

    def _utterance_ms(self) -> float:
        if self._utt_start is None or self._last_speech is None:
            return 0.0
        return round(1000.0 * (self._last_speech - self._utt_start), 3)

    def silence_ms(self, now: float) -> float:
        """How long the far end has been quiet at `now` (since the answer if it never spoke)."""
        return self._silence_ms(now)

    def _silence_ms(self, now: float) -> float:
        last = self.answered_at if self._last_speech is None else self._last_speech
        return round(1000.0 * (now - last), 3)  # 20 ms steps summed in floats: 3499.9999...

    def _advance(self, now: float) -> tuple[AmdOutput, ...]:
        out: list[AmdOutput] = []
        if self.decision is None:
            reason = self._rule(now)
            if reason is not None:
                self.decision = self._decided(now, *reason)
                out.append(self.decision)
        if self.decision is not None and self.decision.result == "machine" and self.cue is None:
            self.cue = self._cue(now)
            if self.cue is not None:
                out.append(self.cue)
        return tuple(out)

    def _rule(self, now: float) -> tuple[AmdResult, AmdReason] | None:
        s = self.settings
        spoke = self._utterances > 0
        if self._beep is not None:
            return "machine", "beep"
        if self._phrase:
            return "machine", "greeting_phrase"
        if spoke and self._sure_person():
            return "human", "answer_phrase"
        answered = bool(self._answer)
        if self._greeting_ms >= s.long_greeting_ms and not answered:
            return "machine", "long_greeting"
        tone = self._beeps.in_tone  # a tone going on may be the beep: its end decides
        short = answered or self._short_answer_heard()
        wait_ms = s.human_silence_ms * (ANSWERED_SILENCE_SHARE if short else 1.0)
        if spoke and not tone and self._silence_ms(now) >= wait_ms:
            return "human", "short_greeting"
        if self._ms(now) < s.decision_ms:
            return None
        if tone:
            return "machine", "deadline"
        if not spoke:
            return "unknown", "silence"
        going_on = self._silence_ms(now) < s.human_silence_ms
        long_now = self._utterance_ms() >= DEADLINE_MACHINE_SHARE * s.long_greeting_ms
        return ("machine" if going_on and long_now and not answered else "human"), "deadline"

    def _decided(self, now: float, result: AmdResult, reason: AmdReason) -> AmdDecision:
        beep = self._beep
        first = self._first_speech
        evidence = AmdEvidence(
            first_speech_ms=None if first is None else self._ms(first),
            speech_ms=round(self._speech_ms, 1),
            greeting_ms=round(self._greeting_ms, 1),
            utterances=self._utterances,
            silence_ms=round(self._silence_ms(now), 1),
            phrase=self._phrase,
            answer=self._answer,
            words=self._words,
            beep_hz=None if beep is None else beep.hz,
            beep_end_ms=None if beep is None else self._ms(beep.ended_s),
        )
        return AmdDecision(
            result=result, reason=reason, decided_ms=self._ms(now), evidence=evidence
        )

    def _cue(self, now: float) -> VoicemailCue | None:
        s = self.settings
        if self._beep is not None:
            return VoicemailCue(
                at_ms=self._ms(self._beep.ended_s), after="beep", beep_hz=self._beep.hz
            )
        if self._ms(now) >= 1000.0 * s.max_greeting_s:
            return VoicemailCue(at_ms=self._ms(now), after="timeout")
        if not self._beeps.in_tone and self._silence_ms(now) >= s.beep_wait_ms:
            return VoicemailCue(at_ms=self._ms(now), after="silence")
        return None

    def _ms(self, t: float) -> float:
        return round(1000.0 * (t - self.answered_at), 1)
