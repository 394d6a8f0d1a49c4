"""Services: restart_stream, stop_stream, start_stream, targeting camera entities."""

from __future__ import annotations

from collections.abc import Callable

from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import ATTR_ENTITY_ID
from homeassistant.core import HomeAssistant, ServiceCall, callback
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import config_validation as cv, entity_registry as er
import probatio

from .const import DOMAIN
from .coordinator import NestStreamsCoordinator

SERVICE_RESTART = "restart_stream"
SERVICE_STOP = "stop_stream"
SERVICE_START = "start_stream"

SCHEMA = probatio.Schema({probatio.Required(ATTR_ENTITY_ID): cv.entity_ids})


def _targets(call: ServiceCall) -> list[tuple[NestStreamsCoordinator, str]]:
    """The (coordinator, device id) of every targeted Nest Streams camera."""
    registry = er.async_get(call.hass)
    targets: list[tuple[NestStreamsCoordinator, str]] = []
    for entity_id in call.data[ATTR_ENTITY_ID]:
        entry = registry.async_get(entity_id)
        if entry is None or entry.platform != DOMAIN or entry.domain != "camera":
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="not_a_camera",
                translation_placeholders={"entity_id": entity_id},
            )
        config_entry = call.hass.config_entries.async_get_entry(entry.config_entry_id or "")
        if config_entry is None or config_entry.state is not ConfigEntryState.LOADED:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="not_loaded",
                translation_placeholders={"entity_id": entity_id},
            )
        coordinator: NestStreamsCoordinator = config_entry.runtime_data.coordinator
        device_id = entry.unique_id.removesuffix("-camera")
        if device_id not in coordinator.cameras:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="unknown_camera",
                translation_placeholders={"entity_id": entity_id},
            )
        targets.append((coordinator, device_id))
    return targets


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    """Register the services (once, in async_setup)."""

    def register(name: str, action: Callable[[NestStreamsCoordinator, str], None]) -> None:
        async def handle(call: ServiceCall) -> None:
            for coordinator, device_id in _targets(call):
                action(coordinator, device_id)

        hass.services.async_register(DOMAIN, name, handle, schema=SCHEMA)

    register(SERVICE_RESTART, NestStreamsCoordinator.async_restart_camera)
    register(SERVICE_STOP, NestStreamsCoordinator.async_stop_camera)
    register(SERVICE_START, NestStreamsCoordinator.async_start_camera)
