"""Pictures of the feed: still images from its newest key frame, and an MJPEG stream.

A still decodes only the key frame the feed holds (a few milliseconds, in the executor), once
per key frame: the dashboard's cards ask every 10 s, a key frame comes every few seconds. So a
still is never older than the camera's GOP, and never from an earlier session (the feed drops
its GOP when its session ends).

The MJPEG stream (for clients without WebRTC: the frontend falls back to it) needs every
frame decoded: one `FrameDecoder` per camera decodes in a thread of its own while MJPEG
clients watch, and each client takes the newest frame as JPEG at its own pace (encoded once
per frame, whoever asks).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import contextlib
import io
import logging
import queue
import threading
from typing import Any

import av
from PIL import Image

from .feed import CameraFeed

_LOGGER = logging.getLogger(__name__)

JPEG_QUALITY = 80
MAX_PENDING = 90
"""Video packets waiting for the decoder (6 s at 15 fps); beyond, it skips to a key frame."""


def _decoder(extradata: bytes | None = None) -> Any:
    decoder: Any = av.CodecContext.create("h264", "r")
    if extradata:
        decoder.extradata = extradata
    return decoder


def jpeg(image: Image.Image, width: int | None = None, height: int | None = None) -> bytes:
    """`image` as JPEG, scaled down to fit `width` x `height` when given."""
    if width or height:
        image = image.copy()
        image.thumbnail((width or image.width, height or image.height))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=JPEG_QUALITY)
    return out.getvalue()


def decode_key_frame(packet: av.Packet[Any]) -> Image.Image | None:
    """The picture of a key frame (which carries its parameter sets)."""
    decoder = _decoder()
    try:
        frames = [*decoder.decode(av.Packet(bytes(packet))), *decoder.decode(None)]
    except av.FFmpegError as err:
        _LOGGER.debug("a key frame could not be decoded: %s", err)
        return None
    return frames[0].to_image() if frames else None


class Stills:
    """Still images of one feed: its newest key frame, decoded once."""

    def __init__(self, feed: CameraFeed) -> None:
        """Stills of `feed`."""
        self._feed = feed
        self._packet: av.Packet[Any] | None = None
        self._image: Image.Image | None = None
        self.decoded = 0

    async def image(self, width: int | None, height: int | None, wait: float) -> bytes | None:
        """A JPEG of the newest key frame, waiting up to `wait` s for one; None if none."""
        packet = await self._feed.key_frame(wait)
        if packet is None:
            return None
        loop = asyncio.get_running_loop()
        if packet is not self._packet:
            image = await loop.run_in_executor(None, decode_key_frame, packet)
            if image is None:
                return None
            self._packet, self._image = packet, image
            self.decoded += 1
        assert self._image is not None
        return await loop.run_in_executor(None, jpeg, self._image, width, height)


class FrameDecoder:
    """Every frame of a feed decoded in a thread, while it has clients (MJPEG)."""

    def __init__(self, feed: CameraFeed, on_idle: Callable[[FrameDecoder], None]) -> None:
        """Decode `feed`; `on_idle(self)` when the last client left."""
        self._feed = feed
        self._on_idle = on_idle
        self._clients = 0
        self._packets: queue.Queue[av.Packet[Any] | None] = queue.Queue(MAX_PENDING)
        self._need_key = True
        self._lock = threading.Lock()
        self._frame: av.VideoFrame | None = None
        self._frame_id = 0
        self._jpeg: tuple[int, bytes] | None = None
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()
        self.ended = asyncio.Event()

    # the feed's consumer interface
    def on_video(self, packet: av.Packet[Any]) -> None:
        """A packet of the feed: queued for the decoder (skipping to a key frame when full)."""
        if self._need_key and not packet.is_keyframe:
            return
        try:
            self._packets.put_nowait(packet)
            self._need_key = False
        except queue.Full:
            self._need_key = True

    def on_audio(self, packet: av.Packet[Any]) -> None:
        """Sound is not shown."""

    def on_end(self, reason: str) -> None:
        """The feed closed."""
        self.ended.set()
        self._stop()

    def add_client(self) -> None:
        """One more MJPEG client; the first starts decoding."""
        self._clients += 1
        if self._thread is None:
            self._packets = queue.Queue(MAX_PENDING)
            self._stopped = threading.Event()
            self._need_key = True
            self._thread = threading.Thread(
                target=self._run,
                args=(self._packets, self._stopped),
                name="nest_streams_mjpeg",
                daemon=True,
            )
            self._thread.start()
            for packet in self._feed.gop():
                self.on_video(packet)
            self._feed.subscribe(self)

    def remove_client(self) -> None:
        """A client left; the last one stops decoding."""
        self._clients -= 1
        if self._clients <= 0:
            self._feed.unsubscribe(self)
            self._stop()
            self._on_idle(self)

    def _stop(self) -> None:
        self._stopped.set()
        with contextlib.suppress(queue.Full):
            self._packets.put_nowait(None)
        self._thread = None

    def latest(self) -> bytes | None:
        """The newest frame as JPEG (encoded once per frame; call in the executor)."""
        with self._lock:
            frame, frame_id = self._frame, self._frame_id
            cached = self._jpeg
        if frame is None:
            return None
        if cached is not None and cached[0] == frame_id:
            return cached[1]
        data = jpeg(frame.to_image())  # type: ignore[no-untyped-call]
        with self._lock:
            self._jpeg = (frame_id, data)
        return data

    def _run(self, packets: queue.Queue[av.Packet[Any] | None], stopped: threading.Event) -> None:
        decoder = _decoder()
        while (packet := packets.get()) is not None and not stopped.is_set():
            try:
                frames = decoder.decode(packet)
            except av.FFmpegError as err:
                _LOGGER.debug("a frame could not be decoded: %s", err)
                continue
            if frames:
                with self._lock:
                    self._frame = frames[-1]
                    self._frame_id += 1
