"""Set-up, token handling and unload of a config entry."""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from unittest.mock import patch

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from webrtc_models import RTCIceCandidateInit

from custom_components.nest_streams.const import DOMAIN
from sdm_emulator import Emulator

from .common import CHROME_OFFER, PROJECT_ID, advance, state


async def test_setup_and_unload(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    setup_integration: MockConfigEntry,
    emulator: Emulator,
    hass_storage: dict[str, Any],
) -> None:
    """Set-up reads the cameras (not the thermostat); unload saves the live streams."""
    entry = setup_integration
    assert entry.state is ConfigEntryState.LOADED
    coordinator = entry.runtime_data.coordinator
    assert len(coordinator.cameras) == 4
    devices = dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)
    assert len(devices) == 5  # 4 cameras + the hub
    await advance(hass, freezer, 30)
    assert emulator.report()["live_streams"] == 3  # the RTSP cameras; WebRTC is on demand
    assert await hass.config_entries.async_unload(entry.entry_id)
    assert entry.state is ConfigEntryState.NOT_LOADED
    assert len(hass_storage[f"{DOMAIN}.{entry.entry_id}"]["data"]["streams"]) == 3
    # Nothing was stopped: the streams are left to a reload or expire at Google.
    assert emulator.report()["live_streams"] == 3
    await advance(hass, freezer, 310)
    assert emulator.report()["live_streams"] == 0


async def test_reload_takes_the_streams_over(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    setup_integration: MockConfigEntry,
    emulator: Emulator,
) -> None:
    """A reload (options, reauth, reconfigure) extends the running streams: 0 generations."""
    await advance(hass, freezer, 60)
    before = dict(emulator.report()["calls"])
    assert await hass.config_entries.async_reload(setup_integration.entry_id)
    await advance(hass, freezer, 600)
    calls = emulator.report()["calls"]
    for command in ("GenerateRtspStream", "GenerateWebRtcStream"):
        key = f"executeCommand:{command}"
        assert calls.get(key, 0) == before.get(key, 0), command
    assert calls["executeCommand:ExtendRtspStream"] >= 6
    assert emulator.report()["availability"]["min"] == 1.0
    assert state(hass, "sensor.room_01_camera_01_stream_state") == "running"


async def test_removing_the_entry_removes_its_store(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    setup_integration: MockConfigEntry,
    hass_storage: dict[str, Any],
) -> None:
    await advance(hass, freezer, 30)
    assert await hass.config_entries.async_unload(setup_integration.entry_id)
    key = f"{DOMAIN}.{setup_integration.entry_id}"
    assert key in hass_storage
    await hass.config_entries.async_remove(setup_integration.entry_id)
    await hass.async_block_till_done()
    assert key not in hass_storage


@pytest.mark.usefixtures("setup_credentials")
@pytest.mark.parametrize("token_lifetime", [-60])
async def test_expired_token_is_refreshed(
    hass: HomeAssistant, config_entry: MockConfigEntry
) -> None:
    """An expired access token is refreshed at Google's token URL on set-up."""
    old = config_entry.data["token"]["access_token"]
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    assert config_entry.state is ConfigEntryState.LOADED
    assert config_entry.data["token"]["access_token"] != old


@pytest.mark.usefixtures("setup_credentials")
@pytest.mark.parametrize("token_lifetime", [-60])
async def test_revoked_refresh_token_starts_reauth(
    hass: HomeAssistant, config_entry: MockConfigEntry, emulator: Emulator
) -> None:
    """invalid_grant on refresh: the entry fails to set up and asks for re-authentication."""
    emulator.revoke()
    config_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(config_entry.entry_id)
    assert config_entry.state is ConfigEntryState.SETUP_ERROR
    flows = hass.config_entries.flow.async_progress()
    assert [flow["context"]["source"] for flow in flows] == [SOURCE_REAUTH]


@pytest.mark.usefixtures("setup_credentials")
@pytest.mark.parametrize("token_lifetime", [-60])
async def test_token_endpoint_down_retries(
    hass: HomeAssistant, config_entry: MockConfigEntry, emulator: Emulator
) -> None:
    """A token endpoint failure is transient: set-up is retried."""
    emulator.config.faults.token_down = True
    config_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(config_entry.entry_id)
    assert config_entry.state is ConfigEntryState.SETUP_RETRY


@pytest.mark.usefixtures("setup_credentials")
async def test_device_list_failure_retries(
    hass: HomeAssistant, config_entry: MockConfigEntry, emulator: Emulator
) -> None:
    """The device list answering 500 is transient: set-up is retried."""
    emulator.config.faults.rate_500 = 1.0
    config_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(config_entry.entry_id)
    assert config_entry.state is ConfigEntryState.SETUP_RETRY


@pytest.mark.usefixtures("setup_credentials")
async def test_device_list_refused_token_asks_reauth(
    hass: HomeAssistant, config_entry: MockConfigEntry, emulator: Emulator
) -> None:
    """The device list answering 401 needs a new sign-in."""
    emulator.revoke()  # the stored, unexpired access token is no longer accepted
    config_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(config_entry.entry_id)
    assert config_entry.state is ConfigEntryState.SETUP_ERROR
    assert config_entry.unique_id == PROJECT_ID


async def test_debug_logs_hold_no_stream_secrets(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    setup_integration: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With debug logging on (ours and google_nest_sdm's), no token reaches the log."""
    caplog.set_level(logging.DEBUG, logger="google_nest_sdm")
    caplog.set_level(logging.DEBUG, logger="custom_components.nest_streams")
    coordinator = setup_integration.runtime_data.coordinator
    secrets: set[str] = set()
    for _ in range(4):
        await advance(hass, freezer, 100)
        for handle in coordinator.scheduler.handles().values():
            secrets |= {s for s in (handle.extension_token, handle.session_id) if s}
            if handle.url:
                secrets.add(handle.url.split("auth=")[1])
    secrets.add(setup_integration.data["token"]["access_token"])
    assert len(secrets) > 8
    assert "request[post json]" in caplog.text  # the library did log its requests
    assert "REDACTED" in caplog.text
    leaked = [secret for secret in secrets if secret in caplog.text]
    assert leaked == []


SRFLX = (
    "candidate:842163049 1 udp 1677729535 203.0.113.7 61234 typ srflx raddr 192.168.1.23 "
    "rport 61234 generation 0 ufrag 1XlH network-cost 999"
)
HOST = "candidate:1 1 udp 2122260223 192.168.1.23 61234 typ host generation 0"


async def test_debug_logs_hold_no_sdp_secret_or_address(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    setup_integration: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
    socket_enabled: None,
) -> None:
    """Debug logging of every logger the manifest lists: a viewer's offer with a public
    (srflx) and a private candidate, through the relay and to Google, leaves none of its ICE
    credentials, fingerprint or addresses in the log (the SDP's media kinds stay)."""
    for logger in ("google_nest_sdm", "custom_components.nest_streams", "aiortc", "aioice"):
        caplog.set_level(logging.DEBUG, logger=logger)
    offer = CHROME_OFFER.replace("a=ice-options:trickle", f"a={SRFLX}\r\na={HOST}", 1)
    secrets = [
        "1TuC1dF7OG2qqRtDkGXUT3L4",  # ice-pwd
        "4B:82:C8:D3:9C:44:74:C9",  # fingerprint
        "203.0.113.7",
        "192.168.1.23",
    ]
    assert all(secret in offer for secret in secrets)
    await advance(hass, freezer, 30)
    with patch("custom_components.nest_streams.live.async_get_ice_servers", return_value=[]):
        rtsp = hass.data["camera"].get_entity("camera.room_01_camera_01")
        webrtc = hass.data["camera"].get_entity("camera.room_04_webrtc_camera_01")
        await rtsp.async_handle_async_webrtc_offer(offer, "r1", lambda _: None)
        await rtsp.async_on_webrtc_candidate("r1", RTCIceCandidateInit(SRFLX, sdp_mid="0"))
        answering = asyncio.create_task(
            webrtc.async_handle_async_webrtc_offer(offer, "w1", lambda _: None)
        )
        await advance(hass, freezer, 5)
        await answering
        rtsp.close_webrtc_session("r1")
        webrtc.close_webrtc_session("w1")
        await advance(hass, freezer, 30)
    assert "GenerateWebRtcStream" in caplog.text  # the library logged the request
    assert "SDP (audio video application)" in caplog.text
    assert [secret for secret in secrets if secret in caplog.text] == []


async def test_revoked_credentials_ask_for_sign_in_once_and_stop_calling(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    setup_integration: MockConfigEntry,
    emulator: Emulator,
) -> None:
    """Google revokes the refresh token: one refresh is tried (at most one more by a command
    already under way), then the re-authentication flow starts and nothing more is sent;
    the cameras say re-authentication is required, not what the token endpoint answered."""
    await advance(hass, freezer, 30)
    commands = emulator.report()["accepted_commands"]
    emulator.revoke()
    await advance(hass, freezer, 300)
    report = emulator.report()
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [flow["context"]["source"] for flow in flows] == [SOURCE_REAUTH]
    assert report["calls"].get("oauth.token", 0) <= 2
    assert report["accepted_commands"] == commands
    errors = {state(hass, f"sensor.room_0{i}_camera_0{i}_last_error") for i in (1, 2, 3)}
    assert errors == {"Google refused the credentials: re-authentication required"}
    await advance(hass, freezer, 600)
    assert emulator.report()["calls"].get("oauth.token", 0) == report["calls"].get("oauth.token", 0)


async def test_set_up_loads_what_ice_would_import_in_the_event_loop(
    hass: HomeAssistant, setup_integration: MockConfigEntry
) -> None:
    """dnspython's record types (aioice's mDNS needs A and AAAA) are imported at set-up, in
    the executor: a live view's first mDNS candidate imports nothing in the event loop."""
    import sys

    assert {"dns.rdtypes.IN.A", "dns.rdtypes.IN.AAAA"} <= sys.modules.keys()


async def test_a_reload_goes_on_from_the_last_minute_of_commands(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    setup_integration: MockConfigEntry,
    emulator: Emulator,
) -> None:
    """An options change reloads the entry: the new queue knows the commands Google still
    counts in its minute, so a busy minute is not overrun (no 429)."""
    await advance(hass, freezer, 20)
    before = setup_integration.runtime_data.coordinator.scheduler.stats().commands_last_minute
    assert before >= 3
    assert await hass.config_entries.async_reload(setup_integration.entry_id)
    await hass.async_block_till_done()
    stats = setup_integration.runtime_data.coordinator.scheduler.stats()
    assert stats.commands_last_minute >= before
    await advance(hass, freezer, 60)
    assert emulator.metrics.quota_rejections == 0
