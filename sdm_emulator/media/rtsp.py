"""RTSP media: Debian's GStreamer RTSP server as a child process of the emulator."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from pathlib import Path
import shutil

from ..config import DeviceSpec
from ..metrics import StreamRecord

_LOGGER = logging.getLogger(__name__)

SERVER = Path(__file__).with_name("rtsp_server.py")
SYSTEM_PYTHON = "/usr/bin/python3"


class RtspMediaError(RuntimeError):
    """The RTSP server could not be started."""


class RtspServer:
    """The child process serving `rtsp://127.0.0.1:<port>/sdm_live_stream/<id>?auth=<token>`.

    `mode` is `keep` (an open session lives as long as its stream, extensions included) or
    `rotate` (a session ends when the token it was opened with would have expired).

    Why `rtsp://` and not Google's `rtsps://`: the server would need a certificate that HA's
    stream worker (FFmpeg) accepts; FFmpeg does not verify certificates by default, but the
    GStreamer server's TLS needs a key pair generated at set-up, for no difference in what
    is measured (sessions, tokens, expiry).
    """

    def __init__(self, mode: str = "keep", port: int = 0, python: str | None = None) -> None:
        """Configure; nothing runs before `start()`."""
        if mode not in ("keep", "rotate"):
            raise ValueError(f"mode must be keep or rotate, not {mode!r}")
        self.mode = mode
        self.port = port
        self._python = python or SYSTEM_PYTHON
        self._process: asyncio.subprocess.Process | None = None
        self._stderr: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start the server; raises `RtspMediaError` when it does not come up."""
        if not shutil.which(self._python):
            raise RtspMediaError(f"{self._python} not found (scripts/setup installs it)")
        self._process = await asyncio.create_subprocess_exec(
            self._python,
            str(SERVER),
            "--port",
            str(self.port),
            "--mode",
            self.mode,
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
        _LOGGER.info("RTSP server (GStreamer, %s mode): port %d", self.mode, self.port)

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
            f"rtsp://127.0.0.1:{self.port}/sdm_live_stream/{record.stream_id}"
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
        if self._stderr is not None:
            self._stderr.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._stderr
