"""RTSP media: Debian's GStreamer RTSP server as a child process of the emulator."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import asdict, dataclass
import json
import logging
from pathlib import Path
import shutil

from ..config import DeviceSpec
from ..metrics import StreamRecord
from .tls import TlsFiles

_LOGGER = logging.getLogger(__name__)

SERVER = Path(__file__).with_name("rtsp_server.py")
SYSTEM_PYTHON = "/usr/bin/python3"


class RtspMediaError(RuntimeError):
    """The RTSP server could not be started."""


@dataclass(frozen=True, slots=True)
class StreamShape:
    """What the RTSP streams look like (Google's, as far as known; GUESS where unpublished)."""

    size: str = "1280x720"
    """Picture size (the wired cameras' `maxVideoResolution` in the device traits)."""
    fps: int = 15
    gop: float = 4.0
    """Seconds between key frames (GUESS: Nest's is unpublished)."""
    bframes: int = 0
    """B-frames between reference frames (GUESS: none)."""
    audio: bool = True
    """AAC audio, as the traits' `audioCodecs: ["AAC"]` say."""


@dataclass(slots=True)
class SessionStats:
    """RTSP sessions as the server saw them."""

    opened: int = 0
    refused_token: int = 0
    """Refused: the token was not (or no longer) valid."""
    refused_in_use: int = 0
    """Refused: the URL had a client already (Google allows one client per URL)."""
    clients_per_url_max: int = 0
    """The most clients that wanted one URL at the same time (the refused one counted)."""
    open: int = 0
    """Sessions open now (opened and not yet closed by either side)."""
    ended: int = 0
    """Sessions whose media ended (the server said what it sent)."""
    silent: int = 0
    """Of them, those that sent picture but no sound (the stream has sound)."""


class RtspServer:
    """The child process serving `rtsps://127.0.0.1:<port>/sdm_live_stream/<id>?auth=<token>`.

    `mode` is `keep` (an open session lives as long as its stream, extensions included) or
    `rotate` (a session ends when the token it was opened with would have expired). With `tls`
    the server speaks rtsps (its certificate signed by the emulator's own CA), as Google does;
    without, plain rtsp.
    """

    def __init__(
        self,
        mode: str = "keep",
        port: int = 0,
        python: str | None = None,
        *,
        tls: TlsFiles | None = None,
        shape: StreamShape | None = None,
    ) -> None:
        """Configure; nothing runs before `start()`."""
        if mode not in ("keep", "rotate"):
            raise ValueError(f"mode must be keep or rotate, not {mode!r}")
        self.mode = mode
        self.port = port
        self.tls = tls
        self.shape = shape or StreamShape()
        self.stats = SessionStats()
        self._python = python or SYSTEM_PYTHON
        self._process: asyncio.subprocess.Process | None = None
        self._stderr: asyncio.Task[None] | None = None
        self._events: asyncio.Task[None] | None = None

    @property
    def scheme(self) -> str:
        """`rtsps` with TLS, else `rtsp`."""
        return "rtsps" if self.tls is not None else "rtsp"

    async def start(self) -> None:
        """Start the server; raises `RtspMediaError` when it does not come up."""
        if not shutil.which(self._python):
            raise RtspMediaError(f"{self._python} not found (scripts/setup installs it)")
        shape = self.shape
        arguments = [
            str(SERVER),
            "--port",
            str(self.port),
            "--mode",
            self.mode,
            "--size",
            shape.size,
            "--fps",
            str(shape.fps),
            "--gop",
            str(shape.gop),
            "--bframes",
            str(shape.bframes),
        ]
        if self.tls is not None:
            arguments += ["--cert", str(self.tls.server)]
        if not shape.audio:
            arguments.append("--no-audio")
        self._process = await asyncio.create_subprocess_exec(
            self._python,
            *arguments,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert self._process.stdout is not None
        try:
            line = await asyncio.wait_for(self._process.stdout.readline(), 20)
        except TimeoutError:
            line = b""
        if not line.startswith(b"READY "):
            stderr = b""
            if self._process.returncode is not None and self._process.stderr is not None:
                stderr = await self._process.stderr.read()
            await self.close()
            raise RtspMediaError(
                "the GStreamer RTSP server did not start (scripts/setup installs "
                f"gir1.2-gst-rtsp-server-1.0 and GStreamer's plugins): {stderr.decode()[-500:]}"
            )
        self.port = int(line.split()[1])
        self._stderr = asyncio.create_task(self._log_stderr())
        self._events = asyncio.create_task(self._read_events())
        _LOGGER.info("RTSP server (GStreamer, %s mode): port %d", self.mode, self.port)

    async def _read_events(self) -> None:
        """Count the sessions the server reports (one JSON line each)."""
        assert self._process is not None
        assert self._process.stdout is not None
        stats = self.stats
        async for line in self._process.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("event") == "closed":
                stats.open = max(0, stats.open - 1)
                continue
            if event.get("event") == "media":
                stats.ended += 1
                if event["video"] > 0 and event["audio"] == 0:
                    stats.silent += 1
                    _LOGGER.warning(
                        "an RTSP session sent %d video buffers and no sound", event["video"]
                    )
                continue
            stats.clients_per_url_max = max(stats.clients_per_url_max, int(event["clients"]))
            if not event["refused"]:
                stats.opened += 1
                stats.open += 1
            elif event["reason"] == "URL in use":
                stats.refused_in_use += 1
                _LOGGER.warning("a second client for one RTSP URL was refused")
            else:
                stats.refused_token += 1
                _LOGGER.info("RTSP session refused: %s", event["reason"])

    def info(self) -> dict[str, object]:
        """The streams' shape and the sessions so far (the emulator's metrics)."""
        return {
            "tls": self.tls is not None,
            "size": self.shape.size,
            "fps": self.shape.fps,
            "gop_s": self.shape.gop,
            "bframes": self.shape.bframes,
            "audio_codec": "AAC" if self.shape.audio else None,
            "mode": self.mode,
            "sessions": asdict(self.stats),
            "clients_per_url_max": self.stats.clients_per_url_max,
        }

    async def _log_stderr(self) -> None:
        assert self._process is not None
        assert self._process.stderr is not None
        async for line in self._process.stderr:
            _LOGGER.info("rtsp server: %s", line.decode(errors="replace").rstrip())

    def _send(self, message: dict[str, object]) -> None:
        if self._process is None or self._process.stdin is None:
            return
        self._process.stdin.write(json.dumps(message).encode() + b"\n")

    def rtsp_url(self, record: StreamRecord) -> str:
        """The URL of `record` with its current stream token."""
        return (
            f"{self.scheme}://127.0.0.1:{self.port}/sdm_live_stream/{record.stream_id}"
            f"?auth={record.stream_token}"
        )

    def rtsp_token(self, record: StreamRecord, device: DeviceSpec, token_expires: float) -> None:
        """Tell the server about `record`'s newest token and expiry (times are emulator time)."""
        self._send(
            {
                "op": "token",
                "stream": record.stream_id,
                "device": device.device_id,
                "name": device.name,
                "token": record.stream_token,
                "token_expires": token_expires,
                "stream_expires": record.expires_at,
            }
        )

    def stream_ended(self, record: StreamRecord) -> None:
        """End `record`'s sessions now."""
        self._send({"op": "stop", "stream": record.stream_id})

    async def close(self) -> None:
        """Stop the server (it ends when its stdin closes)."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.stdin is not None:
            process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), 5)
        except TimeoutError:
            process.kill()
            await process.wait()
        for task in (self._stderr, self._events):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
