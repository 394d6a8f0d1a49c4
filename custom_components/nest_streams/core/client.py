"""The small protocol the core needs from an SDM client."""

from __future__ import annotations

from typing import Protocol

from .models import CameraInfo, StreamHandle


class StreamClient(Protocol):
    """Generate, extend and stop live streams at Google.

    Implementations raise the errors of `core.errors` only.
    """

    async def generate(self, camera: CameraInfo, offer_sdp: str | None = None) -> StreamHandle:
        """Start a new stream (RTSP, or WebRTC with the viewer's offer)."""
        ...

    async def extend(self, camera: CameraInfo, stream: StreamHandle) -> StreamHandle:
        """Extend `stream`; the returned handle replaces it."""
        ...

    async def stop(self, camera: CameraInfo, stream: StreamHandle) -> None:
        """Stop `stream` at Google."""
        ...
