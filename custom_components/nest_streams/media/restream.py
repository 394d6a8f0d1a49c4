"""One camera's feed as MPEG-TS for a recorder (an NVR): the camera's packets, not re-encoded.

A `TsReader` is one consumer of the camera's `CameraFeed`, so a reader costs no Google
session and no command: it muxes the feed's H.264 and AAC packets as they come (FFmpeg's
MPEG-TS muxer through PyAV) into chunks an HTTP response sends on.

- It starts at the feed's current GOP (a key frame with its parameter sets), so a recorder
  gets a picture at once.
- The feed's one clock continues across token switches and reconnects, so the stream's time
  stamps never go back; while Google holds no stream the reader simply gets nothing (a pause,
  not an end).
- A reader that does not take its chunks (more than `MAX_BUFFERED` bytes waiting) is ended:
  its recorder reconnects to the same URL, and HA does not hold an unbounded buffer.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from fractions import Fraction
import io
from typing import Any

import av
from av.container import OutputContainer

from .feed import CameraFeed
from .session import AudioFormat
from .timeline import VIDEO_CLOCK

MAX_BUFFERED = 8 * 1024 * 1024
"""Bytes a reader may leave unread (about 30 s of a 2 Mbit/s camera) before it is ended."""
MUXER_OPTIONS = {"flush_packets": "1", "max_interleave_delta": "500000"}
"""Hand each muxed packet on at once; wait at most 0.5 s for the other stream's packets."""
CONTENT_TYPE = "video/mp2t"


class TsReader:
    """One recorder's MPEG-TS of the camera's feed (see the module)."""

    def __init__(self, feed: CameraFeed, *, max_buffered: int = MAX_BUFFERED) -> None:
        """Read `feed` from its current GOP on."""
        self._feed = feed
        self._max_buffered = max_buffered
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._ready = asyncio.Event()
        self._pending = bytearray()
        self._muxer: OutputContainer | None = None
        self._video: Any = None
        self._audio: Any = None
        self.ended: str | None = None
        """Why the reader ended (None while it reads)."""
        self.packets = 0
        """Packets muxed so far."""
        for packet in feed.gop():
            self.on_video(packet)
        feed.subscribe(self)

    # -- what the feed gives -------------------------------------------------------------------

    def on_video(self, packet: av.Packet[Any]) -> None:
        """A video access unit; the stream starts at a key frame."""
        if self.ended is not None:
            return
        if self._muxer is None:
            if not packet.is_keyframe:
                return
            self._open(self._feed.audio_format)
        self._mux(packet, self._video)

    def on_audio(self, packet: av.Packet[Any]) -> None:
        """An AAC packet (dropped before the first key frame and without an audio stream)."""
        if self.ended is None and self._audio is not None:
            self._mux(packet, self._audio)

    def on_end(self, reason: str) -> None:
        """The feed closed for good."""
        self._end(reason)

    # -- what the HTTP response takes --------------------------------------------------------

    async def chunks(self) -> AsyncIterator[bytes]:
        """The stream's bytes as they are muxed, until the reader ends."""
        while True:
            while self._chunks:
                chunk = self._chunks.popleft()
                self._buffered -= len(chunk)
                yield chunk
            if self.ended is not None:
                return
            self._ready.clear()
            await self._ready.wait()

    def close(self, reason: str = "the reader left") -> None:
        """Stop reading (the response ended or the reader is turned away)."""
        self._end(reason)

    # -- muxing ------------------------------------------------------------------------------

    def write(self, data: bytes) -> int:
        """The muxer's output (PyAV calls this as a file's `write`)."""
        self._pending += data
        return len(data)

    def _open(self, audio: AudioFormat | None) -> None:
        muxer = av.open(self, "w", format="mpegts", options=MUXER_OPTIONS)
        # Streams made from templates are not opened as encoders: the packets are muxed as
        # they are. The templates' container only lends its codecs' parameters.
        with av.open(io.BytesIO(), "w", format="mpegts") as templates:
            self._video = muxer.add_stream_from_template(templates.add_stream("h264"))
            self._video.time_base = VIDEO_CLOCK
            if audio is not None and audio.codec == "aac":
                self._audio = muxer.add_stream_from_template(
                    templates.add_stream("aac", rate=audio.sample_rate)
                )
                context = self._audio.codec_context
                context.sample_rate = audio.sample_rate
                context.layout = "mono" if audio.channels == 1 else "stereo"
                context.extradata = audio.extradata  # the camera's AudioSpecificConfig
                self._audio.time_base = Fraction(1, audio.sample_rate)
        self._muxer = muxer

    def _mux(self, source: av.Packet[Any], stream: Any) -> None:
        # A copy: the muxer re-stamps a packet in place, and the feed's packets are shared.
        packet: av.Packet[Any] = av.Packet(bytes(source))
        packet.pts, packet.dts, packet.time_base = source.pts, source.dts, source.time_base
        packet.is_keyframe = source.is_keyframe
        packet.stream = stream
        assert self._muxer is not None
        try:
            self._muxer.mux(packet)
        except av.FFmpegError as err:
            self._end(f"the stream could not be muxed: {err.strerror}")
            return
        self.packets += 1
        if self._pending:
            chunk, self._pending = bytes(self._pending), bytearray()
            self._chunks.append(chunk)
            self._buffered += len(chunk)
            self._ready.set()
            if self._buffered > self._max_buffered:
                self._chunks.clear()  # what it did not take is dropped, not sent late
                self._buffered = 0
                self._end("the reader did not keep up")

    def _end(self, reason: str) -> None:
        if self.ended is not None:
            return
        self.ended = reason
        self._feed.unsubscribe(self)
        if self._muxer is not None:
            self._muxer.close()
            self._muxer = None
        self._pending = bytearray()
        self._ready.set()
