"""Whisper decodes of short utterances with a shorter encoder window.

faster-whisper pads every input to Whisper's 30 s window, so a 2 s utterance pays for encoding
28 s of silence: on a 2-core CPU, tiny.en int8 takes ~750 ms per decode, almost all of it in
the encoder. CTranslate2's encoder also accepts a shorter mel window. With a 10 s window the
encoder is ~4x cheaper and the transcripts of phone-length lines come out the same (checked
against the 30 s decode on the test lines, wideband and through G.711); windows fitted tightly
to the utterance make Whisper repeat itself, so the window is fixed (`stt.context_s`) and an
utterance that does not fit in it, or a decode that looks like a repetition loop, goes through
the full 30 s path instead.

The decode is greedy or beam search like faster-whisper's (temperature 0, no timestamps,
the default suppressed tokens), with the same no-speech rule: a window Whisper thinks is
silence and whose text it is unsure of transcribes to "", and so does punctuation alone.

The fixed window makes every utterance the same shape, so `decode_batch` encodes several
calls' utterances in one encoder call and decodes them in one `generate` (each with its own
prompt): the transcripts are those each utterance gets alone.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

HOP = 160  # samples per mel frame at 16 kHz
MARGIN_FRAMES = 100  # 1 s of the window kept free after the audio
NO_SPEECH_THRESHOLD = 0.6
LOG_PROB_THRESHOLD = -1.0
COMPRESSION_RATIO_THRESHOLD = 2.4
MAX_LENGTH = 448
BUDGET_BASE_TOKENS = 16
BUDGET_TOKENS_PER_S = 10
"""A decode may generate at most `BUDGET_BASE_TOKENS + BUDGET_TOKENS_PER_S` per second of audio
(`token_budget`). Speech, digits read one by one included, comes to 2-5 tokens a second; a
decode that reaches the budget is a repetition loop, which would otherwise run on to Whisper's
448 tokens (seconds of a shared engine's time, every other call's decodes waiting behind it)."""


@dataclass(frozen=True, slots=True)
class Utterance:
    """One decode: 16 kHz float audio, the words it is known to start with (`prefix`), the
    text it is read as following (`context`, Whisper's previous text)."""

    audio: npt.NDArray[np.float32]
    prefix: str = ""
    context: str = ""
    final: bool = True
    """False for a partial: a partial that loops is skipped, not decoded again in 30 s."""


def token_budget(samples: int) -> int:
    """The most tokens a decode of `samples` (16 kHz) may generate (see `BUDGET_TOKENS_PER_S`)."""
    return BUDGET_BASE_TOKENS + math.ceil(BUDGET_TOKENS_PER_S * samples / 16000)


def compression_ratio(text: str) -> float:
    """zlib ratio of the text: Whisper's repetition-loop detector (loops compress well)."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


class ShortWindowDecoder:
    """Decodes utterances that fit in a `context_s` window; `None` means "use the 30 s path"."""

    def __init__(self, model: WhisperModel, *, context_s: float, beam_size: int, language: str):
        from faster_whisper.tokenizer import Tokenizer

        self._model = model
        self._frames = int(round(context_s * 100))
        self._beam_size = beam_size
        self._tokenizer = Tokenizer(
            model.hf_tokenizer,
            model.model.is_multilingual,
            task="transcribe",
            language=language if model.model.is_multilingual else "en",
        )
        self.last_calls: list[int] = []
        """The batch size of each model call the last `decode_batch` made."""

    def max_samples(self) -> int:
        """The longest audio decoded in the short window (0 when the window is the full 30 s)."""
        return 0 if self._frames >= 3000 else (self._frames - MARGIN_FRAMES) * HOP

    def fits(self, samples: int) -> bool:
        return samples <= self.max_samples()

    def decode(
        self, audio: npt.NDArray[np.float32], prefix: str = "", context: str = ""
    ) -> str | None:
        """The transcript, or None when the audio or the result calls for the 30 s window.
        `context` goes before the utterance as Whisper's previous text (its initial prompt)."""
        return self.decode_batch([Utterance(audio, prefix, context)])[0]

    def decode_batch(self, items: Sequence[Utterance]) -> list[str | None]:
        """`decode` of each item, the items that fit decoded together: one encoder call (the
        windows are all the same shape) and one `generate` per group of prompts whose
        start-of-transcript token sits at the same position (CTranslate2 needs that; calls of
        the same agent share the context, hence the position, hence one group)."""
        out: list[str | None] = [None] * len(items)
        prompts = {i: self._prompt(u) for i, u in enumerate(items) if self.fits(len(u.audio))}
        self.last_calls = []
        for group in same_start(prompts, self._tokenizer.sot):
            self.last_calls.append(len(group))
            features = np.stack([self._window(items[i].audio) for i in group])
            budgets = [token_budget(len(items[i].audio)) for i in group]
            results = self._generate(features, [prompts[i] for i in group], budgets)
            for i, result, budget in zip(group, results, budgets, strict=True):
                out[i] = self._text(result, budget)
        return out

    def _window(self, audio: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        features = self._model.feature_extractor(audio)[:, : self._frames]
        if features.shape[-1] < self._frames:
            features = np.pad(features, ((0, 0), (0, self._frames - features.shape[-1])))
        return np.asarray(features, dtype=np.float32)

    def _prompt(self, item: Utterance) -> list[int]:
        tok = self._tokenizer
        prompt: list[int] = []
        if item.context.strip():
            previous = tok.encode(" " + item.context.strip())[: MAX_LENGTH // 2 - 1]
            prompt += [tok.sot_prev, *previous]
        prompt += [*tok.sot_sequence, tok.no_timestamps]
        if item.prefix.strip():
            prompt += tok.encode(" " + item.prefix.strip())
        return prompt

    def _generate(
        self, features: npt.NDArray[np.float32], prompts: list[list[int]], budgets: list[int]
    ) -> list[Any]:
        """One encoder call and one `generate` for the group. CTranslate2's `max_length`
        counts the prompt: each prompt gets its own budget, the group the largest of them."""
        import ctranslate2

        longest = max(len(p) + b for p, b in zip(prompts, budgets, strict=True))
        window = ctranslate2.StorageView.from_array(np.ascontiguousarray(features))
        encoded = self._model.model.encode(window, to_cpu=False)
        return list(
            self._model.model.generate(
                encoded,
                prompts,
                beam_size=self._beam_size,
                max_length=min(MAX_LENGTH, longest),
                suppress_blank=True,
                suppress_tokens=[-1],
                return_scores=True,
                return_no_speech_prob=True,
            )
        )

    def _text(self, result: Any, budget: int) -> str | None:
        tok = self._tokenizer
        tokens = [t for t in result.sequences_ids[0] if t < tok.eot]
        if len(tokens) >= budget:
            return None  # ran to its budget: a repetition loop
        text = str(tok.decode(tokens)).strip()
        avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1)
        if result.no_speech_prob > NO_SPEECH_THRESHOLD and avg_logprob < LOG_PROB_THRESHOLD:
            return ""
        if not any(c.isalnum() for c in text):
            return ""  # "." or ". . ." over silence or noise: nothing was said
        if compression_ratio(text) > COMPRESSION_RATIO_THRESHOLD:
            return None  # a repetition loop: let the full window decide
        return text


def same_start(prompts: dict[int, list[int]], sot: int) -> list[list[int]]:
    """The prompts' keys grouped by where `sot` sits in the prompt (first-seen order kept)."""
    groups: dict[int, list[int]] = {}
    for i, prompt in prompts.items():
        groups.setdefault(prompt.index(sot), []).append(i)
    return list(groups.values())
