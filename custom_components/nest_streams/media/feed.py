"""One camera's RTSP stream inside Home Assistant: one session at a time, for every consumer.

Google allows one client per stream URL. A `CameraFeed` is that client: it reads the current
URL while anything consumes the picture (live viewers, still images, an MJPEG stream) and for
`idle_timeout` seconds after the last still image was asked for, then closes the session.

- **Token switches.** A new URL (the stream token rotates at every extension) is opened beside
  the running session; the feed moves to it at its first key frame and closes the old one, so
  consumers see no gap and never two sessions on one URL.
- **One clock.** Timestamps continue across sessions (`Timeline`).
- **The current GOP** (video since the last key frame) is kept in memory: a new viewer starts
  from it at once instead of waiting for the next key frame, and stills decode its key frame.
- **Failures** (refused certificate, refused token, no answer) are reported once per episode
  through `on_problem` and retried with back-off (1, 2, 4 ... 30 s); a session that ends on its
  own after playing (a rotated token's end) is replaced after a second.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import logging
import time
from typing import Any, Protocol

import av

from .session import AudioFormat, RtspSession
from .timeline import Timeline

_LOGGER = logging.getLogger(__name__)

RECONNECT_DELAY = 1.0
"""Seconds before a session that ended on its own after playing is replaced."""
BACKOFF = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0)
"""Seconds before the next try after 1, 2, 3 ... failed sessions in a row."""
IDLE_TIMEOUT = 30.0
"""Seconds a session stays open after the last still image was asked for (the dashboard's
cards ask every 10 s while they are shown)."""
SILENCE = 3.0
"""Seconds a session's picture may play on without its sound before that is logged (debug)."""
MAX_GOP_PACKETS = 900
"""A GOP longer than this (a minute at 15 fps: a broken source) is not kept."""
_SPS = 7


class Consumer(Protocol):
    """Something that takes the feed's packets (all on the feed's clock)."""

    def on_video(self, packet: av.Packet[Any]) -> None:
        """An H.264 access unit (Annex B); the first one a consumer gets is a key frame."""

    def on_audio(self, packet: av.Packet[Any]) -> None:
        """An audio packet of the camera's codec (`CameraFeed.audio_format`)."""

    def on_end(self, reason: str) -> None:
        """The feed closed for good (the camera left, or its entry was unloaded)."""


def has_parameter_sets(data: bytes) -> bool:
    """Whether an Annex B access unit carries a sequence parameter set."""
    index = data.find(b"\x00\x00\x01")
    while index != -1 and index + 3 < len(data):
        if data[index + 3] & 0x1F == _SPS:
            return True
        index = data.find(b"\x00\x00\x01", index + 3)
    return False


def with_parameter_sets(packet: av.Packet[Any], extradata: bytes) -> av.Packet[Any]:
    """A key frame that carries the SDP's parameter sets (a decoder can start from it)."""
    if not extradata or has_parameter_sets(bytes(packet)):
        return packet
    made: av.Packet[Any] = av.Packet(extradata + bytes(packet))
    made.pts, made.dts, made.time_base = packet.pts, packet.dts, packet.time_base
    made.duration = packet.duration
    made.is_keyframe = True
    return made


class CameraFeed:
    """The camera's one RTSP session, shared by every consumer (see the module)."""

    def __init__(
        self,
        name: str,
        *,
        ca_file: str | None,
        on_problem: Callable[[str | None], None] | None = None,
        idle_timeout: float | None = IDLE_TIMEOUT,
    ) -> None:
        """A feed of camera `name`; TLS peers are verified against `ca_file`.

        `idle_timeout` None keeps the session open whenever the URL is known (measured
        against the default in `benchmarks/media_cost.py`).
        """
        self.name = name
        self._ca_file = ca_file
        self._on_problem = on_problem
        self._idle_timeout = idle_timeout
        self._loop = asyncio.get_running_loop()
        self._url: str | None = None
        self._session: RtspSession | None = None
        self._next: RtspSession | None = None
        self._consumers: set[Consumer] = set()
        self._gop: list[av.Packet[Any]] = []
        self._keyframe = asyncio.Event()
        self._timeline = Timeline(name)
        self._want_until = -1.0
        self._retry: asyncio.TimerHandle | None = None
        self._idle: asyncio.TimerHandle | None = None
        self._failures = 0
        self._played = False
        """Whether the current session gave a key frame."""
        self.problem: str | None = None
        self.closed = False
        self.sessions = 0
        """Sessions opened so far."""
        self.switches = 0
        """Token switches made at a key frame so far."""
        self._heard = 0.0
        """When the current session's sound last came (monotonic); 0: none yet."""
        self._silent = False
        """Whether the current session's picture plays without its sound (logged once)."""

    # -- what the HA layer says ------------------------------------------------------------------

    @property
    def url(self) -> str | None:
        """The URL the camera's stream has now (None: no stream runs)."""
        return self._url

    def set_url(self, url: str | None) -> None:
        """The camera's stream URL changed (a new token), or its stream ended (None)."""
        if self.closed or url == self._url:
            return
        self._url = url
        if url is None:  # no stream at Google: nothing to read, nothing wrong with reading
            self._close_sessions()
            self._cancel_retry()
            self._failures = 0
            if self.problem is not None:
                self.problem = None
                if self._on_problem is not None:
                    self._on_problem(None)
            return
        if self._session is not None:
            if self._next is not None:
                self._next.stop()
            self._next = self._open(url)
        else:
            self._cancel_retry()
            self._ensure_open()

    def close(self, reason: str) -> None:
        """End the feed for good; every consumer hears `reason`."""
        if self.closed:
            return
        self.closed = True
        self._cancel_retry()
        if self._idle is not None:
            self._idle.cancel()
        self._close_sessions()
        for consumer in list(self._consumers):
            consumer.on_end(reason)
        self._consumers.clear()

    # -- consumers -------------------------------------------------------------------------------

    def subscribe(self, consumer: Consumer) -> None:
        """`consumer` takes the packets from now on (the session opens if needed)."""
        if self.closed:
            consumer.on_end("closed")
            return
        self._consumers.add(consumer)
        self._ensure_open()

    def unsubscribe(self, consumer: Consumer) -> None:
        """`consumer` left; without consumers the session closes (after `idle_timeout` if a
        still was asked for lately)."""
        self._consumers.discard(consumer)
        self._schedule_idle()

    @property
    def consumers(self) -> int:
        """How many consumers the feed has."""
        return len(self._consumers)

    def gop(self) -> list[av.Packet[Any]]:
        """The video since the last key frame (key frame first), on the feed's clock."""
        return list(self._gop)

    @property
    def audio_format(self) -> AudioFormat | None:
        """The audio of the current session, if it has any."""
        return self._session.audio if self._session is not None else None

    @property
    def running(self) -> bool:
        """Whether a session delivers the picture now."""
        return self._session is not None and self._played

    async def key_frame(self, wait: float) -> av.Packet[Any] | None:
        """The newest key frame (with its parameter sets), waiting up to `wait` seconds for
        one; None when none came. Keeps the session open for `idle_timeout` seconds more."""
        if self._idle_timeout is not None:
            self._want_until = time.monotonic() + self._idle_timeout
        self._ensure_open()
        self._schedule_idle()
        if not self._gop and self._url is not None:
            self._keyframe.clear()
            try:
                async with asyncio.timeout(wait):
                    await self._keyframe.wait()
            except TimeoutError:
                return None
        return self._gop[0] if self._gop else None

    # -- sessions --------------------------------------------------------------------------------

    def _wanted(self) -> bool:
        return bool(self._consumers) or (
            self._idle_timeout is None or time.monotonic() < self._want_until
        )

    def _ensure_open(self) -> None:
        if (
            not self.closed
            and self._url is not None
            and self._session is None
            and self._retry is None
            and self._wanted()
        ):
            self._session = self._open(self._url)
            self._timeline.new_session()
            self._played = False
            self._heard, self._silent = 0.0, False

    def _open(self, url: str) -> RtspSession:
        session = RtspSession(url, self._loop, self._deliver, self._ended, ca_file=self._ca_file)
        session.start()
        self.sessions += 1
        return session

    def _deliver(self, session: RtspSession, video: bool, packet: av.Packet[Any]) -> None:
        if self.closed:
            return
        if session is self._next:
            if not (video and packet.is_keyframe):
                return  # the current session plays until the new one has a key frame
            if self._session is not None:
                self._session.stop()
            self._session, self._next = session, None
            self._timeline.new_session()
            self.switches += 1
            _LOGGER.debug("%s: the new stream URL plays from its first key frame", self.name)
        if session is not self._session:
            return
        if not video:
            if (stamped := self._timeline.audio(packet)) is not None:
                self._heard_now()  # given out: sound the timeline drops counts as none
                for consumer in list(self._consumers):
                    consumer.on_audio(stamped)
            return
        if session.audio is not None and self._heard:
            self._check_sound()
        if packet.is_keyframe:
            packet = with_parameter_sets(packet, session.video_extradata)
        if (stamped := self._timeline.video(packet)) is None:
            return  # a session is joined at a key frame
        if stamped.is_keyframe:
            self._gop = [stamped]
            self._keyframe.set()
            if not self._played:
                self._played = True
                self._failures = 0
                self._set_problem(None)
        elif len(self._gop) < MAX_GOP_PACKETS:
            self._gop.append(stamped)
        else:
            self._gop = []
        for consumer in list(self._consumers):
            consumer.on_video(stamped)

    def _heard_now(self) -> None:
        if self._silent:
            self._silent = False
            _LOGGER.debug("%s: the stream's sound is back", self.name)
        self._heard = time.monotonic()

    def _check_sound(self) -> None:
        """A picture that plays on without its sound for `SILENCE` seconds is logged (debug)."""
        if not self._silent and time.monotonic() - self._heard > SILENCE:
            self._silent = True
            _LOGGER.debug(
                "%s: the picture plays; no sound for %g s (%s)",
                self.name,
                SILENCE,
                self._timeline.sound_report(),
            )

    def _ended(self, session: RtspSession, reason: str | None) -> None:
        if session is self._next:
            self._next = None
            if reason:
                _LOGGER.debug("%s: the new stream URL could not be opened: %s", self.name, reason)
            return
        if session is not self._session:
            return
        played, self._session, self._played = self._played, None, False
        if self._next is not None:
            return  # the new session takes over at its first key frame
        self._gop = []
        if self.closed or self._url is None or not self._wanted():
            return
        if reason is None and played:
            delay = RECONNECT_DELAY  # e.g. the session of a token that expired
        else:
            self._failures += 1
            self._set_problem(reason or "the stream ended before its first key frame")
            delay = BACKOFF[min(self._failures, len(BACKOFF)) - 1]
        self._retry = self._loop.call_later(delay, self._retry_now)

    def _retry_now(self) -> None:
        self._retry = None
        self._ensure_open()

    def _cancel_retry(self) -> None:
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None

    def _close_sessions(self) -> None:
        for session in (self._session, self._next):
            if session is not None:
                session.stop()
        self._session = self._next = None
        self._played = False
        self._gop = []

    def _schedule_idle(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        if self.closed or self._consumers or self._idle_timeout is None:
            return
        delay = max(0.0, self._want_until - time.monotonic())
        self._idle = self._loop.call_later(delay + 0.1, self._close_if_idle)

    def _close_if_idle(self) -> None:
        self._idle = None
        if not self._wanted():
            self._close_sessions()
            self._cancel_retry()

    def _set_problem(self, problem: str | None) -> None:
        if problem == self.problem:
            return
        if problem is not None and self.problem is None:
            _LOGGER.warning("%s: no live picture: %s; retrying", self.name, problem)
        elif problem is None:
            _LOGGER.info("%s: the live picture is back", self.name)
        else:
            _LOGGER.debug("%s: no live picture: %s", self.name, problem)
        self.problem = problem
        if self._on_problem is not None:
            self._on_problem(problem)
