"""SDM adapter: google-nest-sdm on one side, the core's `StreamClient` on the other.

This is the only module that imports google_nest_sdm. It imports nothing from Home Assistant:
the HA layer hands it an aiohttp session and an access-token callback, which is how the
benchmarks can drive it against the emulator too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from http import HTTPStatus
import logging
import re
from typing import Any, override
from urllib.parse import parse_qs, urlparse

import aiohttp
from google_nest_sdm.auth import AbstractAuth
from google_nest_sdm.camera_traits import (
    CameraLiveStreamTrait,
    RtspStream,
    Stream,
    StreamUrls,
    WebRtcStream,
)
from google_nest_sdm.device import Device
from google_nest_sdm.exceptions import ApiException, ApiTimeoutException
from google_nest_sdm.google_nest_api import GoogleNestAPI
from mashumaro.exceptions import MissingField

from .core.errors import (
    AuthFailed,
    CommandFailed,
    ExtendUnsupported,
    QuotaExceeded,
    StreamError,
    StreamGone,
    TransientError,
)
from .core.models import CameraInfo, StreamHandle, StreamProtocol

_LOGGER = logging.getLogger(__name__)

_RATE_LIMITED = re.compile(r"Rate limited for the (\w+) API")

MALFORMED = "the answer from Google could not be read"
"""A command's error when its answer was cut or not JSON (Google may have executed it)."""

LIST_TIMEOUT = 20.0
"""Seconds a device-list read may take (a slow list must not hold up a set-up or a re-read)."""

TokenGetter = Callable[[bool], Awaitable[str]]
"""A valid access token; with True, a newly refreshed one (the current one was refused)."""


class HttpError(StreamError):
    """An error answer of the SDM API, by status; `SdmClient` maps it onto the core's errors."""

    def __init__(self, status: int, message: str, google_status: str | None = None) -> None:
        """Describe the answer: HTTP status, Google's message and status name."""
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message
        self.google_status = google_status


class TokenAuth(AbstractAuth):
    """google-nest-sdm auth whose access token comes from a callback.

    Every error answer is raised as `HttpError` here, where the status code is known, and an
    answer that cannot be read, a lost connection or a timeout as the core's `TransientError`
    (maybe executed: Google may have carried the command out).
    """

    def __init__(self, websession: aiohttp.ClientSession, host: str, token: TokenGetter) -> None:
        """Initialize with HA's shared session, the API host and the token callback."""
        super().__init__(websession, host)
        self._token = token

    @override
    async def async_get_access_token(self) -> str:
        """Return a valid access token."""
        return await self._token(False)

    @override
    async def request(self, method: str, url: str, **kwargs: Any) -> aiohttp.ClientResponse:
        """Make a request; a 401 refreshes the access token once and tries again.

        Google may refuse an access token before its stated expiry (revoked server-side, a
        host clock behind Google's): only a refused refresh means re-authentication.
        """
        try:
            return await super().request(method, url, **kwargs)
        except HttpError as err:
            if err.status != HTTPStatus.UNAUTHORIZED:
                raise
        _LOGGER.debug("The access token was refused; refreshing it once")
        await self._token(True)
        return await super().request(method, url, **kwargs)

    @override
    async def _request(
        self, method: str, url: str, headers: dict[str, str], **kwargs: Any
    ) -> aiohttp.ClientResponse:
        """Send the request; a lost connection or a timeout may have executed the command."""
        try:
            response = await super()._request(method, url, headers, **kwargs)
            if response.status < 400:
                body = await response.json(content_type=None)
                if not isinstance(body, dict):
                    raise ValueError("not a JSON object")
        except TimeoutError as err:
            raise TransientError("no answer from the API", maybe_executed=True) from err
        except aiohttp.ClientConnectionError as err:
            raise TransientError(f"connection lost: {err}", maybe_executed=True) from err
        except (aiohttp.ClientError, ValueError) as err:
            # The parser's own words (offsets, character positions) help nobody on a sensor.
            _LOGGER.debug("unreadable answer from the API: %s", err)
            raise TransientError(MALFORMED, maybe_executed=True) from err
        if response.status >= 400:
            raise HttpError(response.status, *await _error_detail(response))
        return response


async def _error_detail(response: aiohttp.ClientResponse) -> tuple[str, str | None]:
    """Google's error message and status name of an error response, or its status line."""
    try:
        error = (await response.json(content_type=None))["error"]
        return str(error["message"]), (str(error["status"]) if "status" in error else None)
    except aiohttp.ClientError, ValueError, KeyError, TypeError:
        return str(response.reason), None


class ProjectNotFound(CommandFailed):
    """Google knows no such Device Access project (or the account cannot see it)."""


def _core_error(err: HttpError, *, extending: bool, listing: bool = False) -> StreamError:
    """The core's error for an error answer.

    A refused extension or stop (400 INVALID_ARGUMENT / FAILED_PRECONDITION, 404) means the
    stream is gone; a 409 on a generation is a conflict that goes away on a retry.
    """
    message = str(err)
    if err.status == HTTPStatus.TOO_MANY_REQUESTS:
        # GUESS (from captured answers): the project-and-user limit names ExecuteDeviceCommand,
        # the per-device limit the command itself; nothing else in the answer tells them apart.
        limited = _RATE_LIMITED.search(err.message)
        per_device = limited is not None and limited.group(1) != "ExecuteDeviceCommand"
        return QuotaExceeded(message, per_device=per_device)
    if err.status >= HTTPStatus.INTERNAL_SERVER_ERROR or err.status == HTTPStatus.CONFLICT:
        return TransientError(message)
    if err.status == HTTPStatus.UNAUTHORIZED:
        _LOGGER.debug("refused credentials: %s", message)
        return AuthFailed()
    if (
        extending
        and err.status == HTTPStatus.BAD_REQUEST
        and err.google_status == "FAILED_PRECONDITION"
        and "not supported" in err.message.lower()
    ):
        return ExtendUnsupported(message)
    if extending and err.status in (HTTPStatus.BAD_REQUEST, HTTPStatus.NOT_FOUND):
        return StreamGone(message)
    if listing and err.status == HTTPStatus.NOT_FOUND:
        return ProjectNotFound(message)  # "Enterprise not found"
    return CommandFailed(message)


def _epoch(value: datetime) -> float:
    return value.timestamp()


def _camera_info(device: Device) -> CameraInfo | None:
    """A camera from a device, or None when the device cannot live stream."""
    trait = device.camera_live_stream
    if trait is None:
        return None
    rooms = [name for name in device.parent_relations.values() if name]
    room = rooms[0] if rooms else None
    custom = device.info.custom_name if device.info else None
    protocols = tuple(StreamProtocol(protocol.value) for protocol in trait.supported_protocols)
    return CameraInfo(
        device_id=device.name,
        name=custom or room or device.name.rsplit("/", 1)[-1],
        protocols=protocols,
        model=device.type,
        room=room,
    )


class SdmClient:
    """The SDM API for one Device Access project, as the core needs it."""

    def __init__(self, auth: AbstractAuth, project_id: str) -> None:
        """Initialize for `project_id`."""
        self._auth = auth
        self._api = GoogleNestAPI(auth, project_id)
        self._devices: dict[str, Device] = {}

    async def async_list_cameras(self) -> list[CameraInfo]:
        """Read the device list; return the cameras (devices without live streams are left out).

        A read without an answer within `LIST_TIMEOUT` seconds fails as a `TransientError`.
        """
        try:
            async with asyncio.timeout(LIST_TIMEOUT):
                devices = await self._call(self._api.async_get_devices(), listing=True)
        except TimeoutError as err:
            raise TransientError(f"no device list within {LIST_TIMEOUT:.0f} s") from err
        # Devices missing from one answer stay usable: whether a camera left the project is
        # the coordinator's call, and an empty answer must not break running streams.
        self._devices.update((device.name, device) for device in devices)
        return [info for device in devices if (info := _camera_info(device)) is not None]

    def restore_cameras(self, cameras: Iterable[CameraInfo]) -> None:
        """Make cameras saved by the last run commandable before a device list is read.

        The library's device is built from what the stream commands need (name, type, the
        live-stream trait's protocols); a device read from Google since is kept.
        """
        for camera in cameras:
            if camera.device_id in self._devices:
                continue
            raw = {
                "name": camera.device_id,
                "type": camera.model,
                "traits": {
                    CameraLiveStreamTrait.NAME: {
                        "supportedProtocols": [protocol.value for protocol in camera.protocols]
                    }
                },
            }
            self._devices[camera.device_id] = Device.MakeDevice(raw, self._auth)

    async def async_structure_names(self) -> list[str]:
        """Names of the project's structures (homes)."""
        structures = await self._call(self._api.async_get_structures())
        return [s.info.custom_name for s in structures if s.info and s.info.custom_name]

    def _trait(self, camera: CameraInfo) -> CameraLiveStreamTrait:
        device = self._devices.get(camera.device_id)
        if device is None or device.camera_live_stream is None:
            raise CommandFailed(f"unknown camera {camera.device_id}")
        return device.camera_live_stream

    async def generate(self, camera: CameraInfo, offer_sdp: str | None = None) -> StreamHandle:
        """Generate an RTSP stream, or a WebRTC stream for `offer_sdp`."""
        trait = self._trait(camera)
        if camera.protocol is StreamProtocol.RTSP:
            rtsp = await self._call(trait.generate_rtsp_stream())
            return _handle(rtsp)
        if offer_sdp is None:
            raise CommandFailed("a WebRTC stream needs an SDP offer")
        webrtc = await self._call(trait.generate_web_rtc_stream(offer_sdp))
        return _handle(webrtc)

    async def extend(self, camera: CameraInfo, stream: StreamHandle) -> StreamHandle:
        """Extend a stream; a refusal that means the stream is gone raises `StreamGone`."""
        library_stream = self._library_stream(camera, stream)
        extended = await self._call(library_stream.extend_stream(), extending=True)
        return _handle(extended)

    async def stop(self, camera: CameraInfo, stream: StreamHandle) -> None:
        """Stop a stream at Google."""
        await self._call(self._library_stream(camera, stream).stop_stream(), extending=True)

    def _library_stream(self, camera: CameraInfo, stream: StreamHandle) -> Stream:
        """Rebuild the library's stream object from a handle (also one restored from disk)."""
        command = self._trait(camera).cmd
        library_stream: Stream
        if stream.protocol is StreamProtocol.RTSP:
            url = stream.url or ""
            token = parse_qs(urlparse(url).query).get("auth", [""])[0]
            library_stream = RtspStream(
                expires_at=datetime.fromtimestamp(stream.expires_at, UTC),
                stream_urls=StreamUrls(rtsp_url=url),
                stream_token=token,
                stream_extension_token=stream.extension_token or "",
            )
        else:
            library_stream = WebRtcStream(
                expires_at=datetime.fromtimestamp(stream.expires_at, UTC),
                answer_sdp=stream.answer_sdp or "",
                media_session_id=stream.session_id or "",
            )
        # The library binds its command executor the same way after parsing a response.
        library_stream._cmd = command
        return library_stream

    @staticmethod
    async def _call[T](call: Awaitable[T], *, extending: bool = False, listing: bool = False) -> T:
        """Await a library call; map its errors onto the core's by status and class."""
        try:
            return await call
        except HttpError as err:
            raise _core_error(err, extending=extending, listing=listing) from err
        except StreamError:
            raise
        except ApiTimeoutException as err:
            raise TransientError(str(err), maybe_executed=True) from err
        except ApiException as err:
            raise CommandFailed(str(err)) from err
        except (KeyError, TypeError, ValueError, MissingField) as err:
            _LOGGER.debug("unreadable answer from the API: %r", err)
            raise TransientError(MALFORMED, maybe_executed=True) from err


def _handle(stream: Stream) -> StreamHandle:
    """The core's handle of a library stream."""
    if isinstance(stream, RtspStream):
        return StreamHandle(
            protocol=StreamProtocol.RTSP,
            expires_at=_epoch(stream.expires_at),
            url=stream.rtsp_stream_url,
            extension_token=stream.stream_extension_token,
        )
    if isinstance(stream, WebRtcStream):
        return StreamHandle(
            protocol=StreamProtocol.WEB_RTC,
            expires_at=_epoch(stream.expires_at),
            session_id=stream.media_session_id,
            answer_sdp=stream.answer_sdp,
        )
    raise TransientError(f"unexpected stream type {type(stream).__name__}")
