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
    """12 RTSP cameras for an hour beside 3 on-demand WebRTC cameras: no gap at Google, no
    429, every RTSP camera running, no call for the WebRTC cameras."""
    await advance(hass, freezer, 3600)
    await hass.async_block_till_done()
    report = emulator.report()
    availability = report["availability"]
    assert len(availability["per_camera"]) == 12
    # Measured from each camera's first stream: none ever lapsed.
    assert availability["min"] == 1.0
    assert report["quota_rejections"] == 0
    assert report["peak_commands_60s"] <= 10
    coordinator = setup_integration.runtime_data.coordinator
    statuses = coordinator.scheduler.statuses()
    states = {d.rsplit("/", 1)[1]: s.state.value for d, s in statuses.items()}
    assert {k: v for k, v in states.items() if v != "running"} == {
        "webrtc-01": "on_demand",
        "webrtc-02": "on_demand",
        "battery-01": "on_demand",
    }
    assert state(hass, "sensor.room_01_camera_01_stream_state") == "running"
    assert state(hass, "binary_sensor.room_01_camera_01_degraded") == "off"
    executed = int(state(hass, "sensor.home_commands_executed"))
    failed = int(state(hass, "sensor.home_commands_failed"))
    assert executed + failed == report["accepted_commands"]
    assert failed == 0
    assert "executeCommand:GenerateWebRtcStream" not in report["calls"]
