"""The SDM adapter (google-nest-sdm -> the core's client protocol) against the emulator."""

from __future__ import annotations

import asyncio
import json
from typing import cast
from unittest.mock import MagicMock

import aiohttp
import pytest

from custom_components.nest_streams import api
from custom_components.nest_streams.api import MALFORMED, SdmClient, TokenAuth
from custom_components.nest_streams.core.errors import (
    AUTH_REQUIRED,
    AuthFailed,
    CommandFailed,
    ExtendUnsupported,
    QuotaExceeded,
    StreamGone,
    TransientError,
)
from custom_components.nest_streams.core.models import CameraInfo, StreamHandle, StreamProtocol
from sdm_emulator import Emulator, EmulatorConfig, ScriptedFault, default_devices
from sdm_emulator.clock import ManualClock
from sdm_emulator.emulator import Reply
from sdm_emulator.faults import Fault
from sdm_emulator.inprocess import InProcessResponse, InProcessSession

from .common import CHROME_OFFER


@pytest.fixture
def emulator() -> Emulator:
    config = EmulatorConfig(devices=default_devices(2, webrtc=1, battery=1, doorbells=1))
    return Emulator(config, ManualClock())


@pytest.fixture
async def client(emulator: Emulator) -> SdmClient:
    token = emulator.issue_tokens()["access_token"]

    async def get_token(_refresh: bool = False) -> str:
        return str(token)

    session = cast(aiohttp.ClientSession, InProcessSession(emulator))
    sdm = SdmClient(TokenAuth(session, "https://sdm.example/v1", get_token), emulator.project_id)
    await sdm.async_list_cameras()
    return sdm


def _camera(cameras: list[CameraInfo], name: str) -> CameraInfo:
    return next(camera for camera in cameras if camera.device_id.endswith(name))


async def test_list_cameras_and_homes(client: SdmClient) -> None:
    cameras = await client.async_list_cameras()
    assert [camera.name for camera in cameras] == [
        "Camera 01",
        "Camera 02",
        "WebRTC Camera 01",
        "Battery Camera 01",
        "Doorbell 01",
    ]
    battery = _camera(cameras, "battery-01")
    assert battery.protocol is StreamProtocol.WEB_RTC
    assert battery.room == "Room 04"
    assert battery.model == "sdm.devices.types.CAMERA"
    assert await client.async_structure_names() == ["Home"]


async def test_rtsp_generate_extend_stop(client: SdmClient, emulator: Emulator) -> None:
    camera = _camera(await client.async_list_cameras(), "rtsp-01")
    stream = await client.generate(camera)
    assert stream.url is not None
    assert stream.url.startswith("rtsps://")
    extended = await client.extend(camera, stream)
    assert extended.url != stream.url
    assert extended.extension_token != stream.extension_token
    with pytest.raises(StreamGone):
        await client.extend(camera, stream)  # the superseded token
    await client.stop(camera, extended)
    assert emulator.report()["live_streams"] == 0


async def test_restored_handle_can_be_extended(client: SdmClient, emulator: Emulator) -> None:
    camera = _camera(await client.async_list_cameras(), "rtsp-02")
    stream = await client.generate(camera)
    copy = StreamHandle(
        protocol=stream.protocol,
        expires_at=stream.expires_at,
        url=stream.url,
        extension_token=stream.extension_token,
    )
    assert (await client.extend(camera, copy)).expires_at >= stream.expires_at


async def test_saved_cameras_work_before_a_list_is_read(
    client: SdmClient, emulator: Emulator
) -> None:
    """Cameras saved by the last run can be commanded by a new client (after a restart)."""
    cameras = await client.async_list_cameras()
    token = emulator.issue_tokens()["access_token"]

    async def get_token(_refresh: bool = False) -> str:
        return str(token)

    session = cast(aiohttp.ClientSession, InProcessSession(emulator))
    fresh = SdmClient(TokenAuth(session, "https://sdm.example/v1", get_token), emulator.project_id)
    fresh.restore_cameras(cameras)
    rtsp = await fresh.generate(_camera(cameras, "rtsp-01"))
    assert rtsp.url is not None
    assert (await fresh.extend(_camera(cameras, "rtsp-01"), rtsp)).url != rtsp.url
    webrtc = await fresh.generate(_camera(cameras, "webrtc-01"), CHROME_OFFER)
    assert webrtc.session_id
    assert emulator.report()["calls"]["devices.list"] == 2  # none by `fresh`
    # A device the new client then reads from Google is kept over the saved one.
    listed = await fresh.async_list_cameras()
    fresh.restore_cameras([CameraInfo(listed[0].device_id, "Old name")])
    assert (await fresh.generate(listed[0])).url is not None


async def test_a_device_list_without_answer_times_out(
    client: SdmClient, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A device list that does not come within LIST_TIMEOUT fails as a transient error."""
    monkeypatch.setattr(api, "LIST_TIMEOUT", 0.05)

    async def hang(_seconds: float) -> None:
        await asyncio.sleep(3600)

    monkeypatch.setattr(emulator.clock, "sleep", hang)  # a slow answer really waits
    emulator.config.faults.scripted.append(ScriptedFault(Fault.SLOW, 0, 1e9))
    with pytest.raises(TransientError, match="no device list within"):
        await client.async_list_cameras()


async def test_webrtc_and_battery(client: SdmClient) -> None:
    cameras = await client.async_list_cameras()
    wired = _camera(cameras, "webrtc-01")
    session = await client.generate(wired, CHROME_OFFER)
    assert session.session_id
    assert session.answer_sdp
    extended = await client.extend(wired, session)
    assert extended.session_id == session.session_id
    await client.stop(wired, extended)
    with pytest.raises(CommandFailed):
        await client.generate(wired)  # no offer

    battery = _camera(cameras, "battery-01")
    session = await client.generate(battery, CHROME_OFFER)
    with pytest.raises(StreamGone):
        await client.extend(battery, session)


@pytest.mark.parametrize(
    ("fault", "error", "maybe_executed"),
    [
        (Fault.QUOTA, QuotaExceeded, None),
        (Fault.ERROR_500, TransientError, False),
        (Fault.ERROR_503, TransientError, False),
        (Fault.MALFORMED, TransientError, True),
        (Fault.NOT_FOUND, CommandFailed, None),
        (Fault.CONFLICT, TransientError, False),  # retried like any passing error
    ],
)
async def test_errors_map_onto_the_core(
    client: SdmClient,
    emulator: Emulator,
    fault: Fault,
    error: type[Exception],
    maybe_executed: bool | None,
) -> None:
    camera = _camera(await client.async_list_cameras(), "rtsp-01")
    emulator.config.faults.scripted = [ScriptedFault(fault, 0, 10)]
    with pytest.raises(error) as raised:
        await client.generate(camera)
    if maybe_executed is not None:
        assert isinstance(raised.value, TransientError)
        assert raised.value.maybe_executed is maybe_executed
    if fault is Fault.MALFORMED:
        # Words for the camera's Last error, not the parser's offsets.
        assert str(raised.value) == MALFORMED


async def test_refused_token_is_an_auth_failure(client: SdmClient, emulator: Emulator) -> None:
    camera = _camera(await client.async_list_cameras(), "rtsp-01")
    emulator.revoke()
    with pytest.raises(AuthFailed):
        await client.generate(camera)


async def test_unknown_camera(client: SdmClient) -> None:
    with pytest.raises(CommandFailed):
        await client.generate(CameraInfo(device_id="enterprises/x/devices/gone", name="gone"))


async def test_extend_of_an_expired_stream(client: SdmClient, emulator: Emulator) -> None:
    camera = _camera(await client.async_list_cameras(), "doorbell-01")
    stream = await client.generate(camera)
    assert isinstance(emulator.clock, ManualClock)
    emulator.clock.advance(400)
    with pytest.raises(StreamGone):
        await client.extend(camera, stream)


class _ScriptedSession:
    """A session whose every request answers one scripted status and body, or raises."""

    def __init__(self, status: int, body: bytes | BaseException) -> None:
        self.status = status
        self.body = body

    async def request(self, method: str, url: str, **_: object) -> InProcessResponse:
        if isinstance(self.body, BaseException):
            raise self.body
        return InProcessResponse(method, url, Reply(self.status, self.body))


async def _scripted(
    emulator: Emulator, status: int, body: bytes | BaseException
) -> tuple[SdmClient, CameraInfo, StreamHandle, _ScriptedSession]:
    """A client that listed the emulator's cameras, then talks to a scripted session."""
    session = _ScriptedSession(200, b"")

    async def get_token(_refresh: bool = False) -> str:
        return "token"

    real = cast(aiohttp.ClientSession, InProcessSession(emulator))
    auth = TokenAuth(real, "https://sdm.example/v1", get_token)
    sdm = SdmClient(auth, emulator.project_id)
    emulator_token = emulator.issue_tokens()["access_token"]

    async def emulator_token_getter(_refresh: bool = False) -> str:
        return str(emulator_token)

    auth._token = emulator_token_getter
    cameras = await sdm.async_list_cameras()
    camera = _camera(cameras, "rtsp-01")
    stream = await sdm.generate(camera)
    session.status, session.body = status, body
    auth._websession = cast(aiohttp.ClientSession, session)
    return sdm, camera, stream, session


def _google_error(status: int, name: str) -> bytes:
    return json.dumps({"error": {"code": status, "message": "m", "status": name}}).encode()


@pytest.mark.parametrize(
    ("message", "per_device"),
    [
        ("Rate limited for the ExecuteDeviceCommand API for the user.", False),
        ("Rate limited for the GenerateRtspStream API for the user.", True),
        ("Quota exceeded.", False),
    ],
)
async def test_a_429_naming_the_command_is_the_devices_limit(
    emulator: Emulator, message: str, per_device: bool
) -> None:
    """Google's per-device limit names the command; the project's names ExecuteDeviceCommand."""
    body = json.dumps(
        {"error": {"code": 429, "message": message, "status": "RESOURCE_EXHAUSTED"}}
    ).encode()
    sdm, camera, _, _ = await _scripted(emulator, 429, body)
    with pytest.raises(QuotaExceeded) as raised:
        await sdm.generate(camera)
    assert raised.value.per_device is per_device


@pytest.mark.parametrize(
    ("status", "name", "on_generate", "on_extend"),
    [
        (400, "INVALID_ARGUMENT", CommandFailed, StreamGone),
        (400, "FAILED_PRECONDITION", CommandFailed, StreamGone),
        (401, "UNAUTHENTICATED", AuthFailed, AuthFailed),
        (403, "PERMISSION_DENIED", CommandFailed, CommandFailed),
        (404, "NOT_FOUND", CommandFailed, StreamGone),
        (409, "ABORTED", TransientError, TransientError),
        (429, "RESOURCE_EXHAUSTED", QuotaExceeded, QuotaExceeded),
        (500, "INTERNAL", TransientError, TransientError),
        (503, "UNAVAILABLE", TransientError, TransientError),
    ],
)
async def test_error_answers_map_by_status(
    emulator: Emulator,
    status: int,
    name: str,
    on_generate: type[Exception],
    on_extend: type[Exception],
) -> None:
    """Each status maps to the core's error by status (and whether a stream is extended)."""
    sdm, camera, stream, _ = await _scripted(emulator, status, _google_error(status, name))
    with pytest.raises(on_generate) as generating:
        await sdm.generate(camera)
    with pytest.raises(on_extend):
        await sdm.extend(camera, stream)
    if isinstance(generating.value, AuthFailed):  # the user's step, whatever refused
        assert str(generating.value) == AUTH_REQUIRED
    else:
        assert f"HTTP {status}" in str(generating.value)
    if isinstance(generating.value, TransientError):
        assert not generating.value.maybe_executed


@pytest.mark.parametrize(
    "failure",
    [
        aiohttp.ServerDisconnectedError(),
        aiohttp.ClientConnectorError(MagicMock(), OSError(111, "refused")),
        TimeoutError(),
        b"<html>not json</html>",
        b"[1, 2]",
    ],
    ids=["disconnected", "refused", "timeout", "html", "not-an-object"],
)
async def test_lost_or_unreadable_answers_may_have_executed(
    emulator: Emulator, failure: bytes | BaseException
) -> None:
    """No readable answer: Google may have run the command, so an extension is replaced."""
    sdm, camera, stream, _ = await _scripted(emulator, 200, failure)
    with pytest.raises(TransientError) as raised:
        await sdm.extend(camera, stream)
    assert raised.value.maybe_executed


async def test_google_texts_for_refused_webrtc_extensions(client: SdmClient) -> None:
    """Both answers are 400 FAILED_PRECONDITION: a dead session means the stream is gone (a new
    one is generated), a battery camera's refusal that it can never extend."""
    cameras = await client.async_list_cameras()
    wired, battery = _camera(cameras, "webrtc-01"), _camera(cameras, "battery-01")
    session = await client.generate(wired, CHROME_OFFER)
    await client.stop(wired, session)
    with pytest.raises(StreamGone, match="invalid session or user id mismatch") as dead:
        await client.extend(wired, session)
    assert not isinstance(dead.value, ExtendUnsupported)
    with pytest.raises(ExtendUnsupported, match="Command not supported for camera"):
        await client.extend(battery, await client.generate(battery, CHROME_OFFER))


async def test_a_project_google_does_not_know(emulator: Emulator, client: SdmClient) -> None:
    emulator.config.project_id = "another-project"
    with pytest.raises(api.ProjectNotFound, match="Enterprise not found"):
        await client.async_list_cameras()
