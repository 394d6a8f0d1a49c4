"""Persistence across restarts, repairs, and cameras joining or leaving the project."""

from __future__ import annotations

import json
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import device_registry as dr, issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.nest_streams.const import DOMAIN
from sdm_emulator import Emulator, default_devices
from sdm_emulator.config import DeviceKind, DeviceSpec

from .common import advance, state


@pytest.mark.usefixtures("setup_credentials")
async def test_restart_extends_saved_streams_instead_of_generating(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    config_entry: MockConfigEntry,
    emulator: Emulator,
    hass_storage: dict[str, Any],
) -> None:
    """Stream tokens and user-stopped cameras saved before a restart are used after it."""
    config_entry.add_to_hass(hass)
    # What the integration saved before HA stopped: two live streams and a stopped camera.
    streams = {}
    for device in ("rtsp-01", "rtsp-02"):
        reply = await emulator.handle(
            "POST",
            f"/v1/enterprises/{emulator.project_id}/devices/{device}:executeCommand",
            {},
            {"Authorization": f"Bearer {config_entry.data['token']['access_token']}"},
            b'{"command": "sdm.devices.commands.CameraLiveStream.GenerateRtspStream"}',
        )
        results = json.loads(reply.body)["results"]
        streams[f"enterprises/{emulator.project_id}/devices/{device}"] = {
            "protocol": "RTSP",
            "expires_at": emulator.clock.now() + 300,
            "url": results["streamUrls"]["rtspUrl"],
            "extension_token": results["streamExtensionToken"],
            "session_id": None,
        }
    streams["enterprises/x/devices/garbage"] = {"protocol": "SMOKE"}
    hass_storage[f"{DOMAIN}.{config_entry.entry_id}"] = {
        "version": 1,
        "key": f"{DOMAIN}.{config_entry.entry_id}",
        "data": {
            "streams": streams,
            "stopped": [f"enterprises/{emulator.project_id}/devices/rtsp-03"],
        },
    }
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await advance(hass, freezer, 300)
    calls = emulator.report()["calls"]
    # Only the WebRTC camera generated; rtsp-01/02 were extended, rtsp-03 stays stopped.
    assert calls["executeCommand:GenerateRtspStream"] == 2  # the two made above
    assert calls["executeCommand:ExtendRtspStream"] == 2
    assert state(hass, "sensor.room_01_camera_01_stream_state") == "running"
    assert state(hass, "sensor.room_03_camera_03_stream_state") == "stopped"
    # The store now holds the new tokens and the stopped camera.
    await advance(hass, freezer, 15)
    saved = hass_storage[f"{DOMAIN}.{config_entry.entry_id}"]["data"]
    assert f"enterprises/{emulator.project_id}/devices/rtsp-01" in saved["streams"]
    assert saved["stopped"] == [f"enterprises/{emulator.project_id}/devices/rtsp-03"]


@pytest.mark.usefixtures("setup_credentials")
async def test_corrupt_store_is_ignored(
    hass: HomeAssistant, config_entry: MockConfigEntry, hass_storage: dict[str, Any]
) -> None:
    config_entry.add_to_hass(hass)
    hass_storage[f"{DOMAIN}.{config_entry.entry_id}"] = {
        "version": 1,
        "key": f"{DOMAIN}.{config_entry.entry_id}",
        "data": {"streams": ["not", "a", "dict"], "stopped": "nope"},
    }
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    assert config_entry.runtime_data.coordinator.user_stopped == set()


@pytest.mark.parametrize("devices", [default_devices(6)])
@pytest.mark.parametrize("options", [{"qpm": 1}])
async def test_over_capacity_raises_a_repair_issue(
    hass: HomeAssistant,
    setup_integration: MockConfigEntry,
    issue_registry: ir.IssueRegistry,
) -> None:
    """At 1 command per minute only 4 cameras fit: the other 2 are named in a repair issue."""
    issue = issue_registry.async_get_issue(DOMAIN, f"over_capacity_{setup_integration.entry_id}")
    assert issue is not None
    assert issue.translation_placeholders == {
        "cameras": "Camera 05, Camera 06",
        "capacity": "4",
        "qpm": "1",
    }
    assert state(hass, "sensor.room_05_camera_05_stream_state") == "stopped"
    # Stopping a kept-alive camera makes room: the issue goes away.
    for entity in ("camera.room_01_camera_01", "camera.room_02_camera_02"):
        await hass.services.async_call(DOMAIN, "stop_stream", {"entity_id": entity}, blocking=True)
    assert (
        issue_registry.async_get_issue(DOMAIN, f"over_capacity_{setup_integration.entry_id}")
        is None
    )


async def test_cameras_join_and_leave(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    setup_integration: MockConfigEntry,
    emulator: Emulator,
    device_registry: dr.DeviceRegistry,
) -> None:
    """The device list is re-read every 15 minutes: new cameras get entities, gone ones go."""
    emulator.add_device(DeviceSpec("rtsp-09", DeviceKind.RTSP_CAMERA, "Garage", "Garage"))
    emulator.remove_device("rtsp-02")
    await advance(hass, freezer, 15 * 60 + 30)
    assert state(hass, "sensor.garage_garage_stream_state") == "running"
    entry_id = setup_integration.entry_id
    prefix = f"enterprises/{emulator.project_id}/devices"
    assert device_registry.async_get_device_by_identifier((DOMAIN, f"{prefix}/rtsp-09"), entry_id)
    assert not device_registry.async_get_device_by_identifier(
        (DOMAIN, f"{prefix}/rtsp-02"), entry_id
    )
    assert hass.states.get("sensor.room_02_camera_02_stream_state") is None
    # A failed re-read changes nothing.
    emulator.config.faults.rate_503 = 1.0
    await advance(hass, freezer, 15 * 60)
    assert len(setup_integration.runtime_data.coordinator.cameras) == 4


@pytest.mark.parametrize("devices", [default_devices(5)])
@pytest.mark.parametrize("options", [{"qpm": 1}])
async def test_start_cannot_bypass_the_quota(
    hass: HomeAssistant, setup_integration: MockConfigEntry
) -> None:
    """Starting or restarting a camera the quota cannot hold leaves it stopped."""
    for service in ("start_stream", "restart_stream"):
        with pytest.raises(ServiceValidationError) as raised:
            await hass.services.async_call(
                DOMAIN, service, {"entity_id": "camera.room_05_camera_05"}, blocking=True
            )
        assert raised.value.translation_key == "over_capacity"
        assert raised.value.translation_placeholders == {
            "entity_id": "camera.room_05_camera_05",
            "capacity": "4",
        }
        assert state(hass, "sensor.room_05_camera_05_stream_state") == "stopped"
