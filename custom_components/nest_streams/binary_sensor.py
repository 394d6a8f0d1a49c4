"""The problem binary sensor of each camera: on while its stream is degraded."""

from __future__ import annotations

from homeassistant.components.binary_sensor import (
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.components.binary_sensor.const import BinarySensorDeviceClass
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import NestStreamsConfigEntry, NestStreamsCoordinator
from .core.models import StreamState
from .entity import CameraStreamEntity, setup_camera_entities

PARALLEL_UPDATES = 0

DEGRADED = BinarySensorEntityDescription(
    key="degraded", translation_key="degraded", device_class=BinarySensorDeviceClass.PROBLEM
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: NestStreamsConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add a degraded sensor per camera (also for cameras added later)."""
    coordinator = entry.runtime_data.coordinator
    entry.async_on_unload(
        setup_camera_entities(
            coordinator,
            async_add_entities,
            lambda device_id: [DegradedSensor(coordinator, device_id)],
        )
    )


class DegradedSensor(CameraStreamEntity, BinarySensorEntity):
    """On when the camera failed too often and is only retried every few minutes."""

    entity_description = DEGRADED

    def __init__(self, coordinator: NestStreamsCoordinator, device_id: str) -> None:
        """Create the sensor."""
        super().__init__(coordinator, device_id, DEGRADED.key)

    @property
    def is_on(self) -> bool | None:
        """Whether the stream is degraded."""
        status = self.status
        return None if status is None else status.state is StreamState.DEGRADED
