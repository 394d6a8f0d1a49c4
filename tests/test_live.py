"""Live views in Home Assistant: viewers accounted from their offer, reloads, limits, errors."""

from __future__ import annotations

import asyncio
from collections.abc import Generator
from typing import Any
from unittest.mock import MagicMock, patch

from freezegun.api import FrozenDateTimeFactory
from homeassistant.components.camera.webrtc import WebRTCAnswer, WebRTCError
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.nest_streams import live as live_module
from custom_components.nest_streams.core.viewer import REFUSED
from custom_components.nest_streams.live import ENDED_CODE, RELOAD_GRACE, LiveViews
from custom_components.nest_streams.media import webrtc as webrtc_module
from custom_components.nest_streams.media.session import RtspSession
from sdm_emulator import Emulator

from .common import CHROME_OFFER, advance, state

RTSP = "camera.room_01_camera_01"
WEBRTC = "camera.room_04_webrtc_camera_01"


@pytest.fixture
def sessions(socket_enabled: None) -> Generator[MagicMock]:
    """RTSP sessions that open nothing; relay peers bind local UDP sockets, no STUN; nobody
    answers their ICE here, so they are given an hour to connect."""
    with (
        patch("custom_components.nest_streams.live.async_get_ice_servers", return_value=[]),
        patch.object(RtspSession, "start") as start,
        patch.object(webrtc_module, "CONNECT_TIMEOUT", 3600),
    ):
        yield start


def entity(hass: HomeAssistant, entity_id: str) -> Any:
    """The camera entity."""
    return hass.data["camera"].get_entity(entity_id)


def views(hass: HomeAssistant, entry: MockConfigEntry) -> LiveViews:
    """The entry's live views."""
    return LiveViews.of(hass, entry.entry_id)


def calls(emulator: Emulator, name: str) -> int:
    """How many `executeCommand` calls of `name` the emulator took."""
    return int(emulator.report()["calls"].get(f"executeCommand:{name}", 0))


async def test_a_relayed_viewer_that_leaves_before_its_answer_leaves_nothing(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    setup_integration: MockConfigEntry,
    sessions: MagicMock,
) -> None:
    """Closed while its offer is answered: no answer is sent, no relay, no consumer, no
    session stays (30 early closes in a row)."""
    await advance(hass, freezer, 30)
    camera = entity(hass, RTSP)
    messages: list[Any] = []
    for index in range(30):
        offer = hass.async_create_task(
            camera.async_handle_async_webrtc_offer(CHROME_OFFER, f"v{index}", messages.append),
            eager_start=True,
        )
        camera.close_webrtc_session(f"v{index}")
        await offer
    await hass.async_block_till_done()
    media = views(hass, setup_integration).media(camera.device_id, "")
    assert messages == []
    assert media.viewers == 0
    assert media.feed.consumers == 0
    assert not views(hass, setup_integration).watched(camera.device_id)


async def test_a_google_viewer_that_leaves_before_its_answer_costs_no_session(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    setup_integration: MockConfigEntry,
    emulator: Emulator,
) -> None:
    """Closed while its session is generated: the session is stopped (or never made), never
    extended, and the camera is not streaming."""
    await advance(hass, freezer, 30)
    camera = entity(hass, WEBRTC)
    messages: list[Any] = []
    emulator.config.faults.rate_slow = 1.0
    emulator.config.faults.slow_seconds = 3
    offer = asyncio.create_task(  # not HA's: `async_block_till_done` would wait for it
        camera.async_handle_async_webrtc_offer(CHROME_OFFER, "v1", messages.append)
    )
    await advance(hass, freezer, 1)  # the generation is on its way to Google
    camera.close_webrtc_session("v1")
    emulator.config.faults.rate_slow = 0.0
    await advance(hass, freezer, 10)
    await asyncio.wait_for(offer, 5)
    await advance(hass, freezer, 600)
    assert messages == []
    assert calls(emulator, "GenerateWebRtcStream") == 1
    assert calls(emulator, "StopWebRtcStream") == 1
    assert calls(emulator, "ExtendWebRtcStream") == 0
    assert state(hass, WEBRTC) == "idle"


async def test_live_views_outlive_a_reload(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    setup_integration: MockConfigEntry,
    emulator: Emulator,
    sessions: MagicMock,
) -> None:
    """An entry reload (options, re-authentication, reconfigure) keeps both kinds of view:
    the RTSP camera's relay and session go on with the same URL; the WebRTC camera's Google
    session is adopted and extended, not generated again. Nobody is told anything."""
    await advance(hass, freezer, 30)
    messages: list[Any] = []
    rtsp, webrtc = entity(hass, RTSP), entity(hass, WEBRTC)
    await rtsp.async_handle_async_webrtc_offer(CHROME_OFFER, "r1", messages.append)
    offer = asyncio.create_task(
        webrtc.async_handle_async_webrtc_offer(CHROME_OFFER, "w1", messages.append)
    )
    await advance(hass, freezer, 5)
    await offer
    assert [type(m) for m in messages] == [WebRTCAnswer, WebRTCAnswer]
    media = views(hass, setup_integration).media(rtsp.device_id, "")
    peer = media.peer("r1")
    assert peer is not None
    url = media.feed.url
    assert await hass.config_entries.async_reload(setup_integration.entry_id)
    await advance(hass, freezer, 5)
    assert media.peer("r1") is peer
    assert not peer.closed
    assert media.feed.url == url, "the saved stream was taken over: same URL, same session"
    assert sessions.call_count == 1
    assert state(hass, WEBRTC) == "streaming"
    await advance(hass, freezer, 300)
    assert calls(emulator, "GenerateWebRtcStream") == 1
    assert calls(emulator, "ExtendWebRtcStream") >= 1
    assert [type(m) for m in messages] == [WebRTCAnswer, WebRTCAnswer]
    entity(hass, WEBRTC).close_webrtc_session("w1")
    entity(hass, RTSP).close_webrtc_session("r1")
    await advance(hass, freezer, 30)
    assert calls(emulator, "StopWebRtcStream") == 1


async def test_views_of_an_entry_that_does_not_come_back_end_with_a_message(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    setup_integration: MockConfigEntry,
    sessions: MagicMock,
) -> None:
    """Unloaded and not set up again (disabled): after the reload's grace every view ends,
    and each frontend hears why (instead of a frozen picture)."""
    await advance(hass, freezer, 30)
    rtsp_messages: list[Any] = []
    webrtc_messages: list[Any] = []
    await entity(hass, RTSP).async_handle_async_webrtc_offer(
        CHROME_OFFER, "r1", rtsp_messages.append
    )
    offer = asyncio.create_task(
        entity(hass, WEBRTC).async_handle_async_webrtc_offer(
            CHROME_OFFER, "w1", webrtc_messages.append
        )
    )
    await advance(hass, freezer, 5)
    await offer
    assert await hass.config_entries.async_unload(setup_integration.entry_id)
    await advance(hass, freezer, RELOAD_GRACE + 2)
    for messages in (rtsp_messages, webrtc_messages):
        assert isinstance(messages[-1], WebRTCError)
        assert messages[-1].code == ENDED_CODE
        assert messages[-1].message == "the integration was unloaded"


async def test_a_google_session_that_ends_tells_its_viewer(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    setup_integration: MockConfigEntry,
    emulator: Emulator,
) -> None:
    """Google refuses the session's extension: the viewer hears it ended (its frontend can
    start anew); no new session is generated for an answer nobody could take."""
    await advance(hass, freezer, 30)
    messages: list[Any] = []
    offer = asyncio.create_task(
        entity(hass, WEBRTC).async_handle_async_webrtc_offer(CHROME_OFFER, "w1", messages.append)
    )
    await advance(hass, freezer, 5)
    await offer
    emulator.config.faults.failing_devices = set()
    for record in emulator.streams.values():
        record.stopped_at = emulator.clock.now()  # Google ended it
    await advance(hass, freezer, 300)
    assert isinstance(messages[-1], WebRTCError)
    assert messages[-1].message == REFUSED
    assert calls(emulator, "GenerateWebRtcStream") == 1
    assert state(hass, WEBRTC) == "idle"


async def test_viewers_are_bounded(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    setup_integration: MockConfigEntry,
    sessions: MagicMock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Beyond the viewers allowed per camera an offer is refused with a clear error."""
    monkeypatch.setattr(live_module, "MAX_VIEWERS_PER_CAMERA", 2)
    await advance(hass, freezer, 30)
    camera = entity(hass, RTSP)
    for index in range(2):
        await camera.async_handle_async_webrtc_offer(CHROME_OFFER, f"v{index}", lambda _: None)
    with pytest.raises(HomeAssistantError) as err:
        await camera.async_handle_async_webrtc_offer(CHROME_OFFER, "v2", lambda _: None)
    assert err.value.translation_key == "too_many_viewers"
    for index in range(2):
        camera.close_webrtc_session(f"v{index}")
    await hass.async_block_till_done()
    await asyncio.sleep(0)
