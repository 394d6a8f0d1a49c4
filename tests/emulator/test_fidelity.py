"""The unmodified google-nest-sdm client against the emulator over real HTTP on loopback.

A client we did not write must not tell the emulator from Google: listing, RTSP and WebRTC
generate/extend/stop, and the error cases raise the library's own exception classes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
import json
import re
from typing import override
from urllib.parse import parse_qs, urlparse

import aiohttp
from google_nest_sdm.auth import AbstractAuth
from google_nest_sdm.camera_traits import RtspStream, WebRtcStream
from google_nest_sdm.device import Device
from google_nest_sdm.exceptions import (
    ApiException,
    AuthException,
    FailedPreconditionException,
    NotFoundException,
)
from google_nest_sdm.google_nest_api import GoogleNestAPI
import pytest

from sdm_emulator import Emulator
from sdm_emulator.clock import ManualClock

from ..common import CHROME_OFFER as OFFER
from .common import PROJECT


class EmulatorAuth(AbstractAuth):
    """The library's auth, pointed at the emulator's host."""

    def __init__(self, session: aiohttp.ClientSession, host: str, token: str) -> None:
        super().__init__(session, host)
        self.token = token

    @override
    async def async_get_access_token(self) -> str:
        return self.token


@pytest.fixture
async def api(server: str, emulator: Emulator) -> AsyncIterator[GoogleNestAPI]:
    async with aiohttp.ClientSession() as session:
        auth = EmulatorAuth(session, f"{server}/v1", emulator.issue_tokens()["access_token"])
        yield GoogleNestAPI(auth, PROJECT)


async def _device(api: GoogleNestAPI, device_id: str) -> Device:
    device = await api.async_get_device(device_id)
    assert device is not None
    return device


async def test_listing(api: GoogleNestAPI) -> None:
    devices = {device.name.rsplit("/", 1)[-1]: device for device in await api.async_get_devices()}
    assert set(devices) == {
        "rtsp-01",
        "rtsp-02",
        "webrtc-01",
        "battery-01",
        "doorbell-01",
        "thermostat-01",
    }
    camera = devices["rtsp-01"]
    assert camera.info is not None
    assert camera.info.custom_name == "Camera 01"
    assert camera.camera_live_stream is not None
    assert [p.value for p in camera.camera_live_stream.supported_protocols] == ["RTSP"]
    assert list(camera.parent_relations.values()) == ["Room 01"]
    assert devices["thermostat-01"].camera_live_stream is None
    structures = await api.async_get_structures()
    assert structures[0].info is not None
    assert structures[0].info.custom_name == "Home"


async def test_rtsp_generate_extend_stop(api: GoogleNestAPI, clock: ManualClock) -> None:
    trait = (await _device(api, "rtsp-01")).camera_live_stream
    assert trait is not None
    stream = await trait.generate_rtsp_stream()
    assert isinstance(stream, RtspStream)
    assert stream.rtsp_stream_url.endswith(f"auth={stream.stream_token}")
    clock.advance(250)
    extended = await stream.extend_rtsp_stream()
    assert extended.expires_at > stream.expires_at
    assert extended.stream_token != stream.stream_token
    assert extended.rtsp_stream_url.endswith(f"auth={extended.stream_token}")
    # The superseded extension token is refused.
    with pytest.raises(ApiException) as refused:
        await stream.extend_rtsp_stream()
    assert "INVALID_ARGUMENT" in str(refused.value)
    await extended.stop_rtsp_stream()
    with pytest.raises(ApiException):
        await extended.extend_rtsp_stream()


async def test_webrtc_generate_extend_stop(api: GoogleNestAPI) -> None:
    trait = (await _device(api, "webrtc-01")).camera_live_stream
    assert trait is not None
    stream = await trait.generate_web_rtc_stream(OFFER)
    assert isinstance(stream, WebRtcStream)
    assert stream.answer_sdp.startswith("v=0")
    extended = await stream.extend_stream()
    assert extended.media_session_id == stream.media_session_id
    await extended.stop_stream()


async def test_battery_camera_cannot_extend(api: GoogleNestAPI) -> None:
    """A battery camera refuses extensions (as a battery doorbell does) and reports what a
    battery doorbell reports: 640x480, AAC."""
    trait = (await _device(api, "battery-01")).camera_live_stream
    assert trait is not None
    assert (trait.max_video_resolution.width, trait.max_video_resolution.height) == (640, 480)
    assert trait.audio_codecs == ["AAC"]
    stream = await trait.generate_web_rtc_stream(OFFER)
    with pytest.raises(
        FailedPreconditionException, match=re.escape("Command not supported for camera.")
    ):
        await stream.extend_stream()


async def test_a_dead_webrtc_session_cannot_be_extended(api: GoogleNestAPI) -> None:
    trait = (await _device(api, "webrtc-01")).camera_live_stream
    assert trait is not None
    stream = await trait.generate_web_rtc_stream(OFFER)
    await stream.stop_stream()
    with pytest.raises(
        FailedPreconditionException,
        match=re.escape("WebRtc error caused by invalid session or user id mismatch."),
    ):
        await stream.extend_stream()


async def test_wrong_enterprise(server: str, emulator: Emulator) -> None:
    async with aiohttp.ClientSession() as session:
        token = emulator.issue_tokens()["access_token"]
        other = GoogleNestAPI(EmulatorAuth(session, f"{server}/v1", token), "other")
        with pytest.raises(NotFoundException, match=re.escape("Enterprise not found.")):
            await other.async_get_devices()


async def test_expired_stream(api: GoogleNestAPI, clock: ManualClock) -> None:
    trait = (await _device(api, "rtsp-02")).camera_live_stream
    assert trait is not None
    stream = await trait.generate_rtsp_stream()
    clock.advance(301)
    with pytest.raises(FailedPreconditionException):
        await stream.extend_rtsp_stream()


async def test_unknown_device_and_bad_token(api: GoogleNestAPI, server: str) -> None:
    with pytest.raises(
        NotFoundException,
        match=re.escape(f"Device enterprises/{PROJECT}/devices/missing not found."),
    ):
        await api.async_get_device("missing")
    async with aiohttp.ClientSession() as session:
        bad = GoogleNestAPI(EmulatorAuth(session, f"{server}/v1", "expired"), PROJECT)
        with pytest.raises(AuthException):
            await bad.async_get_devices()


async def test_quota_and_server_errors(api: GoogleNestAPI, emulator: Emulator) -> None:
    trait = (await _device(api, "rtsp-01")).camera_live_stream
    assert trait is not None
    for _ in range(5):
        await trait.generate_rtsp_stream()
    with pytest.raises(ApiException) as quota:
        await trait.generate_rtsp_stream()
    assert "RESOURCE_EXHAUSTED" in str(quota.value)
    assert "(429)" in str(quota.value)

    emulator.config.faults.failing_devices = {"rtsp-02"}
    trait = (await _device(api, "rtsp-02")).camera_live_stream
    assert trait is not None
    with pytest.raises(ApiException) as server_error:
        await trait.generate_rtsp_stream()
    assert "(500)" in str(server_error.value)


async def test_malformed_answer(api: GoogleNestAPI, emulator: Emulator) -> None:
    trait = (await _device(api, "rtsp-01")).camera_live_stream
    assert trait is not None
    emulator.config.faults.rate_malformed = 1.0
    with pytest.raises(json.JSONDecodeError):
        await trait.generate_rtsp_stream()


async def test_lost_connection(api: GoogleNestAPI, emulator: Emulator) -> None:
    """Over HTTP a lost call is a dropped connection: the client gets no answer at all."""
    trait = (await _device(api, "rtsp-01")).camera_live_stream
    assert trait is not None
    emulator.config.faults.rate_lost = 1.0
    with pytest.raises(ApiException, match="Error connecting to API") as raised:
        await trait.generate_rtsp_stream()
    assert isinstance(raised.value.__cause__, aiohttp.ServerDisconnectedError)
    assert emulator.streams == {}


async def test_oauth_over_http(server: str, emulator: Emulator, clock: ManualClock) -> None:
    async with aiohttp.ClientSession() as session:
        response = await session.get(
            f"{server}/partnerconnections/{PROJECT}/auth",
            params={"redirect_uri": "http://127.0.0.1/cb", "state": "abc"},
            allow_redirects=False,
        )
        assert response.status == 302
        query = parse_qs(urlparse(response.headers["Location"]).query)
        token = await session.post(
            f"{server}/oauth2/v4/token",
            data={
                "grant_type": "authorization_code",
                "code": query["code"][0],
                "redirect_uri": "http://127.0.0.1/cb",
            },
        )
        body = await token.json()
        assert token.status == 200
        assert body["expires_in"] == 3599
        assert body["refresh_token"]
        refresh = body["refresh_token"]
        # A project in "Testing" status: the refresh token stops after 7 days (invalid_grant).
        emulator.config.refresh_token_lifetime = 7 * 24 * 3600.0
        clock.advance(7 * 24 * 3600)
        refreshed = await session.post(
            f"{server}/oauth2/v4/token",
            data={"grant_type": "refresh_token", "refresh_token": refresh},
        )
        assert refreshed.status == 400
        assert (await refreshed.json())["error"] == "invalid_grant"


async def test_rate_limit_texts(api: GoogleNestAPI, emulator: Emulator) -> None:
    """The project's limit names ExecuteDeviceCommand, the per-device one the command; both
    carry Google's `errors[].reason`."""
    trait = (await _device(api, "rtsp-01")).camera_live_stream
    assert trait is not None
    for _ in range(5):
        await trait.generate_rtsp_stream()
    with pytest.raises(
        ApiException, match=r"\(429\): Rate limited for the GenerateRtspStream API for the user\."
    ):
        await trait.generate_rtsp_stream()
    other = (await _device(api, "rtsp-02")).camera_live_stream
    assert other is not None
    for _ in range(5):
        await other.generate_rtsp_stream()
    with pytest.raises(
        ApiException, match=r"\(429\): Rate limited for the ExecuteDeviceCommand API for the user\."
    ):
        await other.generate_rtsp_stream()


@pytest.mark.parametrize("limit", [100, 20])
async def test_hourly_per_device_limit(
    api: GoogleNestAPI, emulator: Emulator, clock: ManualClock, limit: int
) -> None:
    emulator.config.device_qph = limit
    emulator.config.execute_qpm = emulator.config.device_command_qpm = 1000
    trait = (await _device(api, "rtsp-01")).camera_live_stream
    assert trait is not None
    for _ in range(limit):  # the device read above is no command
        await trait.generate_rtsp_stream()
    with pytest.raises(ApiException, match=r"\(429\).*GenerateRtspStream"):
        await trait.generate_rtsp_stream()


async def test_fixed_quota_window(
    api: GoogleNestAPI, emulator: Emulator, clock: ManualClock
) -> None:
    """The documented fixed window: a command at 0 s and 9 at 50-58 s fill the window opened at
    0 s; right after it closed 10 more pass (a sliding window would take one)."""
    emulator.config.device_command_qpm = 1000  # the project's limit alone
    trait = (await _device(api, "rtsp-01")).camera_live_stream
    assert trait is not None
    start = clock.now()
    await trait.generate_rtsp_stream()
    clock.advance(50)
    for _ in range(9):
        await trait.generate_rtsp_stream()
        clock.advance(1)
    with pytest.raises(ApiException, match=r"\(429\).*ExecuteDeviceCommand"):
        await trait.generate_rtsp_stream()
    clock.advance(start + 61 - clock.now())
    for _ in range(10):
        await trait.generate_rtsp_stream()
    with pytest.raises(ApiException, match=r"\(429\).*ExecuteDeviceCommand"):
        await trait.generate_rtsp_stream()


async def test_conflict_on_generate(api: GoogleNestAPI, emulator: Emulator) -> None:
    trait = (await _device(api, "rtsp-01")).camera_live_stream
    assert trait is not None
    emulator.config.faults.rate_409 = 1.0
    with pytest.raises(ApiException, match=r"\(409\).*ABORTED.*The operation was aborted\."):
        await trait.generate_rtsp_stream()


@pytest.mark.parametrize(
    ("device", "payload", "status", "message"),
    [
        (
            "webrtc-01",
            {"command": "sdm.devices.commands.CameraLiveStream.GenerateRtspStream"},
            400,
            "Command sdm.devices.commands.CameraLiveStream.GenerateRtspStream not supported.",
        ),
        ("rtsp-01", {"params": {}}, 404, "No command provided"),
    ],
)
async def test_requests_the_library_never_sends(
    server: str,
    emulator: Emulator,
    device: str,
    payload: dict[str, object],
    status: int,
    message: str,
) -> None:
    """Over HTTP as any client would send them (google-nest-sdm refuses them before sending)."""
    token = emulator.issue_tokens()["access_token"]
    async with aiohttp.ClientSession() as session:
        response = await session.post(
            f"{server}/v1/enterprises/{PROJECT}/devices/{device}:executeCommand",
            json=payload,
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status == status
        assert (await response.json())["error"]["message"] == message
