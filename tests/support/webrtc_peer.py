"""A browser-like WebRTC peer for tests (aiortc): sends an utterance, records what comes back,
and collects the JSON messages on its `events` data channel. ICE stays on loopback."""

from __future__ import annotations

import asyncio
import fractions
import json
import shutil
import subprocess
import time
import wave
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt
from aiortc import (
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from media.frames import FRAME_SAMPLES, SAMPLE_RATE
from media.resample import resample
from media.webrtc_sdp import LOOPBACK, ice_host_addresses, is_loopback, keep_candidates

__all__ = ["LOOPBACK", "TestPeer", "UtteranceTrack", "read_wav_16k", "speech_wav"]


def speech_wav(path: Path, text: str) -> Path:
    """Render `text` with espeak-ng into a WAV file."""
    espeak = shutil.which("espeak-ng")
    assert espeak, "espeak-ng is not installed (make system-packages)"
    subprocess.run([espeak, "-w", str(path), text], check=True, timeout=60)
    return path


def read_wav_16k(path: Path) -> npt.NDArray[np.int16]:
    with wave.open(str(path), "rb") as w:
        assert w.getsampwidth() == 2 and w.getnchannels() == 1
        rate = w.getframerate()
        samples = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.int16)
    return resample(samples, rate, SAMPLE_RATE)


class UtteranceTrack(MediaStreamTrack):
    """A microphone: `samples` (16 kHz) paced at 20 ms a frame, then silence until `say()`
    queues more. `finished` is set while it is sending silence."""

    kind = "audio"

    def __init__(self, samples: npt.NDArray[np.int16]) -> None:
        super().__init__()
        self._samples = np.zeros(0, dtype=np.int16)
        self._pos = 0
        self._sent = 0
        self._start: float | None = None
        self.finished = asyncio.Event()
        self.say(samples)

    def say(self, samples: npt.NDArray[np.int16]) -> None:
        """Speak `samples` after what is still queued."""
        pad = (-len(samples)) % FRAME_SAMPLES
        rest = self._samples[self._pos :]
        self._samples = np.concatenate([rest, samples, np.zeros(pad, dtype=np.int16)])
        self._pos = 0
        if len(self._samples):
            self.finished.clear()

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        await asyncio.sleep(max(0.0, self._start + self._sent * 0.02 - time.monotonic()))
        chunk = self._samples[self._pos : self._pos + FRAME_SAMPLES]
        if len(chunk) < FRAME_SAMPLES:
            self.finished.set()
            chunk = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        else:
            self._pos += FRAME_SAMPLES
        frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self._sent * FRAME_SAMPLES
        frame.time_base = fractions.Fraction(1, SAMPLE_RATE)
        self._sent += 1
        return frame


class TestPeer:
    """The caller's side of a WebRTC call."""

    __test__ = False

    def __init__(self, samples: npt.NDArray[np.int16], codecs: tuple[str, ...] = ()) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.mic = UtteranceTrack(samples)
        transceiver = self.pc.addTransceiver(self.mic, direction="sendrecv")
        if codecs:
            caps = RTCRtpSender.getCapabilities("audio").codecs
            transceiver.setCodecPreferences([c for c in caps if c.mimeType in codecs])
        self.channel = self.pc.createDataChannel("events")
        self.messages: list[dict[str, Any]] = []
        self._message = asyncio.Event()
        self.channel.on("message", self._on_message)
        self.channel_open = asyncio.Event()
        self.channel.on("open", self.channel_open.set)
        self.received: list[npt.NDArray[np.int16]] = []
        self._audio = asyncio.Event()
        self.connection_states: list[str] = []
        self._state = asyncio.Event()
        self.pc.on("connectionstatechange", self._on_state)
        self._tasks: set[asyncio.Task[None]] = set()

    def _on_message(self, message: str | bytes) -> None:
        self.messages.append(json.loads(message))
        self._message.set()

    def _on_state(self) -> None:
        self.connection_states.append(self.pc.connectionState)
        self._state.set()

    async def offer(self) -> dict[str, str]:
        with ice_host_addresses(LOOPBACK):  # setLocalDescription gathers
            await self.pc.setLocalDescription(await self.pc.createOffer())
        return {"sdp": self.pc.localDescription.sdp, "type": "offer"}

    async def accept(self, answer_sdp: str) -> None:
        answer_sdp = keep_candidates(answer_sdp, is_loopback)
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer_sdp, type="answer"))
        for transceiver in self.pc.getTransceivers():
            track = transceiver.receiver.track
            if track is not None:
                task = asyncio.get_running_loop().create_task(self._record(track))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _record(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            assert isinstance(frame, av.AudioFrame)
            data = frame.to_ndarray().reshape(-1, len(frame.layout.channels))[:, 0]
            self.received.append(resample(data.astype(np.int16), frame.sample_rate, SAMPLE_RATE))
            self._audio.set()

    def audio(self) -> npt.NDArray[np.int16]:
        if not self.received:
            return np.zeros(0, dtype=np.int16)
        return np.concatenate(self.received)

    async def wait_message(self, predicate: Any, limit_s: float = 10.0) -> dict[str, Any]:
        async with asyncio.timeout(limit_s):
            while True:
                for msg in self.messages:
                    if predicate(msg):
                        return msg
                self._message.clear()
                await self._message.wait()

    async def wait_state(self, *states: str, limit_s: float = 10.0) -> str:
        async with asyncio.timeout(limit_s):
            while True:
                if self.pc.connectionState in states:
                    return self.pc.connectionState
                self._state.clear()
                await self._state.wait()

    async def wait_audio(self, predicate: Any, limit_s: float = 10.0) -> None:
        async with asyncio.timeout(limit_s):
            while not predicate(self.audio()):
                self._audio.clear()
                await self._audio.wait()

    async def close(self) -> None:
        await self.pc.close()
        self.mic.stop()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks))
