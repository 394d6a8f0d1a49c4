"""Media for the real-time emulator: the RTSP server and the WebRTC peers together."""

from __future__ import annotations

from ..config import DeviceSpec
from ..metrics import StreamRecord
from .rtsp import RtspServer
from .webrtc import WebRtcPeers


class LiveMedia:
    """RTSP sessions from GStreamer's server, WebRTC sessions from aiortc peers."""

    def __init__(self, rtsp_mode: str = "keep", rtsp_port: int = 0) -> None:
        """Configure; `start()` starts the RTSP server."""
        self.rtsp = RtspServer(rtsp_mode, rtsp_port)
        self.webrtc = WebRtcPeers()

    async def start(self) -> None:
        """Start the RTSP server (raises `RtspMediaError` when it cannot)."""
        await self.rtsp.start()

    async def close(self) -> None:
        """Stop everything."""
        await self.webrtc.close()
        await self.rtsp.close()

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
