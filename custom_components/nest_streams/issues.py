"""The entry's footprint in HA's registries: the over-capacity repair issue, removed devices."""

from __future__ import annotations

from collections.abc import Iterable
import logging

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import device_registry as dr, issue_registry as ir

from .const import DOMAIN
from .core.scheduler import StreamScheduler

_LOGGER = logging.getLogger(__name__)


@callback
def async_update_over_capacity_issue(
    hass: HomeAssistant, entry: ConfigEntry, scheduler: StreamScheduler
) -> None:
    """Raise (or clear) the repair issue that names the cameras the quota cannot hold."""
    issue_id = f"over_capacity_{entry.entry_id}"
    over = scheduler.over_capacity
    if not over:
        ir.async_delete_issue(hass, DOMAIN, issue_id)
        return
    cameras = scheduler.cameras
    names = [cameras[device_id].name for device_id in over if device_id in cameras]
    ir.async_create_issue(
        hass,
        DOMAIN,
        issue_id,
        is_fixable=False,
        severity=ir.IssueSeverity.WARNING,
        translation_key="over_capacity",
        translation_placeholders={
            "cameras": ", ".join(names),
            "capacity": str(scheduler.capacity),
            "qpm": f"{scheduler.quota.admission:.3g}",
        },
    )


@callback
def async_remove_devices(
    hass: HomeAssistant, entry: ConfigEntry, device_ids: Iterable[str]
) -> None:
    """Detach the devices of cameras that left the project from the entry."""
    registry = dr.async_get(hass)
    for device_id in device_ids:
        device = registry.async_get_device_by_identifier((DOMAIN, device_id), entry.entry_id)
        if device is not None:
            _LOGGER.info("Camera %s left the project; removing its device", device.name)
            registry.async_remove_device(device.id)


@callback
def async_remove_stale_devices(hass: HomeAssistant, entry: ConfigEntry, keep: set[str]) -> None:
    """Remove the entry's devices whose identifier is not in `keep` (left while HA was down)."""
    registry = dr.async_get(hass)
    for device in dr.async_entries_for_config_entry(registry, entry.entry_id):
        if not any(domain == DOMAIN and key in keep for domain, key in device.identifiers):
            _LOGGER.info("Camera %s is no longer in the project; removing its device", device.name)
            registry.async_remove_device(device.id)


@callback
def has_registered_cameras(hass: HomeAssistant, entry: ConfigEntry) -> bool:
    """Whether the device registry holds camera devices of the entry (from earlier runs)."""
    devices = dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)
    return any(
        domain == DOMAIN and key != entry.unique_id
        for device in devices
        for domain, key in device.identifiers
    )
