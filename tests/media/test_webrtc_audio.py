"""WebRTC audio at the edge, without a network: conversion, buffers, pacing."""

from __future__ import annotations

import asyncio
import fractions

import av
import numpy as np
import pytest
from prometheus_client import REGISTRY

from media.clock import VirtualClock
from media.frames import FRAME_SAMPLES, AudioFrame
from media.webrtc_audio import InboundAudio, OutboundAudio, mono_s16


def av_frame(samples: np.ndarray, fmt: str, layout: str, rate: int) -> av.AudioFrame:  # type: ignore[type-arg]
    frame = av.AudioFrame.from_ndarray(samples, format=fmt, layout=layout)
    frame.sample_rate = rate
    frame.time_base = fractions.Fraction(1, rate)
    return frame


def counter(name: str, direction: str) -> float:
    return REGISTRY.get_sample_value(name, {"direction": direction}) or 0.0


def test_mono_s16_mixes_packed_and_planar_stereo() -> None:
    left = np.full(960, 1000, dtype=np.int16)
    right = np.full(960, 3000, dtype=np.int16)
    packed = np.stack([left, right], axis=1).reshape(1, -1)
    assert np.all(mono_s16(av_frame(packed, "s16", "stereo", 48000)) == 2000)
    planar = np.stack([left, right])
    assert np.all(mono_s16(av_frame(planar, "s16p", "stereo", 48000)) == 2000)
    mono = np.arange(160, dtype=np.int16).reshape(1, -1)
    assert np.array_equal(mono_s16(av_frame(mono, "s16", "mono", 8000)), mono[0])


def test_mono_s16_rejects_other_formats() -> None:
    frame = av_frame(np.zeros((1, 960), dtype=np.float32), "flt", "mono", 48000)
    with pytest.raises(ValueError, match="'flt'"):
        mono_s16(frame)


@pytest.mark.parametrize("rate", [48000, 8000, 16000])
async def test_inbound_resamples_to_16k_20ms_frames(rate: int) -> None:
    inbound = InboundAudio(max_frames=1000)
    per_frame = rate // 50
    t = np.arange(per_frame * 50) / rate
    tone = (np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16)
    for start in range(0, len(tone), per_frame):
        inbound.push(tone[start : start + per_frame], rate)
    inbound.end()
    frames = [f async for f in inbound.frames()]
    # one second in; the resampler may hold back a few milliseconds
    assert 48 <= len(frames) <= 50
    assert [f.seq for f in frames] == list(range(len(frames)))
    level = np.sqrt(np.mean(np.concatenate([f.samples for f in frames[5:]]).astype(float) ** 2))
    assert 5000 < level < 6500  # a 8000-peak sine keeps its level


@pytest.mark.parametrize("rate", [48000, 8000])
async def test_each_packet_is_a_frame_as_soon_as_it_is_pushed(rate: int) -> None:
    inbound = InboundAudio(max_frames=1000)
    per_frame = rate // 50
    for k in range(10):  # nothing of a packet waits for the next one, the first included
        inbound.push(np.full(per_frame, 1000 * k, dtype=np.int16), rate)
        assert len(inbound._frames) == k + 1


async def test_inbound_buffer_drops_the_oldest_when_full() -> None:
    inbound = InboundAudio(max_frames=3)
    before = counter("voicenode_webrtc_frames_dropped_total", "in")
    for k in range(5):
        inbound.push(np.full(FRAME_SAMPLES, k, dtype=np.int16), 16000)
    assert counter("voicenode_webrtc_frames_dropped_total", "in") == before + 2
    inbound.end()
    frames = [f async for f in inbound.frames()]
    assert [int(f.samples[0]) for f in frames] == [2, 3, 4]


async def test_inbound_iterator_waits_for_frames_and_ends_on_end() -> None:
    inbound = InboundAudio(max_frames=10)
    got: list[AudioFrame] = []

    async def consume() -> None:
        async for frame in inbound.frames():
            got.append(frame)

    task = asyncio.create_task(consume())
    inbound.push(np.zeros(FRAME_SAMPLES + 100, dtype=np.int16), 16000)
    inbound.push(np.zeros(FRAME_SAMPLES - 100, dtype=np.int16), 16000)
    inbound.end()
    await asyncio.wait_for(task, 1)
    assert len(got) == 2


async def test_outbound_write_waits_while_full_and_clear_drops_at_once() -> None:
    out = OutboundAudio(max_frames=2, clock=VirtualClock())
    await out.write(AudioFrame.silence(0))
    await out.write(AudioFrame.silence(1))
    blocked = asyncio.create_task(out.write(AudioFrame.silence(2)))
    await asyncio.sleep(0)
    assert not blocked.done() and out.buffered == 2
    assert out.clear() == 2
    await asyncio.wait_for(blocked, 1)
    assert out.buffered == 1 and out.played_until == 0


async def test_outbound_close_releases_writers_and_discards_later_writes() -> None:
    out = OutboundAudio(max_frames=1, clock=VirtualClock())
    await out.write(AudioFrame.silence(0))
    blocked = asyncio.create_task(out.write(AudioFrame.silence(1)))
    await asyncio.sleep(0)
    out.close()
    await asyncio.wait_for(blocked, 1)
    await out.write(AudioFrame.silence(2))
    assert out.buffered == 0
    assert out.track.readyState == "ended"


async def test_track_paces_20ms_frames_and_counts_played_agent_frames() -> None:
    clock = VirtualClock()
    out = OutboundAudio(max_frames=10, clock=clock)
    loud = AudioFrame.from_samples(np.full(FRAME_SAMPLES, 1234, dtype=np.int16))
    await out.write(loud)
    await out.write(loud)

    first = await out.track.recv()  # the first frame goes at once
    assert first.sample_rate == 16000 and first.samples == FRAME_SAMPLES and first.pts == 0
    assert int(first.to_ndarray()[0, 0]) == 1234
    assert out.played_until == 1

    second = asyncio.create_task(out.track.recv())
    await clock.advance(0.019)
    assert not second.done()
    await clock.advance(0.001)
    frame = await asyncio.wait_for(second, 1)
    assert frame.pts == FRAME_SAMPLES and out.played_until == 2

    third = asyncio.create_task(out.track.recv())
    await clock.advance(0.02)
    silence = await asyncio.wait_for(third, 1)
    assert not silence.to_ndarray().any()  # nothing queued: silence, not counted as played
    assert out.played_until == 2


@pytest.mark.parametrize(("rate", "channels"), [(48000, 2), (8000, 1)])
async def test_track_hands_the_encoder_frames_in_its_own_format(rate: int, channels: int) -> None:
    clock = VirtualClock()
    out = OutboundAudio(max_frames=10, clock=clock)
    out.track.encode_as(rate, channels)
    assert (out.track.rate, out.track.channels) == (rate, channels)
    loud = AudioFrame.from_samples(np.full(FRAME_SAMPLES, 8000, dtype=np.int16))
    await out.write(AudioFrame.silence())
    await out.write(loud)
    first = await out.track.recv()
    second = asyncio.create_task(out.track.recv())
    await clock.advance(0.02)
    frame = await asyncio.wait_for(second, 1)
    per_frame = rate // 50
    assert (first.sample_rate, first.samples, len(first.layout.channels)) == (
        rate,
        per_frame,
        channels,
    )
    assert frame.pts == per_frame and out.played_until == 2
    samples = frame.to_ndarray().reshape(-1)
    assert np.mean(np.abs(samples) > 4000) > 0.75  # the loud frame is in its own frame
    out.close()


async def test_track_counts_late_frames_and_resyncs_after_a_stall() -> None:
    clock = VirtualClock()
    out = OutboundAudio(max_frames=10, clock=clock)
    await out.track.recv()
    before = counter("voicenode_webrtc_frames_late_total", "out")
    await clock.advance(1.0)  # the loop stalled for a second
    await asyncio.wait_for(out.track.recv(), 1)
    assert counter("voicenode_webrtc_frames_late_total", "out") == before + 1
    # after the resync the next frame is due one period later, not at once
    nxt = asyncio.create_task(out.track.recv())
    await clock.advance(0.01)
    assert not nxt.done()
    await clock.advance(0.01)
    await asyncio.wait_for(nxt, 1)
    out.close()
