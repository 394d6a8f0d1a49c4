"""Time-driven behaviour with freezer: streams kept alive for an hour, faults, restart."""

from __future__ import annotations

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from sdm_emulator import Emulator, default_devices

from .common import advance, state


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
@pytest.mark.parametrize("devices", [default_devices(12, webrtc=2, battery=1)])
async def test_many_cameras_kept_alive_for_an_hour(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    setup_integration: MockConfigEntry,
    emulator: Emulator,
) -> None:
    """15 cameras for an hour: no gap at Google, no 429, every camera running."""
    await advance(hass, freezer, 3600)
    await hass.async_block_till_done()
    report = emulator.report()
    availability = report["availability"]
    assert len(availability["per_camera"]) == 15
    # Measured from each camera's first stream: none ever lapsed.
    assert availability["min"] == 1.0
    assert report["quota_rejections"] == 0
    assert report["peak_commands_60s"] <= 10
    coordinator = setup_integration.runtime_data.coordinator
    assert {s.state.value for s in coordinator.data.statuses.values()} == {"running"}
    assert state(hass, "sensor.room_01_camera_01_stream_state") == "running"
    assert state(hass, "binary_sensor.room_01_camera_01_degraded") == "off"
    executed = int(state(hass, "sensor.home_commands_executed"))
    failed = int(state(hass, "sensor.home_commands_failed"))
    assert executed + failed == report["accepted_commands"]
    assert failed == 1  # the battery camera's one refused extension
    # The battery camera regenerates instead of extending.
    battery = coordinator.data.statuses[f"enterprises/{emulator.project_id}/devices/battery-01"]
    assert not battery.can_extend
