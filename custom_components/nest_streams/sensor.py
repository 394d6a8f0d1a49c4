"""Sensors: each camera's stream state, expiry, failures; the hub's queue statistics."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import EntityCategory, UnitOfTime
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.util import dt as dt_util

from .coordinator import NestStreamsConfigEntry, NestStreamsCoordinator
from .core.models import QueueStats, StreamProtocol, StreamState, StreamStatus
from .entity import CameraStreamEntity, NestStreamsEntity, hub_device_info, setup_camera_entities

PARALLEL_UPDATES = 0
NO_ERROR = "none"
"""Last error's state while there is none (translated by the frontend: the entity's state)."""

type StateValue = str | int | float | datetime | None


def _timestamp(epoch: float | None) -> datetime | None:
    return None if epoch is None else dt_util.utc_from_timestamp(epoch)


@dataclass(frozen=True, kw_only=True)
class CameraSensorDescription(SensorEntityDescription):
    """A sensor of one camera's stream."""

    value_fn: Callable[[StreamStatus], StateValue]
    kept_alive_only: bool = False
    """Only for cameras whose stream is kept alive (RTSP): an on-demand camera has no value
    to show most of the time, and "unknown" would read as a problem."""


@dataclass(frozen=True, kw_only=True)
class HubSensorDescription(SensorEntityDescription):
    """A sensor of the project's command queue."""

    value_fn: Callable[[QueueStats], StateValue]


CAMERA_SENSORS: tuple[CameraSensorDescription, ...] = (
    CameraSensorDescription(
        key="stream_state",
        translation_key="stream_state",
        device_class=SensorDeviceClass.ENUM,
        options=[state.value for state in StreamState],
        value_fn=lambda status: status.state.value,
    ),
    CameraSensorDescription(
        key="stream_expiry",
        translation_key="stream_expiry",
        device_class=SensorDeviceClass.TIMESTAMP,
        kept_alive_only=True,
        value_fn=lambda status: _timestamp(status.expires_at),
    ),
    CameraSensorDescription(
        key="consecutive_failures",
        translation_key="consecutive_failures",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda status: status.consecutive_failures,
    ),
    CameraSensorDescription(
        key="last_error",
        translation_key="last_error",
        entity_category=EntityCategory.DIAGNOSTIC,
        # "none" (shown translated) rather than unknown: no error is a normal condition.
        value_fn=lambda status: NO_ERROR if status.last_error is None else status.last_error[:255],
    ),
    CameraSensorDescription(
        key="last_extension",
        translation_key="last_extension",
        device_class=SensorDeviceClass.TIMESTAMP,
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
        value_fn=lambda status: _timestamp(status.last_extension),
    ),
)

HUB_SENSORS: tuple[HubSensorDescription, ...] = (
    HubSensorDescription(
        key="queue_depth",
        translation_key="queue_depth",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda stats: stats.depth,
    ),
    HubSensorDescription(
        key="commands_last_minute",
        translation_key="commands_last_minute",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda stats: stats.commands_last_minute,
    ),
    HubSensorDescription(
        key="average_wait",
        translation_key="average_wait",
        device_class=SensorDeviceClass.DURATION,
        native_unit_of_measurement=UnitOfTime.SECONDS,
        suggested_display_precision=1,
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda stats: round(stats.average_wait, 2),
    ),
    HubSensorDescription(
        key="effective_qpm",
        translation_key="effective_qpm",
        native_unit_of_measurement="commands/min",
        suggested_display_precision=1,
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda stats: stats.effective_qpm,
    ),
    HubSensorDescription(
        key="quota_rejections",
        translation_key="quota_rejections",
        state_class=SensorStateClass.TOTAL_INCREASING,
        value_fn=lambda stats: stats.quota_rejections,
    ),
    HubSensorDescription(
        key="quota_backoff_until",
        translation_key="quota_backoff_until",
        device_class=SensorDeviceClass.TIMESTAMP,
        # Without a back-off (nearly always) it has no value: diagnostic, off by default;
        # Quota rejections and Effective commands per minute show a storm too.
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
        value_fn=lambda stats: _timestamp(stats.backoff_until),
    ),
    HubSensorDescription(
        key="commands_executed",
        translation_key="commands_executed",
        state_class=SensorStateClass.TOTAL_INCREASING,
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
        value_fn=lambda stats: stats.executed,
    ),
    HubSensorDescription(
        key="commands_failed",
        translation_key="commands_failed",
        state_class=SensorStateClass.TOTAL_INCREASING,
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
        value_fn=lambda stats: stats.failed,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: NestStreamsConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the hub's sensors and every camera's sensors (also of cameras added later)."""
    coordinator = entry.runtime_data.coordinator
    async_add_entities(HubSensor(coordinator, description) for description in HUB_SENSORS)
    entry.async_on_unload(
        setup_camera_entities(
            coordinator,
            async_add_entities,
            lambda device_id: [
                CameraSensor(coordinator, device_id, description)
                for description in CAMERA_SENSORS
                if not description.kept_alive_only
                or coordinator.cameras[device_id].protocol is StreamProtocol.RTSP
            ],
        )
    )


class CameraSensor(CameraStreamEntity, SensorEntity):
    """A sensor of one camera's stream."""

    entity_description: CameraSensorDescription

    def __init__(
        self,
        coordinator: NestStreamsCoordinator,
        device_id: str,
        description: CameraSensorDescription,
    ) -> None:
        """Create the sensor."""
        super().__init__(coordinator, device_id, description.key)
        self.entity_description = description

    @property
    def native_value(self) -> StateValue:
        """The value from the camera's status."""
        status = self.status
        return None if status is None else self.entity_description.value_fn(status)


class HubSensor(NestStreamsEntity, SensorEntity):
    """A sensor of the project's command queue."""

    entity_description: HubSensorDescription

    def __init__(
        self, coordinator: NestStreamsCoordinator, description: HubSensorDescription
    ) -> None:
        """Create the sensor."""
        super().__init__(coordinator)
        self.entity_description = description
        self._attr_unique_id = f"{coordinator.project_id}-{description.key}"
        self._attr_device_info = hub_device_info(coordinator)

    @property
    def native_value(self) -> StateValue:
        """The value from the queue's statistics."""
        return self.entity_description.value_fn(self.coordinator.stats)
