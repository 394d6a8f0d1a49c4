"""Immutable values the core hands out."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum


class StreamProtocol(StrEnum):
    """How a camera streams."""

    RTSP = "RTSP"
    WEB_RTC = "WEB_RTC"


@dataclass(frozen=True, slots=True)
class CameraInfo:
    """A camera as the device list describes it."""

    device_id: str
    """Full resource name, `enterprises/{project}/devices/{id}`."""
    name: str
    protocols: tuple[StreamProtocol, ...] = (StreamProtocol.RTSP,)
    model: str | None = None
    room: str | None = None

    @property
    def protocol(self) -> StreamProtocol:
        """How the camera streams: WebRTC when it lists WEB_RTC (Google: "if this field
        contains WEB_RTC, only WEB_RTC commands are supported"), else RTSP."""
        if StreamProtocol.WEB_RTC in self.protocols:
            return StreamProtocol.WEB_RTC
        return StreamProtocol.RTSP


@dataclass(frozen=True, slots=True)
class StreamHandle:
    """One live stream at Google."""

    protocol: StreamProtocol
    expires_at: float
    """Epoch seconds."""
    url: str | None = None
    """RTSP URL with the current `auth=` stream token."""
    extension_token: str | None = None
    session_id: str | None = None
    answer_sdp: str | None = None


class StreamState(StrEnum):
    """States of a camera's stream."""

    STARTING = "starting"
    RUNNING = "running"
    FAILED = "failed"
    DEGRADED = "degraded"
    STOPPED = "stopped"
    ON_DEMAND = "on_demand"
    """A WebRTC-only camera: sessions exist only while someone watches (never kept alive)."""
    HOURLY_LIMIT = "hourly_limit"
    """Without a stream, and the camera's commands for this hour are spent: it waits."""


@dataclass(frozen=True, slots=True)
class StreamStatus:
    """What a camera's stream looks like right now."""

    device_id: str
    state: StreamState
    consecutive_failures: int = 0
    last_error: str | None = None
    last_attempt: float | None = None
    last_extension: float | None = None
    expires_at: float | None = None
    stream_url: str | None = None
    session_id: str | None = None
    can_extend: bool = True
    next_action_at: float | None = None


class CommandKind(IntEnum):
    """Command types, in priority order (lower runs first)."""

    EXTEND = 0
    GENERATE = 1
    STOP = 2


@dataclass(frozen=True, slots=True)
class QueueStats:
    """Statistics of a command queue."""

    depth: int = 0
    enqueued: int = 0
    executed: int = 0
    failed: int = 0
    extends: int = 0
    generates: int = 0
    stops: int = 0
    quota_rejections: int = 0
    average_wait: float = 0.0
    commands_last_minute: int = 0
    backoff_until: float | None = None
    effective_qpm: float | None = None
    """Commands per minute we send now: the quota, less what another app seems to use."""
    late_answers: int = 0
    """Commands Google answered after they counted as unanswered (their answer was used)."""
