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
import numpy as np
import pytest

from custom_components.nest_streams.media import audio as audio_module
from custom_components.nest_streams.media.audio import OpusTranscoder
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
