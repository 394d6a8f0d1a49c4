"""Every platform with snapshot_platform, the camera entities, services, diagnostics."""

from __future__ import annotations

import asyncio
from collections.abc import Generator
from datetime import timedelta
from typing import Any
from unittest.mock import AsyncMock, MagicMock, PropertyMock, patch

from aiortc import RTCPeerConnection, RTCRtpReceiver
from freezegun.api import FrozenDateTimeFactory
from homeassistant.components.camera import async_get_image, async_get_stream_source
from homeassistant.components.camera.const import StreamType
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import (
    HomeAssistantError,
    ServiceValidationError,
)
from homeassistant.helpers import (
    area_registry as ar,
    device_registry as dr,
    entity_registry as er,
    label_registry as lr,
)
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, snapshot_platform
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from syrupy.assertion import SnapshotAssertion
from webrtc_models import RTCIceCandidateInit

from custom_components.nest_streams.const import DOMAIN
from custom_components.nest_streams.core.models import StreamState, StreamStatus
from custom_components.nest_streams.media.feed import CameraFeed
from custom_components.nest_streams.media.picture import Stills
from custom_components.nest_streams.media.placeholder import render
from custom_components.nest_streams.media.session import RtspSession
from custom_components.nest_streams.media.webrtc import NO_VIDEO, OFFER_UNUSABLE
from sdm_emulator import Emulator, default_devices

from .common import CHROME_OFFER, advance, state


@pytest.fixture
def platforms() -> list[Platform]:
    return [Platform.BINARY_SENSOR, Platform.CAMERA, Platform.SENSOR]


@pytest.fixture(autouse=True)
def only_platforms(platforms: list[Platform]) -> Generator[None]:
    with patch("custom_components.nest_streams.PLATFORMS", platforms):
        yield


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
@pytest.mark.freeze_time("2026-11-27 12:00:00+00:00")
@pytest.mark.parametrize(
    "platforms", [[Platform.SENSOR], [Platform.BINARY_SENSOR], [Platform.CAMERA]]
)
async def test_platform_snapshots(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    platforms: list[Platform],
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
    setup_integration: MockConfigEntry,
) -> None:
    """Entities, names, classes and states after every camera started (1 minute)."""
    await advance(hass, freezer, 60)
    if platforms != [Platform.CAMERA]:
        await snapshot_platform(hass, entity_registry, snapshot, setup_integration.entry_id)
        return
    # Camera access tokens are random: the states are compared without them.
    entries = er.async_entries_for_config_entry(entity_registry, setup_integration.entry_id)
    assert entries
    for entity_entry in entries:
        assert entity_entry == snapshot(name=f"{entity_entry.entity_id}-entry")
        current = hass.states.get(entity_entry.entity_id)
        assert current is not None
        token = current.attributes["access_token"]
        assert current.attributes["entity_picture"].endswith(f"?token={token}")
        attributes = {
            key: value
            for key, value in current.attributes.items()
            if key not in ("access_token", "entity_picture")
        }
        assert (current.state, attributes) == snapshot(name=f"{entity_entry.entity_id}-state")


@pytest.fixture
def sessions(socket_enabled: None) -> Generator[MagicMock]:
    """RTSP sessions that open nothing (no server in these tests); the mock counts them. The
    relay's peers bind local UDP sockets (aiortc) and ask no STUN server."""
    with (
        patch("custom_components.nest_streams.live.async_get_ice_servers", return_value=[]),
        patch.object(RtspSession, "start") as start,
    ):
        yield start


def feed_of(hass: HomeAssistant, entity_id: str) -> CameraFeed:
    """The feed of an RTSP camera entity."""
    camera = hass.data["camera"].get_entity(entity_id)
    feed: CameraFeed = camera.coordinator.live.media(camera.device_id, "").feed
    return feed


async def test_rtsp_camera_feed_follows_the_token_and_opens_nothing_unwatched(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    setup_integration: MockConfigEntry,
    sessions: MagicMock,
) -> None:
    """The camera's feed knows the newest URL; nobody watches, so no session is opened; HA's
    stream worker gets no URL (it would be a second client of Google's URL)."""
    await advance(hass, freezer, 30)
    entity_id = "camera.room_01_camera_01"
    assert await async_get_stream_source(hass, entity_id) is None
    feed = feed_of(hass, entity_id)
    first = feed.url
    assert first is not None
    assert first.startswith("rtsps://127.0.0.1:8554/sdm_live_stream/")
    await advance(hass, freezer, 300)  # extended once: the stream token rotated
    assert feed.url not in (None, first)
    sessions.assert_not_called()
    await hass.services.async_call(DOMAIN, "stop_stream", {"entity_id": entity_id}, blocking=True)
    await advance(hass, freezer, 10)
    assert feed.url is None


async def test_rtsp_stills_come_from_the_feed(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    setup_integration: MockConfigEntry,
    sessions: MagicMock,
) -> None:
    """A running camera's still is its feed's newest key frame; the placeholder when none
    comes in time or the stream does not run."""
    await advance(hass, freezer, 30)
    entity_id = "camera.room_01_camera_01"
    frame = b"\xff\xd8 a frame"
    with patch.object(Stills, "image", AsyncMock(side_effect=[frame, None])) as image:
        assert (await async_get_image(hass, entity_id)).content == frame
        assert image.await_args is not None
        assert image.await_args.args == (None, None, 6.0)
        no_frame = await async_get_image(hass, entity_id)
        assert no_frame.content == render("Starting")  # running, no picture yet
        await hass.services.async_call(
            DOMAIN, "stop_stream", {"entity_id": entity_id}, blocking=True
        )
        await advance(hass, freezer, 10)
        placeholder = await async_get_image(hass, entity_id)
    assert placeholder.content == render("Stopped")
    assert image.await_count == 2


async def test_rtsp_live_view_is_a_relay_of_the_one_session(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    setup_integration: MockConfigEntry,
    emulator: Emulator,
    sessions: MagicMock,
) -> None:
    """An RTSP camera's live view is WebRTC (a relay of its one RTSP session, no command
    spent); a second viewer shares the session; a rotated token opens the new URL beside
    it; viewers that leave end their relay, the last one the session's consumers."""
    await advance(hass, freezer, 30)
    entity_id = "camera.room_01_camera_01"
    camera = hass.data["camera"].get_entity(entity_id)
    assert camera.camera_capabilities.frontend_stream_types == {StreamType.WEB_RTC}
    commands = emulator.report()["accepted_commands"]
    messages: list[Any] = []
    await camera.async_handle_async_webrtc_offer(CHROME_OFFER, "viewer-1", messages.append)
    (answer,) = messages
    video = answer.answer.split("m=video")[1].split("m=application")[0]
    assert "H264/90000" in video
    assert "VP8" not in video
    audio = answer.answer.split("m=audio")[1].split("m=video")[0]
    assert "opus/48000" in audio
    assert emulator.report()["accepted_commands"] == commands
    feed = feed_of(hass, entity_id)
    assert feed.consumers == 2, "the viewer's relay and the camera's sound (Opus)"
    await camera.async_handle_async_webrtc_offer(CHROME_OFFER, "viewer-2", messages.append)
    assert feed.consumers == 3
    assert sessions.call_count == 1, "both viewers share one RTSP session"
    await camera.async_on_webrtc_candidate(
        "viewer-1", RTCIceCandidateInit("candidate:1 1 udp 1 127.0.0.1 9 typ host", sdp_mid="0")
    )
    first = feed.url
    await hass.services.async_call(
        DOMAIN, "restart_stream", {"entity_id": entity_id}, blocking=True
    )
    await advance(hass, freezer, 10)  # a new stream: a new URL, well within the peers' 30 s
    assert feed.url != first
    assert sessions.call_count == 2  # the first URL, then the new one beside it
    camera.close_webrtc_session("viewer-1")
    await hass.async_block_till_done()
    assert feed.consumers == 2, "the other viewer still watches (and listens)"
    camera.close_webrtc_session("viewer-2")
    camera.close_webrtc_session("viewer-2")  # twice: nothing more happens
    await hass.async_block_till_done()
    assert feed.consumers == 0


async def test_rtsp_live_view_refuses_an_offer_without_h264(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    setup_integration: MockConfigEntry,
    sessions: MagicMock,
) -> None:
    """An offer the relay cannot answer is a translated error, and leaves no viewer behind."""
    await advance(hass, freezer, 30)
    camera = hass.data["camera"].get_entity("camera.room_01_camera_01")
    with pytest.raises(HomeAssistantError) as err:
        await camera.async_handle_async_webrtc_offer("not an offer", "viewer-1", lambda _: None)
    assert err.value.translation_key == "live_view_failed"
    assert err.value.translation_placeholders == {"error": OFFER_UNUSABLE}
    vp8_only = RTCPeerConnection()
    transceiver = vp8_only.addTransceiver("video", direction="recvonly")
    capabilities = RTCRtpReceiver.getCapabilities("video")
    assert capabilities is not None
    transceiver.setCodecPreferences([c for c in capabilities.codecs if c.mimeType == "video/VP8"])
    await vp8_only.setLocalDescription(await vp8_only.createOffer())
    with pytest.raises(HomeAssistantError) as err:
        await camera.async_handle_async_webrtc_offer(
            vp8_only.localDescription.sdp, "viewer-2", lambda _: None
        )
    await vp8_only.close()
    assert err.value.translation_placeholders == {"error": NO_VIDEO}
    assert feed_of(hass, "camera.room_01_camera_01").consumers == 0
    assert not camera.coordinator.live.watched(camera.device_id)


async def test_webrtc_camera_answers_offers_through_the_queue(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    setup_integration: MockConfigEntry,
    emulator: Emulator,
) -> None:
    """A viewer's offer gets a session; it is extended until closed, then stopped."""
    await advance(hass, freezer, 30)
    camera = hass.data["camera"].get_entity("camera.room_04_webrtc_camera_01")
    messages: list[Any] = []
    # The offer waits for a queue slot: let time run while it waits (an untracked task, which
    # async_block_till_done does not wait for).
    offer = asyncio.create_task(
        camera.async_handle_async_webrtc_offer(CHROME_OFFER, "viewer-1", messages.append)
    )
    await advance(hass, freezer, 10)
    await offer
    assert messages
    assert messages[0].answer.startswith("v=0")
    assert state(hass, "camera.room_04_webrtc_camera_01") == "streaming"
    await camera.async_on_webrtc_candidate("viewer-1", MagicMock())
    await advance(hass, freezer, 600)
    assert emulator.report()["calls"]["executeCommand:ExtendWebRtcStream"] >= 2
    live = emulator.report()["live_streams"]
    camera.close_webrtc_session("viewer-1")
    await advance(hass, freezer, 10)
    assert state(hass, "camera.room_04_webrtc_camera_01") == "idle"
    assert emulator.report()["live_streams"] == live - 1
    assert emulator.report()["calls"]["executeCommand:StopWebRtcStream"] == 1


async def test_webrtc_camera_is_on_demand(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    setup_integration: MockConfigEntry,
    emulator: Emulator,
) -> None:
    """No session while nobody watches; the actions say why; the frontend is asked for the
    data channel Google requires."""
    await advance(hass, freezer, 600)
    assert state(hass, "sensor.room_04_webrtc_camera_01_stream_state") == "on_demand"
    assert "executeCommand:GenerateWebRtcStream" not in emulator.report()["calls"]
    for action in ("start_stream", "stop_stream", "restart_stream"):
        with pytest.raises(ServiceValidationError) as raised:
            await hass.services.async_call(
                DOMAIN, action, {"entity_id": "camera.room_04_webrtc_camera_01"}, blocking=True
            )
        assert raised.value.translation_key == "on_demand"
    camera = hass.data["camera"].get_entity("camera.room_04_webrtc_camera_01")
    assert camera.async_get_webrtc_client_configuration().data_channel == "dataSendChannel"


async def test_webrtc_offer_refused(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    setup_integration: MockConfigEntry,
    emulator: Emulator,
) -> None:
    await advance(hass, freezer, 30)
    camera = hass.data["camera"].get_entity("camera.room_04_webrtc_camera_01")
    emulator.config.faults.failing_devices = {"webrtc-01"}
    offer = asyncio.create_task(
        camera.async_handle_async_webrtc_offer(CHROME_OFFER, "viewer-2", lambda _: None)
    )
    await advance(hass, freezer, 10)
    with pytest.raises(HomeAssistantError):
        await offer


@pytest.mark.parametrize(("options", "devices"), [({"qpm": 1}, default_devices(4, webrtc=1))])
async def test_webrtc_viewer_of_a_full_project_is_refused(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    setup_integration: MockConfigEntry,
    emulator: Emulator,
) -> None:
    """At 1 command per minute 4 streams fit and 4 RTSP cameras run: a viewer gets a clear
    error."""
    await advance(hass, freezer, 30)
    camera = hass.data["camera"].get_entity("camera.room_05_webrtc_camera_01")
    generations = emulator.report()["calls"].get("executeCommand:GenerateWebRtcStream", 0)
    with pytest.raises(HomeAssistantError) as raised:
        await camera.async_handle_async_webrtc_offer(CHROME_OFFER, "viewer-3", lambda _: None)
    assert raised.value.translation_key == "webrtc_over_capacity"
    await advance(hass, freezer, 30)
    calls = emulator.report()["calls"]
    assert calls.get("executeCommand:GenerateWebRtcStream", 0) == generations


async def test_services(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    setup_integration: MockConfigEntry,
    emulator: Emulator,
) -> None:
    """stop_stream stops at Google and persists; start_stream and restart_stream restart."""
    await advance(hass, freezer, 30)
    target = {"entity_id": "camera.room_02_camera_02"}
    await hass.services.async_call(DOMAIN, "stop_stream", target, blocking=True)
    await advance(hass, freezer, 20)
    assert state(hass, "sensor.room_02_camera_02_stream_state") == "stopped"
    assert state(hass, "camera.room_02_camera_02") == "idle"
    assert emulator.report()["calls"]["executeCommand:StopRtspStream"] == 1
    await hass.services.async_call(DOMAIN, "start_stream", target, blocking=True)
    await advance(hass, freezer, 20)
    assert state(hass, "sensor.room_02_camera_02_stream_state") == "running"
    generations = emulator.report()["calls"]["executeCommand:GenerateRtspStream"]
    await hass.services.async_call(DOMAIN, "restart_stream", target, blocking=True)
    await advance(hass, freezer, 20)
    assert emulator.report()["calls"]["executeCommand:GenerateRtspStream"] == generations + 1
    assert state(hass, "sensor.room_02_camera_02_stream_state") == "running"


async def test_service_targets_devices_and_areas(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    setup_integration: MockConfigEntry,
    device_registry: dr.DeviceRegistry,
    area_registry: ar.AreaRegistry,
    label_registry: lr.LabelRegistry,
    entity_registry: er.EntityRegistry,
    emulator: Emulator,
) -> None:
    """The actions are entity services: device, area and label targets reach the cameras."""
    await advance(hass, freezer, 30)
    device = device_registry.async_get_device_by_identifier(
        (DOMAIN, f"enterprises/{emulator.project_id}/devices/rtsp-01"),
        setup_integration.entry_id,
    )
    assert device is not None
    hub = device_registry.async_get_device_by_identifier(
        (DOMAIN, emulator.project_id), setup_integration.entry_id
    )
    assert hub is not None
    assert device.via_device_id == hub.id  # the cameras hang off the project's hub
    await hass.services.async_call(DOMAIN, "stop_stream", {"device_id": device.id}, blocking=True)
    await advance(hass, freezer, 10)
    assert state(hass, "sensor.room_01_camera_01_stream_state") == "stopped"
    assert state(hass, "sensor.room_02_camera_02_stream_state") == "running"
    area = area_registry.async_get_or_create("Garden")
    for name in ("rtsp-02", "rtsp-03"):
        other = device_registry.async_get_device_by_identifier(
            (DOMAIN, f"enterprises/{emulator.project_id}/devices/{name}"),
            setup_integration.entry_id,
        )
        assert other is not None
        device_registry.async_update_device(other.id, area_id=area.id)
    await hass.services.async_call(DOMAIN, "stop_stream", {"area_id": area.id}, blocking=True)
    await advance(hass, freezer, 20)
    assert state(hass, "sensor.room_02_camera_02_stream_state") == "stopped"
    assert state(hass, "sensor.room_03_camera_03_stream_state") == "stopped"
    assert state(hass, "sensor.room_04_webrtc_camera_01_stream_state") == "on_demand"
    await hass.services.async_call(
        DOMAIN, "start_stream", {"area_id": area.id, "device_id": device.id}, blocking=True
    )
    await advance(hass, freezer, 30)
    for name in ("room_01_camera_01", "room_02_camera_02", "room_03_camera_03"):
        assert state(hass, f"sensor.{name}_stream_state") == "running"
    assert emulator.report()["calls"]["executeCommand:StopRtspStream"] == 3
    # A label on a camera entity is a target too.
    label = label_registry.async_create("Driveway")
    entity_registry.async_update_entity("camera.room_03_camera_03", labels={label.label_id})
    await hass.services.async_call(
        DOMAIN, "stop_stream", {"label_id": label.label_id}, blocking=True
    )
    await advance(hass, freezer, 10)
    assert state(hass, "sensor.room_03_camera_03_stream_state") == "stopped"
    assert state(hass, "sensor.room_02_camera_02_stream_state") == "running"


async def test_service_ignores_an_entity_of_another_kind(
    hass: HomeAssistant,
    setup_integration: MockConfigEntry,
    emulator: Emulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A sensor is no camera: HA's entity-service resolution says so and nothing is sent."""
    calls = dict(emulator.report()["calls"])
    await hass.services.async_call(
        DOMAIN,
        "restart_stream",
        {"entity_id": "sensor.room_01_camera_01_stream_state"},
        blocking=True,
    )
    assert "sensor.room_01_camera_01_stream_state" in caplog.text
    assert emulator.report()["calls"] == calls


async def test_diagnostics_redact_secrets(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    hass_client: ClientSessionGenerator,
    setup_integration: MockConfigEntry,
) -> None:
    await advance(hass, freezer, 60)
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, setup_integration)
    text = str(diagnostics)
    token = setup_integration.data["token"]
    for secret in (token["access_token"], token["refresh_token"]):
        assert secret not in text
    statuses = [camera["status"] for camera in diagnostics["cameras"].values()]
    urls = [status["stream_url"] for status in statuses if status["stream_url"]]
    assert urls
    assert all(url.endswith("auth=**REDACTED**") for url in urls)
    assert diagnostics["capacity"] == 46
    assert diagnostics["queue"]["executed"] >= 3  # the RTSP cameras (WebRTC: on demand)
    names = [camera["camera"]["name"] for camera in diagnostics["cameras"].values()]
    assert set(names) == {"**REDACTED**"}
    assert "Room 01" not in text
    assert "Camera 01" not in text


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_last_extension_sensor_shows_the_extension_time(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, setup_integration: MockConfigEntry
) -> None:
    """Unknown until the first extension, then the time of the newest one."""
    entity_id = "sensor.room_01_camera_01_last_extension"
    await advance(hass, freezer, 60)
    assert state(hass, entity_id) == "unknown"
    expiry = dt_util.parse_datetime(state(hass, "sensor.room_01_camera_01_stream_expiry"))
    assert expiry is not None
    await advance(hass, freezer, 300)
    extended = dt_util.parse_datetime(state(hass, entity_id))
    assert extended is not None
    # Extended ahead of the first stream's expiry by about the lead (15 s, 4 intervals and 4
    # early ones on an idle queue: 63.5 s), not later.
    assert timedelta(seconds=10) < expiry - extended < timedelta(seconds=90)
    assert dt_util.utcnow() - extended < timedelta(seconds=300)


async def test_diagnostic_sensors_are_disabled_by_default(
    hass: HomeAssistant, setup_integration: MockConfigEntry, entity_registry: er.EntityRegistry
) -> None:
    """Diagnostic counters and timestamps are there but off until the user enables them."""
    for entity_id in (
        "sensor.room_01_camera_01_last_extension",
        "sensor.home_commands_executed",
        "sensor.home_commands_failed",
    ):
        entry = entity_registry.async_get(entity_id)
        assert entry is not None
        assert entry.disabled_by is er.RegistryEntryDisabler.INTEGRATION
        assert hass.states.get(entity_id) is None


async def test_nothing_reads_unknown_when_all_is_well(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    setup_integration: MockConfigEntry,
    entity_registry: er.EntityRegistry,
) -> None:
    """A healthy project: no entity shown by default reads "unknown" (no error is "none", an
    on-demand camera has no expiry sensor, the quota back-off is a disabled diagnostic)."""
    await advance(hass, freezer, 60)
    entries = er.async_entries_for_config_entry(entity_registry, setup_integration.entry_id)
    shown = {entry.entity_id for entry in entries if entry.disabled_by is None}
    assert len(shown) > 10
    unknown = sorted(e for e in shown if state(hass, e) in ("unknown", "unavailable"))
    assert unknown == []
    assert "sensor.room_04_webrtc_camera_01_stream_expiry" not in shown
    assert state(hass, "sensor.room_01_camera_01_last_error") == "none"


@pytest.mark.parametrize(
    ("state", "title", "shows_reason"),
    [
        (StreamState.STARTING, "Starting", False),
        (StreamState.RUNNING, "Starting", False),  # running without a frame yet
        (StreamState.FAILED, "Failed", True),
        (StreamState.DEGRADED, "Degraded", True),
        (StreamState.STOPPED, "Stopped", False),
        (StreamState.ON_DEMAND, "On demand", False),
        (StreamState.HOURLY_LIMIT, "Hourly limit reached", True),
    ],
)
async def test_each_state_has_its_picture(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    setup_integration: MockConfigEntry,
    state: StreamState,
    title: str,
    shows_reason: bool,
) -> None:
    """A camera without a live picture shows its state (translated) and, when it failed or
    waits for the hour, why; the WebRTC cameras too."""
    await advance(hass, freezer, 30)
    reason = "HTTP 500: Internal error encountered."
    for entity_id in ("camera.room_01_camera_01", "camera.room_04_webrtc_camera_01"):
        camera = hass.data["camera"].get_entity(entity_id)
        status = StreamStatus(camera.device_id, state, 3, reason)
        with (
            patch.object(type(camera), "status", PropertyMock(return_value=status)),
            patch.object(Stills, "image", AsyncMock(return_value=None)),
        ):
            image = await async_get_image(hass, entity_id)
        assert image.content == render(title, reason if shows_reason else None), entity_id
