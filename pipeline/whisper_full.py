"""Whisper decodes in the full 30 s window, several utterances in one CTranslate2 call.

The lines that do not fit the short window (`pipeline.whisper_short`), and those whose short
decode looked like a repetition loop, are decoded here. An utterance of up to 30 s is one
window: this module does what faster-whisper's `WhisperModel.transcribe` does for it with the
node's options (temperature 0 only, no timestamps, no previous-text conditioning, no VAD
filter, the context as initial prompt, the prefix), the same features, prompt, suppressed
tokens and no-speech rule, but for a batch of windows at once. The transcripts are the ones
`transcribe` gives for each utterance alone (tests/pipeline/test_stt_batched.py checks it on
real speech). Longer audio (several windows, each conditioned on the one before in
faster-whisper's loop) goes through `transcribe` itself, one utterance at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from pipeline.whisper_short import (
    LOG_PROB_THRESHOLD,
    NO_SPEECH_THRESHOLD,
    Utterance,
    same_start,
    token_budget,
)

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

MAX_INITIAL_TIMESTAMP_S = 1.0  # faster-whisper's default


class FullWindowDecoder:
    def __init__(self, model: WhisperModel, *, beam_size: int, language: str) -> None:
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_suppressed_tokens

        self._model = model
        self._beam_size = beam_size
        self._language = language
        self._tokenizer = Tokenizer(
            model.hf_tokenizer,
            model.model.is_multilingual,
            task="transcribe",
            language=language if model.model.is_multilingual else "en",
        )
        self._suppress = list(get_suppressed_tokens(self._tokenizer, [-1]) or [])
        self.last_calls: list[int] = []
        """The batch size of each model call the last `decode_batch` made."""

    def decode_batch(self, items: Sequence[Utterance]) -> list[str]:
        """The transcript of each item: those of one window decoded together, longer ones
        alone."""
        out: list[str] = [""] * len(items)
        windows: dict[int, npt.NDArray[np.float32]] = {}
        self.last_calls = []
        for i, item in enumerate(items):
            window = self._window(item.audio)
            if window is None:
                out[i] = self._transcribe(item)
                self.last_calls.append(1)
            else:
                windows[i] = window
        prompts = {i: self._prompt(items[i]) for i in windows}
        for group in same_start(prompts, self._tokenizer.sot):
            self.last_calls.append(len(group))
            features = np.stack([windows[i] for i in group])
            budgets = [len(prompts[i]) + token_budget(len(items[i].audio)) for i in group]
            results = self._generate(features, [prompts[i] for i in group], max(budgets))
            for i, result in zip(group, results, strict=True):
                out[i] = self._text(result)
        return out

    def _window(self, audio: npt.NDArray[np.float32]) -> npt.NDArray[np.float32] | None:
        """The 30 s window of mel features, as faster-whisper pads it; None: longer audio."""
        from faster_whisper.audio import pad_or_trim

        extractor = self._model.feature_extractor
        features = extractor(audio)
        content_frames = features.shape[-1] - 1
        if content_frames > extractor.nb_max_frames:
            return None
        return np.asarray(pad_or_trim(features[:, :content_frames]), dtype=np.float32)

    def _prompt(self, item: Utterance) -> list[int]:
        previous = self._tokenizer.encode(" " + item.context.strip()) if item.context else []
        prompt: list[int] = self._model.get_prompt(
            self._tokenizer,
            previous,
            without_timestamps=True,
            prefix=item.prefix or None,
        )
        return prompt

    def _generate(
        self, features: npt.NDArray[np.float32], prompts: list[list[int]], max_length: int
    ) -> list[Any]:
        """`max_length` (prompt included): a loop stops at the token budget, not at 448."""
        import ctranslate2

        encoded = self._model.model.encode(
            ctranslate2.StorageView.from_array(np.ascontiguousarray(features)), to_cpu=False
        )
        return list(
            self._model.model.generate(
                encoded,
                prompts,
                beam_size=self._beam_size,
                patience=1,
                length_penalty=1,
                repetition_penalty=1,
                no_repeat_ngram_size=0,
                max_length=min(self._model.max_length, max_length),
                return_scores=True,
                return_no_speech_prob=True,
                suppress_blank=True,
                suppress_tokens=self._suppress,
                max_initial_timestamp_index=int(
                    round(MAX_INITIAL_TIMESTAMP_S / self._model.time_precision)
                ),
            )
        )

    def _text(self, result: Any) -> str:
        tokens = result.sequences_ids[0]
        avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1)
        if result.no_speech_prob > NO_SPEECH_THRESHOLD and avg_logprob <= LOG_PROB_THRESHOLD:
            return ""  # faster-whisper skips the window as silence
        return str(self._tokenizer.decode(tokens)).strip()

    def _transcribe(self, item: Utterance) -> str:
        segments, _ = self._model.transcribe(
            item.audio,
            language=self._language,
            beam_size=self._beam_size,
            temperature=0.0,
            without_timestamps=True,
            condition_on_previous_text=False,
            vad_filter=False,
            prefix=item.prefix or None,
            initial_prompt=item.context or None,
        )
        return " ".join(seg.text.strip() for seg in segments).strip()
