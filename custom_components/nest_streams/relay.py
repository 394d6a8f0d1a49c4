"""WebRTC for RTSP cameras: the camera's H.264 relayed as it comes, across token rotations.

Why: HA's HLS live view does not survive a restart of HA's stream worker (HA 2026.10 and
2026.11 render a playlist that hls.js refuses once the restart's segment reaches the top of
the window: "discontinuity sequence mismatch"; the card then falls back to still images). A
stream token that rotates may end the RTSP session opened with it, which forces such a restart.
Here each viewer gets a WebRTC peer (aiortc) whose video track is fed by the camera's
`RelaySource`: one RTSP session for all viewers, read with PyAV (demuxing only, no decoding).
When the token rotates the source opens the new URL beside the old one and switches at the new
session's first key frame: the viewers see no gap.

No Home Assistant imports: the camera entity owns the peers and says when the URL changes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import contextlib
from fractions import Fraction
import logging
import threading
from typing import Any

from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.exceptions import InvalidAccessError, OperationError
from aiortc.mediastreams import MediaStreamError
from aiortc.sdp import candidate_from_sdp
import av
from av.video.stream import VideoStream

_LOGGER = logging.getLogger(__name__)

CLOCK = Fraction(1, 90_000)
"""The relay's time base (RTP's video clock)."""
DEFAULT_STEP = 3_000
"""Ticks between frames until two frames were seen (30 fps)."""
OPEN_TIMEOUT = 10.0
"""Seconds PyAV may wait for the RTSP server (connect, and each read)."""
OPEN_OPTIONS = {"rtsp_transport": "tcp", "analyzeduration": "0", "probesize": "32"}
"""RTSP over TCP, and no stream probe: packets are relayed, not decoded, and the codec's
parameters come with the session's SDP (FFmpeg's default probe held the first frame back by
about 3 s; measured 2.96 s against 0.26 s on the emulator's server)."""
RECONNECT_DELAY = 1.0
"""Seconds before a session that ended on its own is replaced by one on the newest URL."""
_SPS = 7


class RelayError(Exception):
    """The viewer's offer cannot be answered (no H.264 video in it, or not an SDP offer)."""


class RtspReader:
    """One RTSP session read in a thread: its video packets, undecoded, to the event loop."""

    def __init__(
        self,
        url: str,
        loop: asyncio.AbstractEventLoop,
        deliver: Callable[[RtspReader, av.Packet[VideoStream] | None], None],
    ) -> None:
        """Read `url`; `deliver(self, packet)` per packet, `deliver(self, None)` at the end."""
        self.url = url
        self._event_loop = loop
        self._deliver = deliver
        self._stopped = threading.Event()
        self.extradata = b""
        self._thread = threading.Thread(target=self._run, name="nest_streams_relay", daemon=True)

    def start(self) -> None:
        """Open the session."""
        self._thread.start()

    def stop(self) -> None:
        """Close the session (the thread ends at its next packet or read timeout)."""
        self._stopped.set()

    def _run(self) -> None:
        try:
            with av.open(self.url, options=OPEN_OPTIONS, timeout=OPEN_TIMEOUT) as container:
                video = container.streams.video[0]
                self.extradata = bytes(video.codec_context.extradata or b"")
                for packet in container.demux(video):
                    if self._stopped.is_set():
                        break
                    if packet.size:
                        self._event_loop.call_soon_threadsafe(self._deliver, self, packet)
        except (av.FFmpegError, IndexError, OSError) as err:
            if not self._stopped.is_set():
                _LOGGER.debug("RTSP session ended: %s", type(err).__name__)
        if not self._stopped.is_set():
            self._event_loop.call_soon_threadsafe(self._deliver, self, None)


def _has_sps(data: bytes) -> bool:
    """Whether an Annex B access unit carries a sequence parameter set."""
    index = data.find(b"\x00\x00\x01")
    while index != -1 and index + 3 < len(data):
        if data[index + 3] & 0x1F == _SPS:
            return True
        index = data.find(b"\x00\x00\x01", index + 3)
    return False


class RelaySource:
    """The camera's RTSP stream for all its viewers, one session at a time.

    `switch(url)` opens a session on a new URL while the current one goes on; the source moves
    to it at its first key frame. A session that ends on its own is replaced by one on
    `current_url()` after RECONNECT_DELAY. Timestamps continue across sessions. Each viewer
    (`subscribe()`) gets the packets from its first key frame on; the source stops with its
    last viewer.
    """

    def __init__(self, current_url: Callable[[], str | None]) -> None:
        """Read `current_url()` now and after every session that ended on its own."""
        self._current_url = current_url
        self._event_loop = asyncio.get_running_loop()
        self._viewers: set[ViewerTrack] = set()
        self._reader: RtspReader | None = None
        self._next: RtspReader | None = None
        self._offset: int | None = None
        self._last_pts: int | None = None
        self._step = DEFAULT_STEP
        self._reconnect: asyncio.TimerHandle | None = None
        self._need_keyframe = True
        self.live = True
        self.switches = 0
        if url := current_url():
            self._reader = self._open(url)

    def subscribe(self) -> ViewerTrack:
        """A track for one more viewer."""
        viewer = ViewerTrack(self)
        self._viewers.add(viewer)
        return viewer

    def unsubscribe(self, viewer: ViewerTrack) -> None:
        """A viewer left; the last one stops the source."""
        self._viewers.discard(viewer)
        if not self._viewers:
            self.stop()

    @property
    def url(self) -> str | None:
        """The URL the source reads (or is about to read)."""
        reader = self._next or self._reader
        return reader.url if reader is not None else None

    def switch(self, url: str) -> None:
        """Move to `url` at its first key frame (the current session plays until then)."""
        if url == self.url or not self.live:
            return
        if self._next is not None:
            self._next.stop()
        if self._reader is None:  # between sessions: no need to wait for a key frame
            self._reopen(url)
        else:
            self._next = self._open(url)

    def _open(self, url: str) -> RtspReader:
        reader = RtspReader(url, self._event_loop, self._deliver)
        reader.start()
        return reader

    def _deliver(self, reader: RtspReader, packet: av.Packet[VideoStream] | None) -> None:
        """A packet (or the end) of `reader`, in the event loop."""
        if not self.live:
            return
        if packet is None:
            self._ended(reader)
            return
        if reader is self._next and packet.is_keyframe:
            if self._reader is not None:
                self._reader.stop()
            self._reader, self._next = reader, None
            self._offset = None  # re-based at this packet
            self.switches += 1
        if reader is not self._reader:
            return
        if self._need_keyframe:
            if not packet.is_keyframe:
                return  # a viewer (and a new session) starts at a key frame
            self._need_keyframe = False
        relayed = self._rebase(reader, packet)
        for viewer in self._viewers:
            viewer.put(relayed)

    def _rebase(self, reader: RtspReader, packet: av.Packet[VideoStream]) -> av.Packet[Any]:
        """`packet` on the source's own clock, continuing after the previous session."""
        source = packet.pts if packet.pts is not None else packet.dts
        ticks = 0 if source is None else int(source * packet.time_base / CLOCK)
        if self._offset is None:
            start = 0 if self._last_pts is None else self._last_pts + self._step
            self._offset = start - ticks
        pts = ticks + self._offset
        if self._last_pts is not None:
            if pts <= self._last_pts:  # a source without timestamps, or one going back
                pts = self._last_pts + self._step
            elif pts - self._last_pts < 10 * DEFAULT_STEP:
                self._step = pts - self._last_pts
        self._last_pts = pts
        relayed: av.Packet[Any]
        if packet.is_keyframe and reader.extradata and not _has_sps(bytes(packet)):
            relayed = av.Packet(reader.extradata + bytes(packet))
            relayed.is_keyframe = True
        else:
            relayed = packet
        relayed.pts = relayed.dts = pts
        relayed.time_base = CLOCK
        return relayed

    def _ended(self, reader: RtspReader) -> None:
        if reader is self._next:
            self._next = None
            return
        if reader is not self._reader:
            return
        self._reader = None
        if self._next is None:  # else the new session takes over at its first key frame
            self._reconnect = self._event_loop.call_later(RECONNECT_DELAY, self._reopen)

    def _reopen(self, url: str | None = None) -> None:
        """A new session (on `url`, else the newest URL) after one that ended."""
        if self._reconnect is not None:
            self._reconnect.cancel()
            self._reconnect = None
        url = url or self._current_url()
        if self.live and self._reader is None and url:
            self._reader = self._open(url)
            self._offset = None
            self._need_keyframe = True

    def stop(self) -> None:
        """End the sessions and the viewers' tracks."""
        self.live = False
        if self._reconnect is not None:
            self._reconnect.cancel()
        for reader in (self._reader, self._next):
            if reader is not None:
                reader.stop()
        self._reader = self._next = None
        for viewer in list(self._viewers):
            viewer.stop()


class ViewerTrack(MediaStreamTrack):
    """One viewer's WebRTC video track: the source's packets from a key frame on."""

    kind = "video"

    def __init__(self, source: RelaySource) -> None:
        """A track fed by `source`."""
        super().__init__()
        self.source = source
        self._queue: asyncio.Queue[av.Packet[Any] | None] = asyncio.Queue()
        self._started = False

    def put(self, packet: av.Packet[Any]) -> None:
        """A packet of the source (skipped until the viewer's first key frame)."""
        if self._started or packet.is_keyframe:
            self._started = True
            self._queue.put_nowait(packet)

    async def recv(self) -> av.Packet[Any]:
        """The next packet (aiortc packetizes it without re-encoding)."""
        packet = await self._queue.get() if self.readyState == "live" else None
        if packet is None:
            raise MediaStreamError
        return packet

    def stop(self) -> None:
        """The viewer left."""
        if self.readyState == "live":
            super().stop()
            self._queue.put_nowait(None)
            self.source.unsubscribe(self)


class RelayPeer:
    """One viewer: an aiortc peer sending its track of the source as H.264."""

    def __init__(self, track: ViewerTrack, ice_servers: list[RTCIceServer]) -> None:
        """A peer for `track`, using the same ICE servers as the viewer (HA's; none: host
        candidates only)."""
        self.track = track
        self._peer = RTCPeerConnection(RTCConfiguration(iceServers=ice_servers))

    async def answer(self, offer_sdp: str) -> str:
        """Answer the viewer's offer (H.264 only: the camera's video is sent as it is).

        Raises `RelayError` (the peer closed) when aiortc cannot answer it.
        """
        try:
            return await self._answer(offer_sdp)
        except (ValueError, RuntimeError, OperationError, InvalidAccessError) as err:
            await self.close()
            raise RelayError(str(err) or type(err).__name__) from err

    async def _answer(self, offer_sdp: str) -> str:
        self._peer.addTrack(self.track)
        h264 = [
            codec
            for codec in RTCRtpSender.getCapabilities("video").codecs
            if codec.mimeType.lower() in ("video/h264", "video/rtx")
        ]
        for transceiver in self._peer.getTransceivers():  # before the offer's codecs are met
            transceiver.setCodecPreferences(h264)
        await self._peer.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        await self._peer.setLocalDescription(await self._peer.createAnswer())
        return self._peer.localDescription.sdp

    async def add_candidate(self, candidate: str, sdp_mid: str | None) -> None:
        """A candidate of the viewer's; one aiortc cannot parse is skipped (the viewer's own
        checks reach the relay's candidates anyway)."""
        text = candidate.removeprefix("candidate:")
        if len(text.split()) < 8:  # not a candidate line (aiortc would assert)
            return
        with contextlib.suppress(ValueError):
            parsed = candidate_from_sdp(text)
            parsed.sdpMid = sdp_mid
            await self._peer.addIceCandidate(parsed)

    async def close(self) -> None:
        """Stop sending and close the peer."""
        self.track.stop()
        await self._peer.close()
