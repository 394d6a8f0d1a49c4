"""Cameras in Home Assistant against the emulator's real rtsps server, in real time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
import threading
import time
from typing import Any
from unittest.mock import patch

from homeassistant.components.camera import async_get_image
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.nest_streams.live import LiveViews
from custom_components.nest_streams.media.placeholder import render
from sdm_emulator import Emulator, EmulatorConfig, default_devices
from sdm_emulator.media.live import LiveMedia
from sdm_emulator.media.rtsp import StreamShape
from sdm_emulator.media.tls import ca_bundle

from .common import PROJECT_ID, state


@pytest.fixture
async def live_media(socket_enabled: None) -> AsyncIterator[LiveMedia]:
    """The emulator's real RTSP server (rtsps, its own CA), a cheap picture."""
    media = LiveMedia(rtsp_mode="keep", shape=StreamShape(size="640x360", gop=1.0))
    await media.start()
    yield media
    await media.close()


@pytest.fixture
def emulator(devices: list[Any], live_media: LiveMedia) -> Emulator:
    """The emulator with real media, on real time (the integration's and the tokens')."""
    return Emulator(EmulatorConfig(project_id=PROJECT_ID, devices=devices), media=live_media)


async def until(check: Callable[[], Awaitable[bool]], seconds: float) -> bool:
    """Whether `check()` became true within `seconds` (real time)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.2)
    return False


async def no_media_threads() -> None:
    """Wait until the feeds' reader threads ended (HA's test harness checks for threads)."""

    async def none_left() -> bool:
        return not [t for t in threading.enumerate() if t.name.startswith("nest_streams_")]

    assert await until(none_left, 15)


@pytest.mark.parametrize("devices", [default_devices(1)])
@pytest.mark.parametrize("options", [{"qpm": 60}])
@pytest.mark.parametrize("trusted", [True, False], ids=["trusted", "untrusted"])
async def test_a_camera_shows_its_picture_or_why_it_has_none(
    hass: HomeAssistant,
    setup_credentials: None,
    config_entry: MockConfigEntry,
    live_media: LiveMedia,
    trusted: bool,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """Against a real rtsps server, verified with HA's CA bundle: when it trusts the
    emulator's CA the camera's still is a frame of its stream; when it does not (certifi's
    bundle, as on a default install) the still is the placeholder and *Last error* says the
    certificate is not trusted."""
    assert live_media.tls_files is not None
    if trusted:
        bundle = ca_bundle(live_media.tls_files.ca, tmp_path / "bundle.pem")
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    else:
        monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    with patch("custom_components.nest_streams.live.STILL_TIMEOUT", 3.0):
        config_entry.add_to_hass(hass)
        assert await hass.config_entries.async_setup(config_entry.entry_id)
        await hass.async_block_till_done()

        async def running() -> bool:
            return state(hass, "sensor.room_01_camera_01_stream_state") == "running"

        assert await until(running, 20)
        image = await async_get_image(hass, "camera.room_01_camera_01")
        error = state(hass, "sensor.room_01_camera_01_last_error")
        assert await hass.config_entries.async_unload(config_entry.entry_id)
        await LiveViews.of(hass, config_entry.entry_id).async_close("done")
    await no_media_threads()
    if trusted:
        assert image.content.startswith(b"\xff\xd8")
        assert image.content != render("Starting")
        assert error == "none"
    else:
        assert image.content == render("Starting")  # running, no picture
        assert error.startswith("the stream server's certificate is not trusted")
