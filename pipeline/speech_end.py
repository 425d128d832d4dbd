"""Where the caller's speech really ended, for the turn's `speech_end` mark (sans-IO).

The VAD's last voiced frame comes after the last sound: Silero scores 32 ms windows and its
probability stays over the silence threshold for a frame or a few after the voice has died
away (on the wire bench's receptionist lines, 15-115 ms after the last sample louder than
-40 dBFS, about 55 ms on average). The turn detector counts its window from that frame, which
is its rule and stays; but a mark at that frame would leave the VAD's tail out of the node's
own voice to voice, which the caller waits through like any other stage. `audible_end` moves
the mark back to the end of the last audible 5 ms window inside the VAD's last stretch, so the
node's marks and a caller's measurement (the wire bench: last speech sample sent -> first
agent speech received) start from the same instant.

Times follow the node's frame clock: a frame is stamped when it arrives, which is when its
last sample was captured (a real-time sender sends a frame once its 20 ms are in).
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from media.frames import SAMPLE_RATE

WINDOW: Final = 80
"""Samples per loudness window (5 ms)."""
AUDIBLE_DBFS: Final = -40.0
"""A window this loud (RMS, dB re full scale) is sound: the wire bench's speech threshold."""
LOOKBACK_S: Final = 0.2
"""How far before the VAD's end the sound's end is looked for: longer than the VAD's tail,
short enough that a soft last word (all under the threshold) keeps the VAD's end."""

_THRESHOLD: Final = 32768.0 * 10.0 ** (AUDIBLE_DBFS / 20.0)


def audible_end(audio: npt.NDArray[np.int16], last_at: float, vad_end: float) -> float:
    """The time the last audible window before `vad_end` ends: `audio` is the utterance's
    16 kHz samples, its last sample heard at `last_at`; the VAD said speech went on until
    `vad_end` (<= `last_at`). Never later than `vad_end`, never more than `LOOKBACK_S` earlier;
    `vad_end` itself when no window in that stretch is audible (a soft voice, a quiet line)."""
    n = len(audio)
    if n == 0 or vad_end > last_at:
        return vad_end
    stop = n - int(round((last_at - vad_end) * SAMPLE_RATE))  # samples up to vad_end
    start = max(0, stop - int(LOOKBACK_S * SAMPLE_RATE))
    start = stop - (stop - start) // WINDOW * WINDOW  # whole windows ending at `stop`
    if stop - start < WINDOW:
        return vad_end
    x = audio[start:stop].astype(np.float64).reshape(-1, WINDOW)
    loud = np.flatnonzero(np.sqrt(np.mean(np.square(x), axis=1)) >= _THRESHOLD)
    if len(loud) == 0:
        return vad_end
    end = start + (int(loud[-1]) + 1) * WINDOW
    return min(vad_end, last_at - (n - end) / SAMPLE_RATE)
