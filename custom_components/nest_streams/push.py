"""What the entities read, and how the scheduler's changes reach them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback

from .core.models import CameraInfo, QueueStats, StreamStatus


@dataclass(frozen=True, slots=True)
class StreamsSnapshot:
    """What the entities read: immutable, replaced on every change."""

    cameras: Mapping[str, CameraInfo] = field(default_factory=dict)
    statuses: Mapping[str, StreamStatus] = field(default_factory=dict)
    stats: QueueStats = field(default_factory=QueueStats)
    over_capacity: tuple[str, ...] = ()


class EntityPush:
    """Writes the entities of the cameras that changed, and the hub's, once per loop turn.

    A command changes one camera and the queue, so only those entities are written (a
    device-list read still updates every entity, through the coordinator's listeners).
    `publish(changed)` brings the snapshot up to date first; it returns False while there is
    none yet (nothing listens before the first refresh).
    """

    def __init__(self, hass: HomeAssistant, publish: Callable[[set[str]], bool]) -> None:
        """Push through `publish`, on `hass`'s event loop."""
        self._hass = hass
        self._publish = publish
        self._pending = False
        self._changed: set[str] = set()
        """Cameras whose stream changed since the last push."""
        self._updates: dict[str | None, list[CALLBACK_TYPE]] = {}
        """Entities to update when a camera (by device id) or the hub (None) changed."""
        self._joined: list[Callable[[list[str]], None]] = []

    @callback
    def add_update_listener(self, device_id: str | None, update: CALLBACK_TYPE) -> CALLBACK_TYPE:
        """Call `update` when camera `device_id` changed (None: the hub's queue statistics)."""
        listeners = self._updates.setdefault(device_id, [])
        listeners.append(update)
        return lambda: listeners.remove(update)

    @callback
    def add_camera_listener(self, listener: Callable[[list[str]], None]) -> CALLBACK_TYPE:
        """Call `listener` with the device ids of cameras that join the project."""
        self._joined.append(listener)
        return lambda: self._joined.remove(listener)

    @callback
    def cameras_joined(self, device_ids: list[str]) -> None:
        """Tell the platforms about new cameras (they add their entities)."""
        for listener in list(self._joined):
            listener(device_ids)

    @callback
    def changed(self, device_id: str | None) -> None:
        """Note a change of camera `device_id` (None: the queue only); push on the next turn."""
        if device_id is not None:
            self._changed.add(device_id)
        if not self._pending:
            self._pending = True
            self._hass.loop.call_soon(self.push)

    @callback
    def push(self) -> None:
        """Publish the changes now and write the entities of the changed cameras and the hub."""
        self._pending = False
        changed, self._changed = self._changed, set()
        if not self._publish(changed):
            return
        for key in (*changed, None):
            for update in list(self._updates.get(key, ())):
                update()
