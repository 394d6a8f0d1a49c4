"""Entity services of the camera entities: restart_stream, stop_stream, start_stream.

Registered as platform entity services (as HA core's Blink does), so entity, device, area and
label targets all work and HA resolves them.
"""

from __future__ import annotations

from homeassistant.components.camera.const import DOMAIN as CAMERA_DOMAIN
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import service

from .const import DOMAIN

SERVICE_RESTART = "restart_stream"
SERVICE_STOP = "stop_stream"
SERVICE_START = "start_stream"

SERVICES = {
    SERVICE_RESTART: "async_restart_stream",
    SERVICE_STOP: "async_stop_stream",
    SERVICE_START: "async_start_stream",
}


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    """Register the services (once, in async_setup)."""
    for name, method in SERVICES.items():
        service.async_register_platform_entity_service(
            hass, DOMAIN, name, entity_domain=CAMERA_DOMAIN, schema=None, func=method
        )
