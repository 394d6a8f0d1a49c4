"""Base entities: one device per camera, one hub device per Google project."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace

from homeassistant.core import callback
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo
from homeassistant.helpers.entity import Entity
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .const import DOMAIN
from .coordinator import HUB, NestStreamsCoordinator
from .core.models import CameraInfo, StreamStatus

MODELS = {
    "sdm.devices.types.CAMERA": "Camera",
    "sdm.devices.types.DOORBELL": "Doorbell",
    "sdm.devices.types.DISPLAY": "Display",
}


def hub_device_info(coordinator: NestStreamsCoordinator) -> DeviceInfo:
    """The hub device of a Google project: it carries the queue's statistics."""
    return DeviceInfo(
        identifiers={(DOMAIN, coordinator.project_id)},
        name=coordinator.config_entry.title,
        manufacturer="Google",
        model="Device Access project",
        entry_type=DeviceEntryType.SERVICE,
        configuration_url=(
            f"https://console.nest.google.com/device-access/project/{coordinator.project_id}"
        ),
    )


def camera_device_info(coordinator: NestStreamsCoordinator, camera: CameraInfo) -> DeviceInfo:
    """The device of one camera, named by its custom name or room."""
    return DeviceInfo(
        identifiers={(DOMAIN, camera.device_id)},
        name=camera.name,
        manufacturer="Google Nest",
        model=MODELS.get(camera.model or "", "Camera"),
        suggested_area=camera.room,
        via_device_id=dr.async_get_device_id_by_identifier(
            coordinator.hass,
            (DOMAIN, coordinator.project_id),
            config_entry_id=coordinator.config_entry.entry_id,
        ),
    )


class NestStreamsEntity(CoordinatorEntity[NestStreamsCoordinator]):
    """An entity of a Nest Streams config entry: it listens to its camera's changes (or, as
    `HUB`, the queue's) and to every device-list read."""

    _attr_has_entity_name = True

    def __init__(self, coordinator: NestStreamsCoordinator, context: str = HUB) -> None:
        """Listen with `context`: a camera's device id, or `HUB`."""
        super().__init__(coordinator, context)

    @property
    def available(self) -> bool:
        """Available whatever the last device-list read: the streams and the queue go on
        without it (HA logs a failed read once, and it is retried)."""
        return True


class CameraStreamEntity(NestStreamsEntity):
    """An entity of one camera's stream."""

    def __init__(self, coordinator: NestStreamsCoordinator, device_id: str, key: str) -> None:
        """Attach to the camera `device_id`."""
        super().__init__(coordinator, device_id)
        self.device_id = device_id
        self._attr_unique_id = f"{device_id}-{key}"
        self._attr_device_info = camera_device_info(coordinator, coordinator.cameras[device_id])

    @property
    def status(self) -> StreamStatus | None:
        """The camera's current stream status; while the stream itself is fine, a problem of
        its live picture (a refused certificate, an unreachable stream server) is its error."""
        status = self.coordinator.status(self.device_id)
        problem = self.coordinator.live.problems.get(self.device_id)
        if status is not None and status.last_error is None and problem:
            return replace(status, last_error=problem)
        return status

    @property
    def available(self) -> bool:
        """Available while the camera is in the project (the last device list read)."""
        return self.device_id in self.coordinator.data


def setup_camera_entities(
    coordinator: NestStreamsCoordinator,
    add_entities: Callable[[Iterable[Entity]], None],
    factory: Callable[[str], Iterable[Entity]],
) -> Callable[[], None]:
    """Add `factory(device_id)` for every camera now and for every camera that a device-list
    read brings later (also one that left and came back).

    Returns the function that stops listening for new cameras.
    """
    added: set[str] = set()

    @callback
    def add_new() -> None:
        added.intersection_update(coordinator.cameras)
        new = [device_id for device_id in coordinator.cameras if device_id not in added]
        added.update(new)
        if new:
            add_entities([entity for device_id in new for entity in factory(device_id)])

    add_new()
    return coordinator.async_add_listener(add_new)
