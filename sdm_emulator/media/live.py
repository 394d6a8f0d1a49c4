"""Media for the real-time emulator: the RTSP server and the WebRTC peers together."""

from __future__ import annotations

from pathlib import Path
import tempfile

from ..config import DeviceSpec
from ..metrics import StreamRecord
from .rtsp import RtspServer, StreamShape
from .tls import TlsFiles, make_tls_files
from .webrtc import WebRtcPeers


class LiveMedia:
    """RTSP sessions from GStreamer's server, WebRTC sessions from aiortc peers."""

    def __init__(
        self,
        rtsp_mode: str = "keep",
        rtsp_port: int = 0,
        *,
        tls: bool = True,
        tls_dir: Path | None = None,
        shape: StreamShape | None = None,
    ) -> None:
        """Configure; `start()` starts the RTSP server.

        With `tls` (the default, as Google's `rtsps://`) the emulator's CA and the server's
        certificate are taken from `tls_dir` when it holds them, else made there (by default in
        a temporary folder); `tls_files.ca` is what a client must trust.
        """
        self._tempdir: tempfile.TemporaryDirectory[str] | None = None
        self.tls_files: TlsFiles | None = None
        if tls:
            if tls_dir is None:
                self._tempdir = tempfile.TemporaryDirectory(prefix="sdm-emulator-tls-")
                tls_dir = Path(self._tempdir.name)
            self.tls_files = tls_files(tls_dir)
        self.rtsp = RtspServer(rtsp_mode, rtsp_port, tls=self.tls_files, shape=shape)
        self.webrtc = WebRtcPeers()

    async def start(self) -> None:
        """Start the RTSP server (raises `RtspMediaError` when it cannot)."""
        await self.rtsp.start()

    async def close(self) -> None:
        """Stop everything."""
        await self.webrtc.close()
        await self.rtsp.close()
        if self._tempdir is not None:
            self._tempdir.cleanup()

    def info(self) -> dict[str, object]:
        """What the streams look like and what their clients did (the emulator's metrics)."""
        return self.rtsp.info()

    def rtsp_url(self, record: StreamRecord) -> str:
        """The RTSP URL of `record` with its current stream token."""
        return self.rtsp.rtsp_url(record)

    def rtsp_token(self, record: StreamRecord, device: DeviceSpec, token_expires: float) -> None:
        """`record` has a new stream token."""
        self.rtsp.rtsp_token(record, device, token_expires)

    def stream_ended(self, record: StreamRecord) -> None:
        """`record` was stopped."""
        if record.protocol == "RTSP":
            self.rtsp.stream_ended(record)

    async def webrtc_answer(self, record: StreamRecord, device: DeviceSpec, offer: str) -> str:
        """A peer's answer; the peer streams until `record` ends."""
        return await self.webrtc.answer(record, device, offer)


def tls_files(folder: Path) -> TlsFiles:
    """The CA and server certificate in `folder`: the ones there, else new ones."""
    existing = TlsFiles(ca=folder / "emulator-ca.pem", server=folder / "emulator-server.pem")
    if existing.ca.is_file() and existing.server.is_file():
        return existing
    return make_tls_files(folder)
