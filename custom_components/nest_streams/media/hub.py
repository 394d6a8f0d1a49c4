"""Everything one camera's picture and sound serve: its feed and what consumes it."""

from __future__ import annotations

from collections.abc import Callable
import logging

from aiortc import RTCIceServer

from .audio import OpusTranscoder
from .feed import IDLE_TIMEOUT, CameraFeed
from .picture import FrameDecoder, Stills
from .webrtc import RelayPeer

_LOGGER = logging.getLogger(__name__)


class CameraMedia:
    """One RTSP camera's feed and its consumers: WebRTC viewers, sound, stills, MJPEG.

    The sound's transcoder runs while a viewer listens, the MJPEG decoder while an MJPEG client
    watches; the feed's session while any of them (or a recent still) needs it.
    """

    def __init__(
        self,
        name: str,
        *,
        ca_file: str | None,
        on_problem: Callable[[str | None], None] | None = None,
        idle_timeout: float | None = IDLE_TIMEOUT,
    ) -> None:
        """The media of camera `name` (see `CameraFeed` for the arguments)."""
        self.feed = CameraFeed(
            name, ca_file=ca_file, on_problem=on_problem, idle_timeout=idle_timeout
        )
        self.stills = Stills(self.feed)
        self._viewers: dict[str, tuple[RelayPeer, Callable[[str], None]]] = {}
        self._transcoder: OpusTranscoder | None = None
        self._listening = False
        """Whether the transcoder takes the feed's sound (while a viewer is there)."""
        self._decoder: FrameDecoder | None = None

    @property
    def viewers(self) -> int:
        """Open WebRTC viewers."""
        return len(self._viewers)

    def peer(self, key: str) -> RelayPeer | None:
        """The viewer `key`'s peer."""
        entry = self._viewers.get(key)
        return entry[0] if entry else None

    async def open_viewer(
        self,
        key: str,
        offer_sdp: str,
        ice_servers: list[RTCIceServer],
        on_closed: Callable[[str], None],
    ) -> str:
        """Answer viewer `key`'s offer; `on_closed(reason)` when the relay ends it on its own
        (not when `close_viewer` does). Raises `RelayError` when it cannot be answered."""
        peer = RelayPeer(self.feed, self._audio, ice_servers, self._peer_closed)
        self._viewers[key] = (peer, on_closed)
        return await peer.answer(offer_sdp)

    def close_viewer(self, key: str) -> RelayPeer | None:
        """The viewer left; its peer (closing) or None when unknown. Await `peer.close()`."""
        entry = self._viewers.pop(key, None)
        return entry[0] if entry else None

    def _peer_closed(self, peer: RelayPeer, reason: str | None) -> None:
        for key, (known, on_closed) in list(self._viewers.items()):
            if known is peer:
                del self._viewers[key]
                if reason is not None:
                    on_closed(reason)
        if not self._viewers and self._transcoder is not None and self._listening:
            # Nobody listens: the feed may close its session. The transcoder itself waits for
            # the next viewer: PyAV frees its encoder's and resampler's FFmpeg worker threads
            # only at a full garbage collection (which stalls HA for about a second), so one
            # per camera is kept rather than 4 threads left behind by every viewer session.
            self.feed.unsubscribe(self._transcoder)
            self._listening = False

    def _audio(self) -> OpusTranscoder:
        """The camera's sound as Opus, started by the first viewer (and kept, see above)."""
        if self._transcoder is None or self._transcoder.stopped:
            if self._transcoder is not None and self._listening:
                self.feed.unsubscribe(self._transcoder)  # its thread ended: a new one
            self._transcoder = OpusTranscoder(lambda: self.feed.audio_format)
            self._listening = False
        if not self._listening:
            self.feed.subscribe(self._transcoder)
            self._listening = True
        return self._transcoder

    def mjpeg(self) -> FrameDecoder:
        """The camera's decoder for MJPEG clients (`add_client`/`remove_client`)."""
        if self._decoder is None:
            self._decoder = FrameDecoder(self.feed, self._decoder_idle)
        return self._decoder

    def _decoder_idle(self, decoder: FrameDecoder) -> None:
        if self._decoder is decoder:
            self._decoder = None

    async def close(self, reason: str) -> None:
        """End everything: viewers, sound, pictures, the feed's session."""
        peers = [peer for peer, _ in self._viewers.values()]
        for peer in peers:
            await peer.close(reason)
        if self._transcoder is not None:
            self._transcoder.stop()
            self._transcoder = None
        self.feed.close(reason)
