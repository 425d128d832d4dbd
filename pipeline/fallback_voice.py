"""The agent's fallback line, synthesized ahead: said the moment a call action or tool fails
(`pipeline/actions.py`), so that a failure is never dead air."""

from __future__ import annotations

import asyncio

import numpy as np
import numpy.typing as npt

from pipeline.response import Synthesizer
from pipeline.tts import ClauseSplitter

__all__ = ["FallbackVoice"]


class FallbackVoice:
    """The agent's fallback line, synthesized once per call and kept (`prepare`), served to the
    reply that speaks it as a `Synthesizer` (any other text goes to the real TTS)."""

    def __init__(self, tts: Synthesizer, voice: str, line: str) -> None:
        self._tts = tts
        self._voice = voice
        self.line = line
        self._clauses: dict[str, asyncio.Future[npt.NDArray[np.int16]]] = {}

    def prepare(self) -> None:
        """Start synthesizing the line's clauses (the reply will split it the same way)."""
        if self._clauses or not self.line.strip():
            return
        splitter = ClauseSplitter()
        for clause in [*splitter.push(self.line + " "), *splitter.flush()]:
            fut = asyncio.ensure_future(self._tts.synthesize(clause, self._voice))
            fut.add_done_callback(_retrieve)  # a failed synthesis is redone when needed
            self._clauses[clause] = fut

    async def synthesize(self, text: str, voice: str = "") -> npt.NDArray[np.int16]:
        fut = self._clauses.get(text)
        if fut is None or fut.cancelled() or (fut.done() and fut.exception() is not None):
            return await self._tts.synthesize(text, voice or self._voice)
        return await asyncio.shield(fut)  # the reply cancels its syntheses: keep ours

    def close(self) -> None:
        for fut in self._clauses.values():
            fut.cancel()


def _retrieve(fut: asyncio.Future[npt.NDArray[np.int16]]) -> None:
    if not fut.cancelled():
        fut.exception()
