"""Faults, each visible on the sensors, none crashing, other cameras unaffected."""

from __future__ import annotations

import math

from freezegun.api import FrozenDateTimeFactory
from homeassistant.components.camera import async_get_image
from homeassistant.config_entries import SOURCE_REAUTH
from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.nest_streams.core.errors import AUTH_REQUIRED
from custom_components.nest_streams.media.placeholder import render
from sdm_emulator import Emulator, ScriptedFault, default_devices
from sdm_emulator.config import TESTING_REFRESH_TOKEN_LIFETIME
from sdm_emulator.faults import Fault

from .common import advance, state

CAMERAS = ("room_01_camera_01", "room_02_camera_02", "room_03_camera_03")


def assert_running(hass: HomeAssistant, *cameras: str) -> None:
    for camera in cameras:
        assert state(hass, f"sensor.{camera}_stream_state") == "running", camera
        assert state(hass, f"sensor.{camera}_consecutive_failures") == "0", camera
        assert state(hass, f"binary_sensor.{camera}_degraded") == "off", camera


async def worst(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, seconds: float, entity_id: str
) -> int:
    """Advance `seconds` in 2 s steps; the highest value `entity_id` showed meanwhile."""
    highest = 0
    for _ in range(int(seconds // 2)):
        await advance(hass, freezer, 2)
        highest = max(highest, int(state(hass, entity_id)))
    return highest


def reauth_flows(hass: HomeAssistant) -> list[str]:
    return [
        flow["context"]["source"]
        for flow in hass.config_entries.flow.async_progress()
        if flow["context"]["source"] == SOURCE_REAUTH
    ]


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_quota_storm(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    setup_integration: MockConfigEntry,
    emulator: Emulator,
) -> None:
    """Two minutes of 429s: the queue waits, no camera is blamed, all recover."""
    await advance(hass, freezer, 250)
    start = emulator.elapsed()
    emulator.config.faults.scripted = [ScriptedFault(Fault.QUOTA, start, start + 40)]
    deepest = 0
    backoffs: set[str] = set()
    for _ in range(20):  # the extensions fall due inside the storm and wait in the queue
        await advance(hass, freezer, 2)
        deepest = max(deepest, int(state(hass, "sensor.home_queue_depth")))
        backoffs.add(state(hass, "sensor.home_quota_back_off_until"))
    assert deepest >= 1
    # The hub shows the back-off while it lasts (a time in the future), then clears it.
    assert any(value not in ("unknown", "unavailable") for value in backoffs)
    await advance(hass, freezer, 200)
    assert emulator.metrics.quota_rejections > 0
    assert int(state(hass, "sensor.home_quota_rejections")) == emulator.metrics.quota_rejections
    assert state(hass, "sensor.home_quota_back_off_until") == "unknown"
    assert float(state(hass, "sensor.home_average_wait")) > 0
    assert_running(hass, *CAMERAS)
    assert emulator.report()["availability"]["min"] == 1.0


async def test_404_on_extend_regenerates(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    setup_integration: MockConfigEntry,
    emulator: Emulator,
) -> None:
    """The stream vanished at Google (404): a new one is generated; only that camera is hit."""
    await advance(hass, freezer, 200)  # the first extensions go from about 230 s (early)
    start = emulator.elapsed()
    emulator.config.faults.scripted = [ScriptedFault(Fault.NOT_FOUND, start, start + 60, "rtsp-01")]
    assert await worst(hass, freezer, 60, "sensor.room_01_camera_01_consecutive_failures") >= 1
    assert "404" in state(hass, "sensor.room_01_camera_01_last_error")
    assert_running(hass, *CAMERAS[1:])
    await advance(hass, freezer, 120)
    assert_running(hass, *CAMERAS)
    assert emulator.report()["calls"]["executeCommand:GenerateRtspStream"] >= 4


async def test_failing_camera_degrades_alone(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    setup_integration: MockConfigEntry,
    emulator: Emulator,
) -> None:
    """A camera whose commands always answer 500 turns degraded; the others run on."""
    emulator.config.faults.failing_devices = {"rtsp-02"}
    await hass.services.async_call(
        "nest_streams", "restart_stream", {"entity_id": "camera.room_02_camera_02"}, blocking=True
    )
    await advance(hass, freezer, 20)
    assert state(hass, "sensor.room_02_camera_02_stream_state") == "failed"
    error = state(hass, "sensor.room_02_camera_02_last_error")
    assert error == "HTTP 500: Internal error encountered."
    # The card's picture says what the camera does, and why.
    image = await async_get_image(hass, "camera.room_02_camera_02")
    assert image.content == render("Failed", error)
    await advance(hass, freezer, 200)
    assert state(hass, "sensor.room_02_camera_02_stream_state") == "degraded"
    assert state(hass, "binary_sensor.room_02_camera_02_degraded") == "on"
    assert state(hass, "sensor.room_02_camera_02_consecutive_failures") == "5"
    assert state(hass, "camera.room_02_camera_02") == "idle"
    image = await async_get_image(hass, "camera.room_02_camera_02")
    assert image.content == render("Degraded", error)
    assert_running(hass, "room_01_camera_01", "room_03_camera_03")
    # The degraded retry fails too: the count the entity shows follows at once.
    await advance(hass, freezer, 302)
    assert state(hass, "sensor.room_02_camera_02_stream_state") == "degraded"
    assert state(hass, "sensor.room_02_camera_02_consecutive_failures") == "6"
    # Fixed at Google: the next degraded retry (every 300 s) brings it back.
    emulator.config.faults.failing_devices = set()
    await advance(hass, freezer, 300)
    assert_running(hass, *CAMERAS)


@pytest.mark.parametrize("fault", [Fault.SLOW, Fault.MALFORMED, Fault.ERROR_503])
async def test_unreadable_or_late_answers(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    setup_integration: MockConfigEntry,
    emulator: Emulator,
    fault: Fault,
) -> None:
    """Timeouts, malformed JSON and 5xx on one camera's extension: counted, then recovered."""
    await advance(hass, freezer, 200)
    expiry = dt_util.parse_datetime(state(hass, "sensor.room_03_camera_03_stream_expiry"))
    assert expiry is not None
    left = (expiry - dt_util.utcnow()).total_seconds()
    start = emulator.elapsed()
    # Camera 03's extension is queued 4 intervals early and goes in the next free slot: about
    # 52 s before expiry (the 15 s lead, 4 intervals of 6.06 s, 4 early ones, its turn).
    emulator.config.faults.scripted = [
        ScriptedFault(fault, start + left - 66, start + left - 58, "rtsp-03")
    ]
    seen = await worst(hass, freezer, 70, "sensor.room_03_camera_03_consecutive_failures")
    scheduler = setup_integration.runtime_data.coordinator.scheduler
    if fault is not Fault.SLOW:
        # Counted and shown while it is retried (a malformed answer's stream is replaced at
        # once: the old one still plays), within the 2 s this test samples.
        assert scheduler.stats().failed >= 1
        assert seen == 1
    assert_running(hass, *CAMERAS[:2])
    await advance(hass, freezer, 120)
    assert_running(hass, *CAMERAS)
    if fault is Fault.SLOW:
        # Answered after 30 s, still in time for a replacement: waited for, and used. No
        # failure, no second stream.
        assert seen == 0
        assert scheduler.stats().failed == 0
        assert scheduler.stats().generates == 3
    assert emulator.report()["availability"]["min"] == 1.0


async def test_401_with_a_good_refresh_token_refreshes_and_goes_on(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    setup_integration: MockConfigEntry,
    emulator: Emulator,
) -> None:
    """Google refuses the access token early: one refresh, the command retried, no reauth."""
    await advance(hass, freezer, 60)
    old_token = setup_integration.data["token"]["access_token"]
    emulator.expire_access_tokens()
    await advance(hass, freezer, 600)
    assert reauth_flows(hass) == []
    assert setup_integration.data["token"]["access_token"] != old_token
    assert_running(hass, *CAMERAS)
    assert state(hass, "sensor.room_01_camera_01_consecutive_failures") == "0"
    assert emulator.report()["availability"]["min"] == 1.0


async def test_401_after_a_refused_refresh_starts_reauth(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    setup_integration: MockConfigEntry,
    emulator: Emulator,
) -> None:
    """The access token is refused and so is the refresh: reauth is asked once."""
    await advance(hass, freezer, 60)
    emulator.revoke()
    await advance(hass, freezer, 260)
    assert reauth_flows(hass) == [SOURCE_REAUTH]
    failures = int(state(hass, "sensor.room_01_camera_01_consecutive_failures"))
    assert failures >= 1


async def test_invalid_grant_starts_reauth(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    setup_integration: MockConfigEntry,
    emulator: Emulator,
) -> None:
    """The refresh token is revoked: when the access token expires, one refresh is tried and
    reauth is asked; no command asks for a token again, and cameras say why in words."""
    emulator.revoke()
    refreshes = emulator.report()["calls"].get("oauth.token", 0)
    await advance(hass, freezer, 3700)
    assert reauth_flows(hass) == [SOURCE_REAUTH]
    assert emulator.report()["calls"].get("oauth.token", 0) - refreshes <= 2
    assert state(hass, "sensor.room_01_camera_01_stream_state") in ("failed", "degraded")
    assert state(hass, "sensor.room_01_camera_01_last_error") == AUTH_REQUIRED


async def test_a_refresh_token_at_the_end_of_its_7_days(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    setup_integration: MockConfigEntry,
    emulator: Emulator,
) -> None:
    """A project in "Testing" status: its refresh token stops working after 7 days. The
    streams are kept alive while the access token lasts; then one reauth flow, not one per
    camera or command."""
    # The refresh token's 7 days end 10 minutes from now (its access token lasts an hour).
    issued_ago = emulator.elapsed()
    emulator.config.refresh_token_lifetime = issued_ago + 600
    assert TESTING_REFRESH_TOKEN_LIFETIME == 7 * 24 * 3600
    await advance(hass, freezer, 3500)
    assert reauth_flows(hass) == []
    per_camera = emulator.report(since=emulator.started + 300)["availability"]["per_camera"]
    kept_alive = {camera: share for camera, share in per_camera.items() if "rtsp" in camera}
    assert len(kept_alive) == 3
    assert set(kept_alive.values()) == {1.0}  # no stream lost before the access token ends
    await advance(hass, freezer, 900)
    assert reauth_flows(hass) == [SOURCE_REAUTH]


@pytest.mark.parametrize("devices", [default_devices(14)])
async def test_streams_lapsed_in_a_storm_come_back_right_after_it(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    setup_integration: MockConfigEntry,
    emulator: Emulator,
) -> None:
    """A 120 s storm of 429s while extensions fall due (a 60 s one lapses nothing: extensions
    go about 63 s before expiry on an idle queue): from the storm's end the queue works off
    what waited at its pace, one command per interval (extensions of living streams first),
    not after a long back-off; the lapsed streams are back when that work is done. A storm
    refuses every command in a row: it is not read as another app, our rate stays whole."""
    cameras = [f"room_{i:02d}_camera_{i:02d}" for i in range(1, 15)]
    await advance(hass, freezer, 260)
    assert_running(hass, *cameras)
    start = emulator.elapsed()
    emulator.config.faults.scripted = [ScriptedFault(Fault.QUOTA, start, start + 120)]
    lapsed: set[str] = set()
    for _ in range(60):
        await advance(hass, freezer, 2)
        lapsed |= {
            camera
            for camera in cameras
            if state(hass, f"sensor.{camera}_stream_state") != "running"
        }
    assert len(lapsed) >= 2, "the storm must make some streams lapse for this test to mean much"
    waiting = int(state(hass, "sensor.home_queue_depth"))
    assert waiting >= len(lapsed)
    assert float(state(hass, "sensor.home_effective_commands_per_minute")) == 10
    # One command per interval, each sent at the first 2 s step of the test's clock after its
    # slot (time moves in steps here): 6.06 s becomes 8 s.
    interval = math.ceil(60 / 10 * 1.01 / 2) * 2

    def commands() -> int:
        return sum(n for k, n in emulator.report()["calls"].items() if "executeCommand:" in k)

    at_end = commands()
    waited = 0.0
    while waited < interval * (waiting + 1) + 60:
        if all(state(hass, f"sensor.{c}_stream_state") == "running" for c in cameras):
            break
        await advance(hass, freezer, 2)
        waited += 2
    # After the storm, one command per interval: what waited and what fell due meanwhile (an
    # extension goes before a generation), plus one interval for the queue's next try and a
    # 2 s sample.
    sent = commands() - at_end
    assert sent <= waiting + 2
    assert waited <= interval * (sent + 1) + 2, (waited, sent, waiting, sorted(lapsed))
    assert float(state(hass, "sensor.home_effective_commands_per_minute")) == 10
