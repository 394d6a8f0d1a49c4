"""Persistence across restarts, repairs, and cameras joining or leaving the project."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import (
    device_registry as dr,
    entity_registry as er,
    issue_registry as ir,
)
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import WebSocketGenerator

from custom_components.nest_streams.const import DOMAIN
from custom_components.nest_streams.coordinator import HUB
from custom_components.nest_streams.store import StreamStore
from sdm_emulator import Emulator, default_devices
from sdm_emulator.config import DeviceKind, DeviceSpec
from sdm_emulator.quota import ForeignClient

from .common import CHROME_OFFER, PROJECT_ID, advance, logged, state


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
        "data": {
            "streams": ["not", "a", "dict"],
            "stopped": "nope",
            "cameras": [
                "nope",
                {"device_id": "enterprises/x/devices/a", "name": "A", "protocols": []},
                {"device_id": "enterprises/x/devices/b", "name": "B", "protocols": ["SMOKE"]},
                {"device_id": 7, "name": "C", "protocols": ["RTSP"]},
                {"name": "D", "protocols": ["RTSP"]},
            ],
        },
    }
    saved = await StreamStore(hass, config_entry.entry_id).async_load()
    assert saved.cameras == []  # none of them is readable
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    assert config_entry.runtime_data.coordinator.user_stopped == set()
    # So the set-up read the list (4 cameras).
    assert sorted(config_entry.runtime_data.coordinator.cameras) == sorted(
        f"enterprises/{PROJECT_ID}/devices/{device}"
        for device in ("rtsp-01", "rtsp-02", "rtsp-03", "webrtc-01")
    )


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


@pytest.mark.parametrize("devices", [default_devices(6)])
@pytest.mark.parametrize("options", [{"qpm": 4}])
async def test_another_app_on_the_project_shrinks_admission_until_it_goes_quiet(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    emulator: Emulator,
    setup_integration: MockConfigEntry,
    issue_registry: ir.IssueRegistry,
) -> None:
    """Another app spends the project's quota: the effective rate drops, the cameras that no
    longer fit are named in the repair issue; once it is quiet, everything comes back."""
    emulator.config.execute_qpm = 4
    issue_id = f"over_capacity_{setup_integration.entry_id}"
    await advance(hass, freezer, 120)  # all 6 run at 4 commands a minute
    assert state(hass, "sensor.home_effective_commands_per_minute") == "4.0"
    emulator.foreign = ForeignClient(4, emulator.elapsed(), emulator.elapsed() + 900, seed=1)
    await advance(hass, freezer, 600)  # before the device list is read again (15 minutes)
    effective = float(state(hass, "sensor.home_effective_commands_per_minute"))
    assert effective < 4
    issue = issue_registry.async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_placeholders is not None
    assert "Camera 06" in issue.translation_placeholders["cameras"]
    assert float(issue.translation_placeholders["qpm"]) <= effective
    assert state(hass, "sensor.room_06_camera_06_stream_state") == "stopped"
    assert state(hass, "sensor.room_01_camera_01_stream_state") == "running"
    await advance(hass, freezer, 3000)  # quiet for 30 minutes, then a step a minute
    assert state(hass, "sensor.home_effective_commands_per_minute") == "4.0"
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is None
    assert state(hass, "sensor.room_06_camera_06_stream_state") == "running"


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


async def test_an_empty_device_list_removes_nothing(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    setup_integration: MockConfigEntry,
    emulator: Emulator,
    device_registry: dr.DeviceRegistry,
    entity_registry: er.EntityRegistry,
) -> None:
    """One 200 `{}` answer: every device, entity and stream stays; nothing is regenerated."""
    await advance(hass, freezer, 60)
    devices = len(dr.async_entries_for_config_entry(device_registry, setup_integration.entry_id))
    entities = len(er.async_entries_for_config_entry(entity_registry, setup_integration.entry_id))
    generations = emulator.report()["calls"]["executeCommand:GenerateRtspStream"]
    emulator.config.faults.empty_device_lists = 1
    await advance(hass, freezer, 15 * 60)
    assert emulator.config.faults.empty_device_lists == 0  # the empty answer was read
    entry_id = setup_integration.entry_id
    assert len(dr.async_entries_for_config_entry(device_registry, entry_id)) == devices
    assert len(er.async_entries_for_config_entry(entity_registry, entry_id)) == entities
    assert emulator.report()["calls"]["executeCommand:GenerateRtspStream"] == generations
    assert emulator.report()["calls"].get("executeCommand:StopRtspStream", 0) == 0
    assert state(hass, "sensor.room_01_camera_01_stream_state") == "running"
    # The streams are still extended afterwards (the adapter kept its devices).
    extensions = emulator.report()["calls"]["executeCommand:ExtendRtspStream"]
    await advance(hass, freezer, 600)
    assert emulator.report()["calls"]["executeCommand:ExtendRtspStream"] >= extensions + 6
    assert emulator.report()["calls"]["executeCommand:GenerateRtspStream"] == generations
    assert emulator.report()["availability"]["min"] == 1.0


async def test_a_failed_re_read_keeps_entities_available(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    setup_integration: MockConfigEntry,
    emulator: Emulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An HTML 500 on a requested re-read: no entity turns unavailable, logged once."""
    assert await async_setup_component(hass, "homeassistant", {})
    await advance(hass, freezer, 60)
    emulator.config.faults.failed_device_lists = 2
    for _ in range(2):
        await hass.services.async_call(
            "homeassistant",
            "update_entity",
            {"entity_id": "sensor.room_01_camera_01_stream_state"},
            blocking=True,
        )
        await advance(hass, freezer, 15)
    assert emulator.config.faults.failed_device_lists == 0
    assert state(hass, "sensor.room_01_camera_01_stream_state") == "running"
    assert state(hass, "camera.room_01_camera_01") == "streaming"
    assert state(hass, "sensor.home_queue_depth") != "unavailable"
    assert logged(caplog, "Could not read the device list") == 1


@pytest.mark.usefixtures("setup_credentials")
async def test_devices_removed_while_ha_was_down_are_removed_at_start(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    emulator: Emulator,
    device_registry: dr.DeviceRegistry,
) -> None:
    """A device of the entry that the first list no longer names is removed at set-up."""
    config_entry.add_to_hass(hass)
    stale = device_registry.async_get_or_create(
        config_entry_id=config_entry.entry_id,
        identifiers={(DOMAIN, f"enterprises/{emulator.project_id}/devices/gone")},
        name="Gone",
    )
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    assert device_registry.async_get(stale.id) is None
    hub = device_registry.async_get_device_by_identifier(
        (DOMAIN, emulator.project_id), config_entry.entry_id
    )
    assert hub is not None
    assert await hass.config_entries.async_unload(config_entry.entry_id)


async def test_manual_removal_only_of_cameras_that_left(
    hass: HomeAssistant,
    setup_integration: MockConfigEntry,
    emulator: Emulator,
    device_registry: dr.DeviceRegistry,
    hass_ws_client: WebSocketGenerator,
) -> None:
    """A camera still in the project (or the hub) cannot be removed; one that left can."""
    assert await async_setup_component(hass, "config", {})
    entry_id = setup_integration.entry_id
    prefix = f"enterprises/{emulator.project_id}/devices"
    present = device_registry.async_get_device_by_identifier(
        (DOMAIN, f"{prefix}/rtsp-01"), entry_id
    )
    hub = device_registry.async_get_device_by_identifier((DOMAIN, emulator.project_id), entry_id)
    left = device_registry.async_get_or_create(
        config_entry_id=entry_id, identifiers={(DOMAIN, f"{prefix}/old")}, name="Old"
    )
    assert present is not None
    assert hub is not None
    client = await hass_ws_client(hass)
    for device, removable in ((present, False), (hub, False), (left, True)):
        await client.send_json_auto_id(
            {
                "type": "config/device_registry/remove_config_entry",
                "config_entry_id": entry_id,
                "device_id": device.id,
            }
        )
        response = await client.receive_json()
        assert response["success"] is removable
        assert (device_registry.async_get(device.id) is None) is removable


async def _watch(hass: HomeAssistant, freezer: FrozenDateTimeFactory, seconds: float) -> None:
    """A viewer watches the battery camera for `seconds`, then leaves."""
    camera = hass.data["camera"].get_entity("camera.room_02_battery_camera_01")
    offer = asyncio.create_task(
        camera.async_handle_async_webrtc_offer(CHROME_OFFER, "viewer", lambda _: None)
    )
    await advance(hass, freezer, 10)
    await offer
    await advance(hass, freezer, seconds)
    camera.close_webrtc_session("viewer")


@pytest.mark.parametrize("devices", [default_devices(1, battery=1)])
async def test_a_battery_camera_is_remembered_across_restarts(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    setup_integration: MockConfigEntry,
    emulator: Emulator,
    hass_storage: dict[str, Any],
) -> None:
    """Google's 'not supported' answer is saved: after a reload no extension is wasted."""
    battery = f"enterprises/{emulator.project_id}/devices/battery-01"
    await advance(hass, freezer, 10)
    assert "executeCommand:GenerateWebRtcStream" not in emulator.report()["calls"]
    await _watch(hass, freezer, 320)
    assert emulator.report()["calls"]["executeCommand:ExtendWebRtcStream"] == 1
    assert await hass.config_entries.async_unload(setup_integration.entry_id)
    saved = hass_storage[f"{DOMAIN}.{setup_integration.entry_id}"]["data"]
    assert saved["cannot_extend"] == [battery]
    assert await hass.config_entries.async_setup(setup_integration.entry_id)
    await _watch(hass, freezer, 900)
    calls = emulator.report()["calls"]
    assert calls["executeCommand:ExtendWebRtcStream"] == 1
    # One session per view: never regenerated (its new answer could not reach the viewer).
    assert calls["executeCommand:GenerateWebRtcStream"] == 2
    assert setup_integration.runtime_data.coordinator.scheduler.cannot_extend() == {battery}


@pytest.mark.usefixtures("setup_credentials")
async def test_an_empty_list_at_a_restart_is_retried(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    config_entry: MockConfigEntry,
    emulator: Emulator,
    device_registry: dr.DeviceRegistry,
) -> None:
    """Cameras known from before and an empty first list: not ready, retried, then loaded."""
    config_entry.add_to_hass(hass)
    device_registry.async_get_or_create(
        config_entry_id=config_entry.entry_id,
        identifiers={(DOMAIN, f"enterprises/{emulator.project_id}/devices/rtsp-01")},
        name="Camera 01",
    )
    emulator.config.faults.empty_device_lists = 1
    assert not await hass.config_entries.async_setup(config_entry.entry_id)
    assert config_entry.state is ConfigEntryState.SETUP_RETRY
    await advance(hass, freezer, 30)
    assert config_entry.state is ConfigEntryState.LOADED
    assert len(config_entry.runtime_data.coordinator.cameras) == 4
    assert device_registry.async_get_device_by_identifier(
        (DOMAIN, f"enterprises/{emulator.project_id}/devices/rtsp-01"), config_entry.entry_id
    )


async def test_a_restart_does_not_wait_for_the_device_list(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    setup_integration: MockConfigEntry,
    emulator: Emulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Set up from the saved cameras: failed list reads at a restart cost no stream or entity.

    The list is read in the background, and a failed read is retried within a minute.
    """
    entry = setup_integration
    await advance(hass, freezer, 60)
    generations = emulator.report()["calls"]["executeCommand:GenerateRtspStream"]
    lists = emulator.report()["calls"]["devices.list"]
    assert await hass.config_entries.async_unload(entry.entry_id)
    emulator.config.faults.failed_device_lists = 2
    assert await hass.config_entries.async_setup(entry.entry_id)
    assert entry.state is ConfigEntryState.LOADED
    assert state(hass, "sensor.room_01_camera_01_stream_state") == "running"
    assert state(hass, "camera.room_01_camera_01") == "streaming"
    await advance(hass, freezer, 10)
    assert emulator.config.faults.failed_device_lists == 1  # read at once, failed
    await advance(hass, freezer, 60)
    assert emulator.config.faults.failed_device_lists == 0  # retried within the minute
    await advance(hass, freezer, 60)
    assert emulator.report()["calls"]["devices.list"] == lists + 3  # then a good read
    await advance(hass, freezer, 600)
    assert emulator.report()["calls"]["executeCommand:GenerateRtspStream"] == generations
    assert emulator.report()["availability"]["min"] == 1.0
    assert state(hass, "sensor.room_01_camera_01_stream_state") == "running"
    assert logged(caplog, "Could not read the device list") == 1


async def test_a_camera_change_updates_that_camera_and_the_hub_only(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    setup_integration: MockConfigEntry,
) -> None:
    """A command changes one camera: its entities and the hub's are written, no others."""
    coordinator = setup_integration.runtime_data.coordinator
    await advance(hass, freezer, 60)
    first, second = (f"enterprises/{PROJECT_ID}/devices/rtsp-0{n}" for n in (1, 2))
    calls: list[str] = []
    for unsubscribe in (
        coordinator.async_add_listener(lambda: calls.append("every entity")),
        coordinator.async_add_listener(lambda: calls.append("first"), first),
        coordinator.async_add_listener(lambda: calls.append("second"), second),
        coordinator.async_add_listener(lambda: calls.append("hub"), HUB),
    ):
        setup_integration.async_on_unload(unsubscribe)
    coordinator.scheduler.stream(first).restart()
    await advance(hass, freezer, 10)
    assert {"first", "hub"} <= set(calls)
    assert "second" not in calls
    assert "every entity" not in calls
    status = coordinator.status(first)
    assert status is not None
    assert status.last_attempt is not None
    assert state(hass, "sensor.room_01_camera_01_stream_state") == "running"
    # A device-list read still updates every entity.
    calls.clear()
    await coordinator.async_refresh()
    assert "every entity" in calls


@pytest.mark.parametrize("devices", [default_devices(5)])
@pytest.mark.parametrize("options", [{"qpm": 1}])
async def test_starting_more_than_fit_changes_nothing(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, setup_integration: MockConfigEntry
) -> None:
    """Room for 4 of 5: stopping one lets the fifth in; starting it again with another that
    does not fit fails whole (the message names the one left out; nothing changes)."""
    await advance(hass, freezer, 10)
    assert state(hass, "sensor.room_05_camera_05_stream_state") == "stopped"
    await hass.services.async_call(
        DOMAIN, "stop_stream", {"entity_id": "camera.room_01_camera_01"}, blocking=True
    )
    await advance(hass, freezer, 600)  # one command a minute
    assert state(hass, "sensor.room_05_camera_05_stream_state") == "running"
    await hass.services.async_call(
        DOMAIN, "stop_stream", {"entity_id": "camera.room_02_camera_02"}, blocking=True
    )
    await advance(hass, freezer, 10)
    both = {"entity_id": ["camera.room_01_camera_01", "camera.room_02_camera_02"]}
    with pytest.raises(ServiceValidationError) as raised:
        await hass.services.async_call(DOMAIN, "start_stream", both, blocking=True)
    assert raised.value.translation_placeholders == {
        "entity_id": "camera.room_02_camera_02",
        "capacity": "4",
    }
    await advance(hass, freezer, 10)
    assert state(hass, "sensor.room_01_camera_01_stream_state") == "stopped"
    assert state(hass, "sensor.room_02_camera_02_stream_state") == "stopped"
    await hass.services.async_call(
        DOMAIN, "start_stream", {"entity_id": "camera.room_01_camera_01"}, blocking=True
    )
    await advance(hass, freezer, 300)
    assert state(hass, "sensor.room_01_camera_01_stream_state") == "running"


async def test_actions_on_cameras_of_both_kinds_are_all_or_nothing(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    setup_integration: MockConfigEntry,
    emulator: Emulator,
) -> None:
    """`all` (or an area, a label) reaches WebRTC cameras too: they are skipped (on demand).
    A WebRTC camera named by its entity id fails the whole call before any camera changes."""
    await advance(hass, freezer, 30)
    named = {"entity_id": ["camera.room_01_camera_01", "camera.room_04_webrtc_camera_01"]}
    with pytest.raises(ServiceValidationError) as raised:
        await hass.services.async_call(DOMAIN, "stop_stream", named, blocking=True)
    assert raised.value.translation_key == "on_demand"
    assert raised.value.translation_placeholders == {"entity_id": "camera.room_04_webrtc_camera_01"}
    await advance(hass, freezer, 10)
    assert state(hass, "sensor.room_01_camera_01_stream_state") == "running"
    assert "executeCommand:StopRtspStream" not in emulator.report()["calls"]
    await hass.services.async_call(DOMAIN, "stop_stream", {"entity_id": "all"}, blocking=True)
    await advance(hass, freezer, 30)
    for name in ("room_01_camera_01", "room_02_camera_02", "room_03_camera_03"):
        assert state(hass, f"sensor.{name}_stream_state") == "stopped"
    assert state(hass, "sensor.room_04_webrtc_camera_01_stream_state") == "on_demand"
    await hass.services.async_call(DOMAIN, "start_stream", {"entity_id": "all"}, blocking=True)
    await advance(hass, freezer, 60)
    for name in ("room_01_camera_01", "room_02_camera_02", "room_03_camera_03"):
        assert state(hass, f"sensor.{name}_stream_state") == "running"
