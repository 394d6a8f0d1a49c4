"""The restream URL in Home Assistant, against the emulator's real rtsps server in real time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
import itertools
import json
import logging
from pathlib import Path
import time
from typing import Any

from aiohttp import ClientResponse
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from yarl import URL

from custom_components.nest_streams.const import DOMAIN
from custom_components.nest_streams.live import LiveViews
from custom_components.nest_streams.restream import RestreamSecrets
from sdm_emulator import Emulator, EmulatorConfig, default_devices
from sdm_emulator.media.live import LiveMedia
from sdm_emulator.media.rtsp import StreamShape
from sdm_emulator.media.tls import ca_bundle

from .common import PROJECT_ID, state
from .media.test_restream import demux
from .test_live_media import no_media_threads, until

CAMERA = "camera.room_01_camera_01"
EXTEND = "executeCommand:ExtendRtspStream"
LIFETIME = 20.0
"""Google's stream lifetime here: with a 5 s lead an extension every 15 s."""


@pytest.fixture
async def live_media(socket_enabled: None) -> AsyncIterator[LiveMedia]:
    """Real rtsps sessions that end with the token they were opened with."""
    media = LiveMedia(rtsp_mode="rotate", shape=StreamShape(size="640x360", gop=1.0))
    await media.start()
    yield media
    await media.close()


@pytest.fixture
def emulator(live_media: LiveMedia) -> Emulator:
    """An RTSP and a WebRTC camera whose streams live `LIFETIME` seconds."""
    return Emulator(
        EmulatorConfig(
            project_id=PROJECT_ID,
            devices=default_devices(1, webrtc=1),
            stream_lifetime=LIFETIME,
        ),
        media=live_media,
    )


@pytest.fixture
def options() -> dict[str, Any]:
    """Commands as fast as Google allows; extensions 5 s before expiry."""
    return {"qpm": 60, "extension_lead": 5}


@pytest.fixture
async def restream(
    hass: HomeAssistant,
    setup_credentials: None,
    config_entry: MockConfigEntry,
    live_media: LiveMedia,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> AsyncIterator[MockConfigEntry]:
    """The entry set up, HA trusting the emulator's CA, the RTSP camera running."""
    assert live_media.tls_files is not None
    monkeypatch.setenv(
        "REQUESTS_CA_BUNDLE", str(ca_bundle(live_media.tls_files.ca, tmp_path / "ca.pem"))
    )
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()

    async def running() -> bool:
        return state(hass, "sensor.room_01_camera_01_stream_state") == "running"

    assert await until(running, 20)
    yield config_entry
    assert await hass.config_entries.async_unload(config_entry.entry_id)
    await LiveViews.of(hass, config_entry.entry_id).async_close("done")
    await no_media_threads()


async def get_url(hass: HomeAssistant, entity_id: str = CAMERA) -> URL:
    """The camera's restream URL, from the action's response."""
    response = await hass.services.async_call(
        DOMAIN,
        "get_restream_url",
        target={"entity_id": entity_id},
        blocking=True,
        return_response=True,
    )
    assert response is not None
    camera = response[entity_id]
    assert isinstance(camera, dict)
    url = camera["url"]
    assert isinstance(url, str)
    return URL(url)


def relative(url: URL) -> str:
    """The URL's path and query (the test client adds its own host)."""
    return str(url.relative())


async def take(response: ClientResponse, seconds: float) -> tuple[bytes, float]:
    """What the response gives within `seconds`, and the longest wait for its next bytes."""
    data = bytearray()
    arrivals = [time.monotonic()]
    try:
        async with asyncio.timeout(seconds):
            while chunk := await response.content.read(65536):
                data += chunk
                arrivals.append(time.monotonic())
    except TimeoutError:
        pass
    return bytes(data), max((b - a for a, b in itertools.pairwise(arrivals)), default=seconds)


@pytest.mark.usefixtures("restream")
async def test_a_recorder_reads_one_url_across_extensions(
    hass: HomeAssistant, hass_client_no_auth: ClientSessionGenerator, emulator: Emulator
) -> None:
    """Without an HA login, one URL gives MPEG-TS (H.264 + AAC) that starts at a key frame,
    decodes whole and rises without a gap over a second through two extensions (each rotates
    the stream token and ends the old session), on the camera's one Google session."""
    url = await get_url(hass)
    assert url.path.startswith("/api/nest_streams/restream/")
    assert len(url.query["secret"]) >= 40
    assert await get_url(hass) == url, "the URL is stable"
    client = await hass_client_no_auth()
    extensions = emulator.metrics.calls[EXTEND]
    response = await client.get(relative(url))
    assert response.status == 200
    assert response.headers["Content-Type"] == "video/mp2t"
    data, longest_wait = await take(response, 2 * LIFETIME - 5)
    response.close()
    assert longest_wait < 1.0, "no stall at the token switches"
    assert emulator.metrics.calls[EXTEND] - extensions >= 2
    found = demux(data)
    assert found["codecs"] == ["h264", "aac"]
    assert found["keys"][0]
    assert found["frames"] == len(found["times"])
    steps = [b - a for a, b in itertools.pairwise(found["times"])]
    assert min(steps) > 0
    assert max(steps) < 1.0
    assert found["times"][-1] - found["times"][0] > 2 * LIFETIME - 8
    assert found["audio"] > 100
    assert emulator.report()["media"]["sessions"]["clients_per_url_max"] == 1

    assert await until(no_reader(hass, emulator), 5), "the reader that left is gone"


def no_reader(hass: HomeAssistant, emulator: Emulator) -> Callable[[], Awaitable[bool]]:
    """Whether the RTSP camera has no reader."""
    views = LiveViews.of(hass, hass.config_entries.async_entries(DOMAIN)[0].entry_id)
    device_id = emulator.device_name(next(iter(emulator.devices)))

    async def check() -> bool:
        return views.readers(device_id) == 0

    return check


@pytest.mark.usefixtures("restream")
async def test_the_url_refuses_a_wrong_or_rotated_secret(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    hass_client: ClientSessionGenerator,
    emulator: Emulator,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without the camera's secret nothing is served (401, logged once without the secret);
    an unknown camera is 404; diagnostics hold no secret; the secret survives a reload;
    rotating it ends the reader of the old URL, which is then refused, and the new URL plays;
    readers beyond the bound get 503; a WebRTC camera has no URL."""
    caplog.set_level(logging.DEBUG)
    assert await async_setup_component(hass, "diagnostics", {})  # before a client freezes routes
    client = await hass_client_no_auth()
    url = await get_url(hass)
    secret = url.query["secret"]
    for wrong in (url.with_query(None), url.with_query(secret=secret[:-1] + "x")):
        assert (await client.get(relative(wrong))).status == 401
    assert len([r for r in caplog.records if "wrong or no secret" in r.getMessage()]) == 1
    unknown = url.with_path("/api/nest_streams/restream/nothing")
    assert (await client.get(relative(unknown))).status == 404

    entry = hass.config_entries.async_entries(DOMAIN)[0]
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert await get_url(hass) == url, "the secret survives a reload"
    saved = await RestreamSecrets.async_load(hass, entry.entry_id)
    assert saved.matches(emulator.device_name(next(iter(emulator.devices))), secret)

    reader = await client.get(relative(url))
    assert reader.status == 200
    assert await reader.content.read(188)
    monkeypatch.setattr("custom_components.nest_streams.live.MAX_READERS_PER_CAMERA", 1)
    refused = await client.get(relative(url))
    assert refused.status == 503
    assert "the most it serves" in await refused.text()
    monkeypatch.setattr("custom_components.nest_streams.live.MAX_READERS_PER_CAMERA", 4)
    monkeypatch.setattr("custom_components.nest_streams.live.MAX_READERS", 1)
    refused = await client.get(relative(url))
    assert refused.status == 503
    assert "at most 1 readers" in await refused.text()

    await hass.services.async_call(
        DOMAIN, "rotate_restream_secret", target={"entity_id": CAMERA}, blocking=True
    )
    async with asyncio.timeout(5):
        while await reader.content.read(65536):
            pass  # the old reader's response ends
    assert await until(no_reader(hass, emulator), 5)
    assert (await client.get(relative(url))).status == 401
    new = await get_url(hass)
    assert new.query["secret"] != secret
    fresh = await client.get(relative(new))
    assert fresh.status == 200
    assert (await fresh.content.read(188))[0] == 0x47, "an MPEG-TS packet"
    fresh.close()

    with pytest.raises(ServiceValidationError) as err:
        await get_url(hass, "camera.room_02_webrtc_camera_01")
    assert err.value.translation_key == "no_restream"
    # Not: the test harness's storage mock (it logs what it writes; HA's Store does not) and
    # aiohttp's access log (HA's bootstrap sets it to WARNING: its request lines never show).
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    assert secret not in json.dumps(diagnostics)
    assert new.query["secret"] not in json.dumps(diagnostics)
    logged = "\n".join(
        record.getMessage()
        for record in caplog.records
        if not record.name.startswith(("pytest_homeassistant_custom_component", "aiohttp.access"))
    )
    assert secret not in logged
    assert new.query["secret"] not in logged


@pytest.mark.usefixtures("restream")
async def test_a_recorder_waits_through_an_outage_on_the_same_connection(
    hass: HomeAssistant, hass_client_no_auth: ClientSessionGenerator, emulator: Emulator
) -> None:
    """Google's stream expires while the camera's commands fail: the recorder's connection
    stays open without data (a pause, not an end), and when the camera is started again its
    picture comes back on the same connection, its clock still rising."""
    url = await get_url(hass)
    client = await hass_client_no_auth()
    response = await client.get(relative(url))
    before, _ = await take(response, 3)
    assert before
    device = next(iter(emulator.devices))
    emulator.config.faults.failing_devices = {device}

    async def expired_at_google() -> bool:
        return not any(
            record.device_id == device and record.end() > emulator.clock.now()
            for record in emulator.streams.values()
        )

    assert await until(expired_at_google, LIFETIME + 10)
    during, _ = await take(response, 3)
    emulator.config.faults.failing_devices = set()
    await hass.services.async_call(
        DOMAIN, "start_stream", target={"entity_id": CAMERA}, blocking=True
    )
    # The new stream may wait for Google's per-device minute (the failed commands count).
    async with asyncio.timeout(75):
        first = await response.content.read(65536)
    after, _ = await take(response, 5)
    response.close()
    assert first, "the picture came back on the same connection"
    after = first + after
    found = demux(before + during + after)
    steps = [b - a for a, b in itertools.pairwise(found["times"])]
    assert min(steps) > 0
    assert found["frames"] == len(found["times"])
