"""WebRTC viewers of a feed: an aiortc peer per viewer, the camera's H.264 as it comes.

Each viewer's `RelayPeer` sends the feed's video without re-encoding and the camera's sound as
Opus (transcoded once per camera, `audio.py`). A new viewer starts from the GOP the feed holds:
its frames are sent at once, stamped a tick apart just before the newest one, so the browser
decodes them all and shows the newest at once instead of waiting for the next key frame (or
playing the GOP late).

Bounded in every way: a viewer that falls behind (its queue full) skips to the next key frame;
a peer that does not connect within `CONNECT_TIMEOUT`, or fails, is closed.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
import contextlib
import logging
import time
from typing import Any
from urllib.parse import urlsplit

from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.exceptions import InvalidAccessError, InvalidStateError, OperationError
from aiortc.mediastreams import MediaStreamError
from aiortc.sdp import candidate_from_sdp
import av

from .audio import OpusTranscoder
from .feed import CameraFeed

_LOGGER = logging.getLogger(__name__)

CONNECT_TIMEOUT = 30.0
"""Seconds a viewer's peer may take to connect before it is closed."""
MAX_QUEUED_FRAMES = 150
"""Video frames a viewer may have waiting (10 s at 15 fps); beyond, it skips to a key frame."""
CATCH_UP_PACE = 0.005
"""Seconds between the frames of the GOP a new viewer starts with: sent at once, ~300 RTP
packets of a 4 s GOP at 720p overflow a socket's buffer (measured: a 2 s stall after it)."""
MAX_QUEUED_AUDIO = 50
"""Opus packets a viewer may have waiting (1 s); beyond, the oldest are dropped."""
RESOLVE_TIMEOUT = 2.0
RESOLVED_FOR = 300.0
"""Seconds an ICE server's address is remembered (a failed lookup too)."""


NO_VIDEO = "the browser's offer has no H.264 video the camera could send"
OFFER_UNUSABLE = "the browser's offer could not be used (not a WebRTC offer with H.264 video)"


class RelayError(Exception):
    """The viewer's offer cannot be answered; the text says why, in the user's words."""


class NoVideo(ValueError):
    """The offer asks for no video the relay can send."""


class VideoTrack(MediaStreamTrack):
    """One viewer's video: the feed's packets from a key frame on, bounded."""

    kind = "video"

    def __init__(self) -> None:
        """An empty track."""
        super().__init__()
        self._queue: deque[av.Packet[Any]] = deque()
        self._ready = asyncio.Event()
        self._started = False
        self._catching_up = 0
        """Frames of the starting GOP still queued (paced by `CATCH_UP_PACE`)."""
        self.skipped = 0
        """Times the viewer fell behind and skipped to a key frame."""

    def start_from(self, gop: list[av.Packet[Any]]) -> None:
        """Begin with the feed's GOP, squeezed just before its newest frame."""
        if not gop or self._started:
            return
        last = gop[-1]
        assert last.pts is not None
        assert last.dts is not None
        for index, packet in enumerate(gop):
            copy: av.Packet[Any] = av.Packet(bytes(packet))
            ticks = len(gop) - 1 - index
            copy.pts, copy.dts = last.pts - ticks, last.dts - ticks
            copy.time_base = packet.time_base
            copy.is_keyframe = packet.is_keyframe
            self._queue.append(copy)
        self._catching_up = len(gop)
        self._started = True
        self._ready.set()

    def put(self, packet: av.Packet[Any]) -> None:
        """A packet of the feed (skipped until the viewer's first key frame)."""
        if self.readyState != "live":
            return
        if not self._started:
            if not packet.is_keyframe:
                return
            self._started = True
        if len(self._queue) >= MAX_QUEUED_FRAMES:
            self._queue.clear()
            self._catching_up = 0
            self._started = packet.is_keyframe
            self.skipped += 1
            if not self._started:
                return
        self._queue.append(packet)
        self._ready.set()

    @property
    def queued(self) -> int:
        """Frames waiting to be sent."""
        return len(self._queue)

    async def recv(self) -> av.Packet[Any]:
        """The next packet (aiortc packetizes it without re-encoding)."""
        while not self._queue:
            if self.readyState != "live":
                raise MediaStreamError
            self._ready.clear()
            await self._ready.wait()
        if self._catching_up:
            self._catching_up -= 1
            await asyncio.sleep(CATCH_UP_PACE)
            if not self._queue:  # stopped meanwhile
                raise MediaStreamError
        return self._queue.popleft()

    def stop(self) -> None:
        """The viewer left."""
        super().stop()
        self._queue.clear()
        self._ready.set()


class AudioTrack(MediaStreamTrack):
    """One viewer's sound: the camera's Opus packets, the newest second at most."""

    kind = "audio"

    def __init__(self) -> None:
        """An empty track."""
        super().__init__()
        self._queue: deque[av.Packet[Any]] = deque(maxlen=MAX_QUEUED_AUDIO)
        self._ready = asyncio.Event()
        self._behind = False

    def put(self, packet: av.Packet[Any]) -> None:
        """An Opus packet of the camera (the oldest is dropped when the viewer is behind)."""
        if self.readyState == "live":
            if len(self._queue) == self._queue.maxlen:
                if not self._behind:
                    _LOGGER.debug("a viewer's sound is %d packets behind", self._queue.maxlen)
                self._behind = True
            else:
                self._behind = False
            self._queue.append(packet)
            self._ready.set()

    async def recv(self) -> av.Packet[Any]:
        """The next Opus packet."""
        while not self._queue:
            if self.readyState != "live":
                raise MediaStreamError
            self._ready.clear()
            await self._ready.wait()
        return self._queue.popleft()

    def stop(self) -> None:
        """The viewer left."""
        super().stop()
        self._queue.clear()
        self._ready.set()


class RelayPeer:
    """One viewer: an aiortc peer sending the feed's H.264 and the camera's Opus sound."""

    def __init__(
        self,
        feed: CameraFeed,
        audio: Callable[[], OpusTranscoder | None],
        ice_servers: list[RTCIceServer],
        on_closed: Callable[[RelayPeer, str | None], None],
    ) -> None:
        """A peer for one viewer of `feed`; `audio()` gives the camera's transcoder (None: no
        sound). `on_closed(peer, reason)` once when it closes (reason None: the viewer left)."""
        self._feed = feed
        self._audio = audio
        self._on_closed = on_closed
        self.video = VideoTrack()
        self.sound = AudioTrack()
        self._transcoder: OpusTranscoder | None = None
        self._peer = RTCPeerConnection(RTCConfiguration(iceServers=ice_servers))
        self._peer.on("connectionstatechange", self._state_changed)
        self._timeout: asyncio.TimerHandle | None = None
        self._answering: asyncio.Future[None] | None = None
        """Set while the offer is answered: closing waits for it (aiortc binds the ICE
        sockets while it answers; a peer closed then leaves them open)."""
        self.closed = False
        self.created = time.monotonic()

    # the feed's consumer interface
    def on_video(self, packet: av.Packet[Any]) -> None:
        """A video packet of the feed."""
        self.video.put(packet)

    def on_audio(self, packet: av.Packet[Any]) -> None:
        """The feed's AAC: the viewer's sound comes as Opus from the transcoder instead."""

    def on_end(self, reason: str) -> None:
        """The feed closed: so does the viewer."""
        asyncio.get_running_loop().create_task(self.close(reason))

    async def answer(self, offer_sdp: str) -> str:
        """Answer the viewer's offer (H.264 video as it comes, Opus sound); start sending.

        Raises `RelayError` (the peer closed) when aiortc cannot answer it.
        """
        self._answering = asyncio.get_running_loop().create_future()
        try:
            try:
                answer = await self._answer(offer_sdp)
            finally:
                self._answering.set_result(None)
        except NoVideo as err:
            await self.close()  # the caller hears why: `on_closed` is not told
            raise RelayError(str(err)) from err
        except (
            ValueError,
            RuntimeError,
            OperationError,
            InvalidAccessError,
            InvalidStateError,
        ) as err:
            # aiortc's own words are its internals ("list.index(x): x not in list"): logged.
            _LOGGER.debug("the offer could not be answered: %r", err)
            reason = "the viewer left" if self.closed else OFFER_UNUSABLE
            await self.close()
            raise RelayError(reason) from err
        if self.closed:
            raise RelayError("the viewer left")
        self._timeout = asyncio.get_running_loop().call_later(CONNECT_TIMEOUT, self._not_connected)
        self.video.start_from(self._feed.gop())
        self._feed.subscribe(self)
        if (transcoder := self._audio()) is not None:
            self._transcoder = transcoder
            transcoder.add_listener(self.sound.put)
        return answer

    async def _answer(self, offer_sdp: str) -> str:
        if offer_sdp.startswith("v=0") and "h264/90000" not in offer_sdp.lower():
            raise NoVideo(NO_VIDEO)
        peer = self._peer
        peer.addTrack(self.sound)
        peer.addTrack(self.video)
        for transceiver in peer.getTransceivers():  # before the offer's codecs are met
            kind = transceiver.kind
            wanted = ("video/h264", "video/rtx") if kind == "video" else ("audio/opus",)
            transceiver.setCodecPreferences(
                [
                    codec
                    for codec in RTCRtpSender.getCapabilities(kind).codecs
                    if codec.mimeType.lower() in wanted
                ]
            )
        await peer.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        await peer.setLocalDescription(await peer.createAnswer())
        if not any(
            t.kind == "video" and t.currentDirection in ("sendonly", "sendrecv")
            for t in peer.getTransceivers()
        ):
            raise NoVideo(NO_VIDEO)
        return str(peer.localDescription.sdp)

    async def add_candidate(self, candidate: str, sdp_mid: str | None) -> None:
        """A candidate of the viewer's; one aiortc cannot parse is skipped (the viewer's own
        checks reach the relay's candidates anyway)."""
        text = candidate.removeprefix("candidate:")
        if self.closed or len(text.split()) < 8:  # not a candidate line (aiortc would assert)
            return
        with contextlib.suppress(ValueError, InvalidStateError):
            parsed = candidate_from_sdp(text)
            parsed.sdpMid = sdp_mid
            await self._peer.addIceCandidate(parsed)

    @property
    def state(self) -> str:
        """The peer's connection state (new, connecting, connected, failed, closed)."""
        return str(self._peer.connectionState)

    def _state_changed(self) -> None:
        state = self._peer.connectionState
        if state == "connected" and self._timeout is not None:
            self._timeout.cancel()
            self._timeout = None
        elif state in ("failed", "closed") and not self.closed:
            asyncio.get_running_loop().create_task(self.close(f"the connection {state}"))

    def _not_connected(self) -> None:
        self._timeout = None
        if self._peer.connectionState != "connected" and not self.closed:
            asyncio.get_running_loop().create_task(
                self.close(f"not connected within {CONNECT_TIMEOUT:.0f} s")
            )

    async def close(self, reason: str | None = None) -> None:
        """Stop sending and close the peer; `on_closed` hears why (None: the viewer left)."""
        if self.closed:
            return
        self.closed = True
        if self._timeout is not None:
            self._timeout.cancel()
            self._timeout = None
        self._feed.unsubscribe(self)
        if self._transcoder is not None:
            self._transcoder.remove_listener(self.sound.put)
        self.video.stop()
        self.sound.stop()
        try:
            if self._answering is not None:
                await self._answering
            await self._peer.close()
        finally:
            self._on_closed(self, reason)


_resolved: dict[str, tuple[float, str | None]] = {}
"""ICE server host -> (until when, its address or None when it did not resolve)."""


async def resolve_ice_servers(servers: list[RTCIceServer]) -> list[RTCIceServer]:
    """The servers with their hosts looked up once (remembered for `RESOLVED_FOR` s).

    aiortc looks a STUN/TURN host up for every peer, in the executor; many viewers at once, or
    a host that does not resolve (no DNS), then queue behind each other for seconds. Servers
    whose host does not resolve are left out; `turns:` keeps its name (TLS needs it).
    """
    loop = asyncio.get_running_loop()
    now = time.monotonic()
    out: list[RTCIceServer] = []
    for server in servers:
        urls = [server.urls] if isinstance(server.urls, str) else list(server.urls)
        kept: list[str] = []
        for url in urls:
            scheme, _, rest = url.partition(":")
            host = urlsplit(f"//{rest}").hostname
            if scheme == "turns" or host is None:
                kept.append(url)
                continue
            cached = _resolved.get(host)
            if cached is None or cached[0] < now:
                address: str | None = None
                try:
                    async with asyncio.timeout(RESOLVE_TIMEOUT):
                        infos = await loop.getaddrinfo(host, None, proto=17)
                    address = str(infos[0][4][0]) if infos else None
                except OSError, TimeoutError:
                    _LOGGER.debug("ICE server %s does not resolve; left out", host)
                cached = _resolved[host] = (now + RESOLVED_FOR, address)
            if cached[1] is not None:
                literal = f"[{cached[1]}]" if ":" in cached[1] else cached[1]
                kept.append(f"{scheme}:{rest.replace(host, literal, 1)}")
        if kept:
            out.append(
                RTCIceServer(urls=kept, username=server.username, credential=server.credential)
            )
    return out
