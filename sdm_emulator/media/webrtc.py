"""WebRTC media: an aiortc peer per session that streams test video until the session ends."""

from __future__ import annotations

import asyncio
import contextlib
from fractions import Fraction
import logging
import time

import aioice.ice
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription, VideoStreamTrack
import av
import numpy
from PIL import Image, ImageDraw, ImageFont

from ..config import DeviceSpec
from ..metrics import StreamRecord

_LOGGER = logging.getLogger(__name__)

WIDTH, HEIGHT, FPS = 640, 360, 15
CLOCK_RATE = 90_000
AUDIO_RATE = 48_000
AUDIO_FRAME = 960
"""Samples per audio frame (20 ms)."""

_host_addresses = aioice.ice.get_host_addresses


def _addresses_or_loopback(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    """The host's addresses; loopback when it has no other (aioice leaves loopback out)."""
    addresses = _host_addresses(use_ipv4=use_ipv4, use_ipv6=use_ipv6)
    return addresses or (["127.0.0.1"] if use_ipv4 else [])


# The emulator's peers only: a machine without a network interface still answers offers.
aioice.ice.get_host_addresses = _addresses_or_loopback


class TestPatternTrack(VideoStreamTrack):
    """Moving colour bars with the camera's name and a running clock burned in."""

    def __init__(self, name: str) -> None:
        """A track for camera `name`."""
        super().__init__()
        self._name = name
        self._font = ImageFont.load_default(size=28)
        self._first: float | None = None
        self._count = 0

    async def recv(self) -> av.VideoFrame:
        """The next frame, paced at FPS."""
        if self._first is None:
            self._first = time.monotonic()
        due = self._first + self._count / FPS
        if (wait := due - time.monotonic()) > 0:
            await asyncio.sleep(wait)
        image = Image.new("RGB", (WIDTH, HEIGHT))
        draw = ImageDraw.Draw(image)
        colours = ((192, 192, 192), (192, 192, 0), (0, 192, 192), (0, 192, 0), (192, 0, 192))
        shift = (self._count * 4) % WIDTH
        bar = WIDTH // len(colours)
        for index, colour in enumerate(colours * 2):
            left = index * bar - shift
            draw.rectangle((left, 0, left + bar, HEIGHT), fill=colour)
        draw.text(
            (12, 10),
            self._name,
            font=self._font,
            fill=(255, 255, 255),
            stroke_width=2,
            stroke_fill=(0, 0, 0),
        )
        draw.text(  # top right, as on the RTSP picture: the card's label covers the bottom
            (WIDTH - 150, 10),
            time.strftime("%H:%M:%S"),
            font=self._font,
            fill=(255, 255, 255),
            stroke_width=2,
            stroke_fill=(0, 0, 0),
        )
        frame: av.VideoFrame = av.VideoFrame.from_ndarray(numpy.asarray(image), format="rgb24")
        frame.pts = int(self._count * CLOCK_RATE / FPS)
        frame.time_base = Fraction(1, CLOCK_RATE)
        self._count += 1
        return frame


class TickTrack(MediaStreamTrack):
    """The camera's microphone: a 50 ms 880 Hz tick once a second (a gap is audible)."""

    kind = "audio"

    def __init__(self) -> None:
        """A track paced in real time."""
        super().__init__()
        self._first: float | None = None
        self._count = 0
        ramp = numpy.arange(AUDIO_RATE // 20) / AUDIO_RATE
        self._tick = (numpy.sin(2 * numpy.pi * 880 * ramp) * 8000).astype(numpy.int16)

    async def recv(self) -> av.AudioFrame:
        """The next 20 ms, paced (aiortc encodes it as Opus)."""
        if self._first is None:
            self._first = time.monotonic()
        due = self._first + self._count * AUDIO_FRAME / AUDIO_RATE
        if (wait := due - time.monotonic()) > 0:
            await asyncio.sleep(wait)
        start = (self._count * AUDIO_FRAME) % AUDIO_RATE
        samples = numpy.zeros(AUDIO_FRAME, dtype=numpy.int16)
        if start < len(self._tick):
            part = self._tick[start : start + AUDIO_FRAME]
            samples[: len(part)] = part
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = AUDIO_RATE
        frame.pts = self._count * AUDIO_FRAME
        frame.time_base = Fraction(1, AUDIO_RATE)
        self._count += 1
        return frame


class WebRtcPeers:
    """One aiortc peer per WebRTC session; each closes when its session ends."""

    def __init__(self) -> None:
        """No peers yet; they end by the emulator's real clock."""
        self._peers: dict[str, tuple[StreamRecord, RTCPeerConnection]] = {}
        self._reaper: asyncio.Task[None] | None = None

    async def answer(self, record: StreamRecord, device: DeviceSpec, offer: str) -> str:
        """Answer `offer` with a peer that streams until `record` ends."""
        peer = RTCPeerConnection()
        peer.addTrack(TickTrack())
        peer.addTrack(TestPatternTrack(device.name))
        await peer.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
        await peer.setLocalDescription(await peer.createAnswer())
        self._peers[record.stream_id] = (record, peer)
        if self._reaper is None:
            self._reaper = asyncio.create_task(self._reap())
        return peer.localDescription.sdp

    async def _reap(self) -> None:
        """Close the peers whose session ended (expired or stopped)."""
        while True:
            await asyncio.sleep(0.2)
            now = time.time()
            for stream_id, (record, peer) in list(self._peers.items()):
                if record.end() <= now:
                    del self._peers[stream_id]
                    _LOGGER.info("WebRTC session of %s ended", record.device_id)
                    await peer.close()

    async def close(self) -> None:
        """Close every peer."""
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        peers = [peer for _, peer in self._peers.values()]
        self._peers.clear()
        await asyncio.gather(*(peer.close() for peer in peers), return_exceptions=True)
