"""What the emulator emulates: devices, limits, lifetimes."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
import math

from .faults import FaultConfig


class DeviceKind(StrEnum):
    """Kinds of device the emulator can hold."""

    RTSP_CAMERA = "rtsp"
    """A wired camera with RTSP streams (extendable)."""
    WEBRTC_CAMERA = "webrtc"
    """A wired camera with WebRTC streams (extendable)."""
    BATTERY_CAMERA = "battery"
    """A battery camera: WebRTC only, ExtendWebRtcStream fails with FAILED_PRECONDITION."""
    DOORBELL = "doorbell"
    """A wired doorbell with RTSP streams."""
    THERMOSTAT = "thermostat"
    """Not a camera."""


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    """One emulated device."""

    device_id: str
    kind: DeviceKind
    name: str
    room: str

    @property
    def protocols(self) -> tuple[str, ...]:
        """The SDM `supportedProtocols` of the device (empty when it is not a camera)."""
        if self.kind in (DeviceKind.RTSP_CAMERA, DeviceKind.DOORBELL):
            return ("RTSP",)
        if self.kind in (DeviceKind.WEBRTC_CAMERA, DeviceKind.BATTERY_CAMERA):
            return ("WEB_RTC",)
        return ()


def default_devices(
    cameras: int,
    *,
    webrtc: int = 0,
    battery: int = 0,
    doorbells: int = 0,
    thermostats: int = 1,
) -> list[DeviceSpec]:
    """`cameras` RTSP cameras plus the given numbers of other devices, with stable ids."""
    devices: list[DeviceSpec] = []

    def add(kind: DeviceKind, count: int, label: str) -> None:
        for index in range(1, count + 1):
            devices.append(
                DeviceSpec(
                    device_id=f"{kind.value}-{index:02d}",
                    kind=kind,
                    name=f"{label} {index:02d}",
                    room=f"Room {len(devices) + 1:02d}",
                )
            )

    add(DeviceKind.RTSP_CAMERA, cameras, "Camera")
    add(DeviceKind.WEBRTC_CAMERA, webrtc, "WebRTC Camera")
    add(DeviceKind.BATTERY_CAMERA, battery, "Battery Camera")
    add(DeviceKind.DOORBELL, doorbells, "Doorbell")
    add(DeviceKind.THERMOSTAT, thermostats, "Thermostat")
    return devices


TESTING_REFRESH_TOKEN_LIFETIME = 7 * 24 * 3600.0
"""Refresh tokens of an OAuth app in "Testing" publishing status expire after 7 days."""


@dataclass(slots=True)
class EmulatorConfig:
    """Everything configurable; Google's published values are the defaults."""

    project_id: str = "project-id-1"
    structure_name: str = "Home"
    devices: list[DeviceSpec] = field(default_factory=lambda: default_devices(3))
    stream_lifetime: float = 300.0
    access_token_lifetime: int = 3599
    refresh_token_lifetime: float | None = None
    """Seconds a refresh token works (None: until revoked). Google's documented value for
    projects in "Testing" publishing status: 7 days (`TESTING_REFRESH_TOKEN_LIFETIME`)."""
    execute_qpm: int = 10
    """executeCommand per project and user, per minute."""
    device_command_qpm: int = 5
    """Per device and trait command, per minute."""
    device_qph: int | None = None
    """executeCommand per device per hour, any command (None: no hourly limit). Google
    documents device limits "at QPM and QPH level" without numbers; one public claim: 100."""
    quota_window: str = "fixed"
    """How a minute is counted: "fixed" (documented: until the end of the minute that started
    with the first command) or "sliding" (any 60 s; stricter for bursts across a boundary)."""
    devices_get_qpm: int = 10
    devices_list_qpm: int = 5
    structures_qpm: int = 5
    video_size: str = "1280x720"
    """Wired cameras' `maxVideoResolution` (WxH), the size the RTSP server's picture has."""
    rtsp_host: str = "127.0.0.1:8554"
    """Host in the RTSP URLs handed out (`rtsps://<host>/sdm_live_stream/<id>?auth=<token>`)."""
    faults: FaultConfig = field(default_factory=FaultConfig)
    seed: int = 0
    foreign_qpm: float = 0.0
    """Another app spends the project's executeCommand quota at this rate (0: nobody)."""
    foreign_from: float = 0.0
    """Seconds after start when the other app begins."""
    foreign_until: float = math.inf
    """Seconds after start when the other app goes quiet."""
