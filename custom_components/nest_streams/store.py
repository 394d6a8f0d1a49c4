"""What one entry keeps across restarts and reloads: cameras, live streams, user-stopped cameras."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers.storage import Store

from .const import DOMAIN
from .core.models import CameraInfo, StreamHandle, StreamProtocol

STORE_VERSION = 1
SAVE_DELAY = 10


@dataclass(slots=True)
class SavedState:
    """The streams (by device id) and the cameras the user stopped."""

    streams: dict[str, StreamHandle] = field(default_factory=dict)
    stopped: set[str] = field(default_factory=set)
    cannot_extend: set[str] = field(default_factory=set)
    """Cameras Google told that they cannot extend WebRTC sessions (battery cameras)."""
    cameras: list[CameraInfo] = field(default_factory=list)
    """The cameras last listed: the next start keeps their streams before a list is read."""


def _handle_to_json(handle: StreamHandle) -> dict[str, Any]:
    return {
        "protocol": handle.protocol.value,
        "expires_at": handle.expires_at,
        "url": handle.url,
        "extension_token": handle.extension_token,
        "session_id": handle.session_id,
    }


def _handle_from_json(data: Mapping[str, Any]) -> StreamHandle | None:
    try:
        return StreamHandle(
            protocol=StreamProtocol(data["protocol"]),
            expires_at=float(data["expires_at"]),
            url=data.get("url"),
            extension_token=data.get("extension_token"),
            session_id=data.get("session_id"),
        )
    except KeyError, TypeError, ValueError:
        return None


def _camera_to_json(camera: CameraInfo) -> dict[str, Any]:
    return {
        "device_id": camera.device_id,
        "name": camera.name,
        "protocols": [protocol.value for protocol in camera.protocols],
        "model": camera.model,
        "room": camera.room,
    }


def _camera_from_json(data: Mapping[str, Any]) -> CameraInfo | None:
    try:
        protocols = tuple(StreamProtocol(protocol) for protocol in data["protocols"])
        if not protocols or not all(isinstance(data[key], str) for key in ("device_id", "name")):
            return None
        return CameraInfo(
            device_id=data["device_id"],
            name=data["name"],
            protocols=protocols,
            model=data.get("model"),
            room=data.get("room"),
        )
    except KeyError, TypeError, ValueError:
        return None


class StreamStore:
    """The entry's `.storage/nest_streams.<entry_id>` file."""

    def __init__(self, hass: HomeAssistant, entry_id: str) -> None:
        """Open the entry's store (nothing is read yet)."""
        self._store: Store[dict[str, Any]] = Store(hass, STORE_VERSION, f"{DOMAIN}.{entry_id}")

    async def async_load(self) -> SavedState:
        """What was saved; anything unreadable is left out."""
        data = await self._store.async_load() or {}
        state = SavedState()
        streams = data.get("streams", {})
        if isinstance(streams, dict):
            for device_id, raw in streams.items():
                if isinstance(raw, dict) and (handle := _handle_from_json(raw)) is not None:
                    state.streams[device_id] = handle
        for key in ("stopped", "cannot_extend"):
            if isinstance(ids := data.get(key, []), list):
                setattr(state, key, {str(device_id) for device_id in ids})
        if isinstance(cameras := data.get("cameras", []), list):
            state.cameras = [
                camera
                for raw in cameras
                if isinstance(raw, dict) and (camera := _camera_from_json(raw)) is not None
            ]
        return state

    @staticmethod
    def _to_json(state: SavedState) -> dict[str, Any]:
        return {
            "streams": {
                device_id: _handle_to_json(handle) for device_id, handle in state.streams.items()
            },
            "stopped": sorted(state.stopped),
            "cannot_extend": sorted(state.cannot_extend),
            "cameras": [_camera_to_json(camera) for camera in state.cameras],
        }

    def async_delay_save(self, state: Callable[[], SavedState]) -> None:
        """Save `state()` a few seconds from now (changes in between are coalesced)."""
        self._store.async_delay_save(lambda: self._to_json(state()), SAVE_DELAY)

    async def async_save(self, state: SavedState) -> None:
        """Save now."""
        await self._store.async_save(self._to_json(state))

    async def async_remove(self) -> None:
        """Delete the file (the entry was removed)."""
        await self._store.async_remove()
