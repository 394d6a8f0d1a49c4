"""The camera's sound as Opus: transcoded once; its thread ends when it stops."""

from __future__ import annotations

import asyncio
import contextlib
from fractions import Fraction
import logging
import os
from pathlib import Path
import threading
from typing import Any

import av
from av.audio.resampler import AudioResampler
import numpy as np
import pytest

from custom_components.nest_streams.media import audio as audio_module
from custom_components.nest_streams.media.audio import OpusTranscoder
from custom_components.nest_streams.media.hub import CameraMedia
from custom_components.nest_streams.media.session import AudioFormat

RATE = 16_000


def _aac(seconds: float) -> tuple[bytes, list[av.Packet[Any]]]:
    """AAC packets of silence as a camera's session would give them (and the extradata)."""
    encoder: Any = av.CodecContext.create("aac", "w")
    encoder.sample_rate = RATE
    encoder.layout = "mono"
    encoder.format = "fltp"
    encoder.time_base = Fraction(1, RATE)
    packets: list[av.Packet[Any]] = []
    for index in range(int(seconds * RATE / 1024)):
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, 1024), dtype=np.float32), format="fltp", layout="mono"
        )
        frame.sample_rate = RATE
        frame.pts = index * 1024
        packets.extend(encoder.encode(frame))
    for packet in packets:
        packet.time_base = Fraction(1, RATE)
    return bytes(encoder.extradata or b""), packets


def _threads(prefix: str) -> int:
    """Threads of this process whose name starts with `prefix` (FFmpeg's workers inherit
    the name of the thread that started them)."""
    count = 0
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        with contextlib.suppress(OSError):  # a thread that ended meanwhile
            count += (task / "comm").read_text().startswith(prefix)
    return count


async def test_the_sound_is_opus_and_its_thread_ends_with_it() -> None:
    extradata, packets = _aac(2.0)
    audio = AudioFormat("aac", RATE, 1, extradata)
    transcoder = OpusTranscoder(lambda: audio)
    received: list[av.Packet[Any]] = []
    transcoder.add_listener(received.append)
    for packet in packets:
        transcoder.on_audio(packet)
    for _ in range(100):
        if len(received) >= 90:
            break
        await asyncio.sleep(0.05)
    assert len(received) >= 90  # 20 ms Opus packets for about 2 s of sound
    first, second = received[0].pts, received[1].pts
    assert first is not None
    assert second is not None
    assert second - first == 960
    assert _threads("nest_streams_au") >= 1
    transcoder.stop()
    for _ in range(100):
        if not any(t.name == "nest_streams_audio" for t in threading.enumerate()):
            break
        await asyncio.sleep(0.05)
    assert not any(t.name == "nest_streams_audio" for t in threading.enumerate())
    assert transcoder.stopped


async def test_a_transcoder_that_falls_behind_drops_new_sound_and_says_so_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Past `MAX_PENDING` waiting packets, new ones are dropped and counted; logged once."""
    caplog.set_level(logging.DEBUG, logger=audio_module.__name__)
    transcoder = OpusTranscoder(lambda: None)
    transcoder._thread = threading.Thread()  # stands for a thread that stopped reading
    for _ in range(audio_module.MAX_PENDING + 3):
        transcoder.on_audio(av.Packet(b"a"))
    assert transcoder.dropped == 3
    behind = [m for m in caplog.messages if "behind" in m]
    assert behind == [f"the sound's transcoder is {audio_module.MAX_PENDING} packets behind"]


async def _received(received: list[av.Packet[Any]], count: int) -> None:
    for _ in range(100):
        if len(received) >= count:
            return
        await asyncio.sleep(0.05)


async def test_a_packet_that_cannot_be_transcoded_is_skipped_and_said_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Packets the decoder refuses are skipped (counted, logged once per run of them); the
    sound goes on with the next good packet."""
    caplog.set_level(logging.DEBUG, logger=audio_module.__name__)
    extradata, packets = _aac(2.0)
    transcoder = OpusTranscoder(lambda: AudioFormat("aac", RATE, 1, extradata))
    received: list[av.Packet[Any]] = []
    transcoder.add_listener(received.append)
    half = len(packets) // 2
    for packet in packets[:half]:
        transcoder.on_audio(packet)
    for _ in range(2):
        broken = av.Packet(b"\xff" * 40)
        broken.pts, broken.time_base = packets[half].pts, packets[half].time_base
        transcoder.on_audio(broken)
    for packet in packets[half:]:
        transcoder.on_audio(packet)
    await _received(received, 90)
    transcoder.stop()
    assert transcoder.refused == 2
    assert len(received) >= 90  # the whole 2 s of sound, less what the broken ones cost
    said = [m for m in caplog.messages if "could not be transcoded" in m]
    assert len(said) == 1


class _ChangingResampler:
    """A resampler whose first instance refuses its fifth frame, as PyAV's does when the
    decoder's output changes (`Frame does not match AudioResampler setup.`)."""

    made = 0

    def __init__(self, **options: Any) -> None:
        type(self).made += 1
        self._first = type(self).made == 1
        self._calls = 0
        self._real = AudioResampler(**options)

    def resample(self, frame: av.AudioFrame) -> list[av.AudioFrame]:
        self._calls += 1
        if self._first and self._calls >= 5:
            raise ValueError("Frame does not match AudioResampler setup.")
        return self._real.resample(frame)


async def test_a_changed_sound_is_resampled_anew(monkeypatch: pytest.MonkeyPatch) -> None:
    """A frame the resampler refuses (the decoder's output changed) gets a new resampler: no
    packet is lost, the sound goes on."""
    monkeypatch.setattr(audio_module, "AudioResampler", _ChangingResampler)
    monkeypatch.setattr(_ChangingResampler, "made", 0)
    extradata, packets = _aac(2.0)
    transcoder = OpusTranscoder(lambda: AudioFormat("aac", RATE, 1, extradata))
    received: list[av.Packet[Any]] = []
    transcoder.add_listener(received.append)
    for packet in packets:
        transcoder.on_audio(packet)
    await _received(received, 90)
    transcoder.stop()
    assert _ChangingResampler.made == 2
    assert transcoder.refused == 0
    assert len(received) >= 90


async def test_a_transcoder_whose_thread_ended_says_it_stopped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Should the thread end on an error nobody foresaw (logged by the thread's excepthook,
    HA's logs it), the transcoder says it stopped."""
    ended: list[type[BaseException] | None] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: ended.append(args.exc_type))

    def broken_fifo() -> None:
        raise RuntimeError("unforeseen")

    monkeypatch.setattr(audio_module, "AudioFifo", broken_fifo)
    extradata, packets = _aac(0.5)
    transcoder = OpusTranscoder(lambda: AudioFormat("aac", RATE, 1, extradata))
    transcoder.on_audio(packets[0])
    for _ in range(100):
        if transcoder.stopped:
            break
        await asyncio.sleep(0.02)
    assert transcoder.stopped
    assert ended == [RuntimeError]


async def test_the_next_viewer_gets_a_new_transcoder_when_the_last_stopped() -> None:
    """A stopped transcoder (its thread ended) is replaced for the camera's next viewer and
    leaves the feed."""
    media = CameraMedia("cam", ca_file=None)
    transcoder = media._audio()
    assert media._audio() is transcoder  # kept while it runs
    assert media.feed.consumers == 1
    transcoder.stop()
    replacement = media._audio()
    assert replacement is not transcoder
    assert media.feed.consumers == 1  # the new one only
    await media.close("test")
