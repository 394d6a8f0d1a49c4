"""Real media behind the emulator's streams: an RTSP server and WebRTC peers (optional).

The real-time emulator (`python -m sdm_emulator`) turns media on by default; in-process and
virtual-time use (tests, benchmarks) runs without it and hands out URLs that point nowhere.
"""

from __future__ import annotations

from typing import Protocol

from ..config import DeviceSpec
from ..metrics import StreamRecord


class Media(Protocol):
    """What the emulator tells its media about streams, and asks of it."""

    def rtsp_url(self, record: StreamRecord) -> str:
        """The RTSP URL of `record` with its current stream token."""

    def rtsp_token(self, record: StreamRecord, device: DeviceSpec, token_expires: float) -> None:
        """`record` has a new stream token (generated or extended)."""

    def stream_ended(self, record: StreamRecord) -> None:
        """`record` was stopped: its sessions end now."""

    async def webrtc_answer(self, record: StreamRecord, device: DeviceSpec, offer: str) -> str:
        """A real peer's SDP answer to `offer`; the peer streams until `record` ends."""

    def info(self) -> dict[str, object]:
        """What the streams look like and what their clients did (for the metrics)."""
