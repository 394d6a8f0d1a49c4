"""One RTSP session, read with PyAV in a thread of its own: packets (undecoded) to the loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
import errno
import logging
import socket
import ssl
import threading
from typing import Any
from urllib.parse import urlsplit

import av
import av.logging

_LOGGER = logging.getLogger(__name__)

OPEN_TIMEOUT = 10.0
"""Seconds PyAV may wait for the RTSP server (connect, and each read)."""
OPEN_OPTIONS = {"rtsp_transport": "tcp", "analyzeduration": "0", "probesize": "32"}
"""RTSP over TCP, and no stream probe: packets are relayed, not decoded, and the codecs'
parameters come with the session's SDP (FFmpeg's default probe holds the first frame back by
about 3 s)."""


@dataclass(frozen=True, slots=True)
class AudioFormat:
    """The session's audio as its SDP describes it."""

    codec: str
    sample_rate: int
    channels: int
    extradata: bytes


class SessionFailed(Exception):
    """Why a session could not be opened or ended early, in words for the camera's Last error."""


def _describe(err: BaseException, url: str, ca_file: str | None) -> str:
    """A short reason for a failed session (never the URL: it carries the stream token)."""
    if isinstance(err, av.error.HTTPUnauthorizedError):
        return "the stream server refused the stream token (401)"
    if isinstance(err, av.error.HTTPForbiddenError):
        return "the stream server refused the session (403: its URL may be in use)"
    if isinstance(err, av.error.HTTPNotFoundError):
        return "the stream server does not know the stream (404)"
    if isinstance(err, ConnectionRefusedError):
        return "the stream server refused the connection"
    if isinstance(err, TimeoutError) or getattr(err, "errno", None) == errno.ETIMEDOUT:
        return "no answer from the stream server"
    if isinstance(err, IndexError):
        return "the stream has no video"
    if (
        isinstance(err, OSError)
        and getattr(err, "errno", None) == errno.EIO
        and url.startswith("rtsps:")
        and (problem := _tls_problem(url, ca_file))
    ):
        return problem
    reason = getattr(err, "strerror", None) or type(err).__name__
    return f"the stream could not be read: {reason}"


def _tls_problem(url: str, ca_file: str | None) -> str | None:
    """Why a TLS handshake with `url`'s server fails with `ca_file`, or None when it works.

    FFmpeg says only "Input/output error" when it refuses a certificate: this handshake (no
    RTSP request: not a client of the stream) finds the reason.
    """
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or 322
    context = ssl.create_default_context(cafile=ca_file)
    try:
        with (
            socket.create_connection((host, port), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname=host),
        ):
            return None
    except ssl.SSLCertVerificationError as err:
        return f"the stream server's certificate is not trusted ({err.verify_message})"
    except (OSError, ssl.SSLError) as err:
        return f"no TLS connection to the stream server ({type(err).__name__})"


class RtspSession:
    """One RTSP session read in a thread: its video and audio packets, undecoded, to the loop.

    `deliver(session, video, packet)` is called in the event loop for each packet (`video`:
    a video packet, else audio), `ended(session, reason)` once at the end (reason None: it
    was stopped, or the server ended it normally).
    FFmpeg's own log lines from this thread are captured, not logged: the feed says what
    went wrong once, in its own words.
    """

    def __init__(
        self,
        url: str,
        loop: asyncio.AbstractEventLoop,
        deliver: Callable[[RtspSession, bool, av.Packet[Any]], None],
        ended: Callable[[RtspSession, str | None], None],
        *,
        ca_file: str | None = None,
    ) -> None:
        """Read `url` once `start()` is called; TLS peers are verified against `ca_file`."""
        self.url = url
        self.ca_file = ca_file
        self._loop = loop
        self._deliver = deliver
        self._ended = ended
        self._stopped = threading.Event()
        self.video_extradata = b""
        self.audio: AudioFormat | None = None
        self.opened = False
        """Whether the server accepted the session."""
        self._thread = threading.Thread(target=self._run, name="nest_streams_rtsp", daemon=True)

    def start(self) -> None:
        """Open the session."""
        self._thread.start()

    def stop(self) -> None:
        """Close the session (the thread ends at its next packet or read timeout)."""
        self._stopped.set()

    @property
    def stopped(self) -> bool:
        """Whether `stop()` was called."""
        return self._stopped.is_set()

    def _options(self) -> dict[str, str]:
        options = dict(OPEN_OPTIONS)
        if self.ca_file:
            options["ca_file"] = self.ca_file
        return options

    def _run(self) -> None:
        reason: str | None = None
        try:
            with (
                av.logging.Capture(local=True),
                av.open(self.url, options=self._options(), timeout=OPEN_TIMEOUT) as container,
            ):
                self.opened = True
                video = container.streams.video[0]
                self.video_extradata = bytes(video.codec_context.extradata or b"")
                streams: list[Any] = [video]
                if container.streams.audio:
                    context = container.streams.audio[0].codec_context
                    self.audio = AudioFormat(
                        codec=context.name,
                        sample_rate=context.sample_rate,
                        channels=context.channels,
                        extradata=bytes(context.extradata or b""),
                    )
                    streams.append(container.streams.audio[0])
                for packet in container.demux(*streams):
                    if self._stopped.is_set():
                        break
                    if packet.size:
                        is_video = packet.stream is video
                        self._loop.call_soon_threadsafe(self._deliver, self, is_video, packet)
        except (av.FFmpegError, IndexError, OSError) as err:
            if not self._stopped.is_set():
                reason = _describe(err, self.url, self.ca_file)
        if not self._stopped.is_set() and reason is None and not self.opened:
            reason = "the stream could not be read"
        self._loop.call_soon_threadsafe(self._ended, self, reason)
