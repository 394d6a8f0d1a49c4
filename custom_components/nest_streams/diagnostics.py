"""Diagnostics: the scheduler's state with tokens, stream tokens and auth= parameters redacted."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.core import HomeAssistant

from .coordinator import NestStreamsConfigEntry
from .redact import SECRET_KEYS, redact_value

TO_REDACT = {*SECRET_KEYS, "token", "name", "room", "title"}
"""The secret keys (listed once, in `redact.py`), the entry's OAuth token, and what names a
home: camera names, rooms and the entry's title."""


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: NestStreamsConfigEntry
) -> dict[str, Any]:
    """Return diagnostics for a config entry."""
    coordinator = entry.runtime_data.coordinator
    data = {
        "entry": {"data": dict(entry.data), "options": dict(entry.options)},
        "capacity": coordinator.capacity,
        "lead_seconds": coordinator.scheduler.lead(),
        "over_capacity": list(coordinator.scheduler.over_capacity),
        "user_stopped": sorted(coordinator.user_stopped),
        "queue": asdict(coordinator.stats),
        "cameras": {
            device_id: {
                "camera": asdict(camera),
                "status": asdict(status) if (status := coordinator.status(device_id)) else None,
            }
            for device_id, camera in coordinator.cameras.items()
        },
    }
    return redact_value(async_redact_data(data, TO_REDACT))  # type: ignore[no-any-return]
