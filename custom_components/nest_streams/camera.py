"""Camera entities: RTSP cameras stream from the kept-alive URL; WebRTC cameras answer offers."""

from __future__ import annotations

import logging
from typing import override

from aiohttp import web
from homeassistant.components.camera import Camera
from homeassistant.components.camera.const import CameraEntityFeature
from homeassistant.components.camera.webrtc import (
    WebRTCClientConfiguration,
    WebRTCSendMessage,
)
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.translation import async_get_translations
from webrtc_models import RTCIceCandidateInit

from .const import DOMAIN
from .coordinator import NestStreamsConfigEntry, NestStreamsCoordinator
from .core.models import StreamProtocol, StreamState
from .entity import CameraStreamEntity, setup_camera_entities
from .media.placeholder import render
from .restream import restream_url
from .services import SERVICE_RESTART, SERVICE_START, SERVICE_STOP

_LOGGER = logging.getLogger(__name__)

PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant,
    entry: NestStreamsConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add a camera entity per camera (also for cameras added later)."""
    coordinator = entry.runtime_data.coordinator

    def create(device_id: str) -> list[NestStreamsCamera]:
        camera = coordinator.cameras[device_id]
        if camera.protocol is StreamProtocol.RTSP:
            return [RtspCamera(coordinator, device_id)]
        return [WebRtcCamera(coordinator, device_id)]

    entry.async_on_unload(setup_camera_entities(coordinator, async_add_entities, create))


class NestStreamsCamera(CameraStreamEntity, Camera):
    """A camera whose stream the coordinator keeps alive."""

    _attr_name = None
    _attr_supported_features = CameraEntityFeature.STREAM
    _attr_brand = "Google Nest"

    def __init__(self, coordinator: NestStreamsCoordinator, device_id: str) -> None:
        """Create the entity."""
        super().__init__(coordinator, device_id, "camera")
        Camera.__init__(self)
        # Stills are JPEG: frames of the running stream, else the placeholder.
        self.content_type = "image/jpeg"

    @property
    def is_streaming(self) -> bool:
        """Whether a stream is kept alive."""
        status = self.status
        return status is not None and status.state is StreamState.RUNNING

    keeps_alive = True
    """Whether the camera's stream is kept alive (RTSP), so the services apply to it."""

    @callback
    def apply_service(self, name: str) -> None:
        """Run a service the call's check allowed (`services.py`): the user's wish is saved
        and admission runs again; a restart also replaces the stream now."""
        if name == SERVICE_RESTART:
            self.coordinator.restart(self.device_id)
        elif name == SERVICE_START:
            self.coordinator.start(self.device_id)
        elif name == SERVICE_STOP:
            self.coordinator.stop(self.device_id)

    async def async_restream_url(self) -> str:
        """The camera's restream URL for recorders (RTSP cameras only)."""
        raise self._no_restream()

    async def async_rotate_restream_secret(self) -> None:
        """A new secret for the camera's restream URL (RTSP cameras only)."""
        raise self._no_restream()

    def _no_restream(self) -> ServiceValidationError:
        return ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="no_restream",
            translation_placeholders={"entity_id": self.entity_id},
        )

    @override
    async def async_camera_image(
        self, width: int | None = None, height: int | None = None
    ) -> bytes | None:
        """The camera's state picture: its logo with the stream state (translated) and, when
        it failed, why (the SDM API has no still images; RTSP cameras show frames instead
        while their stream plays). Rendered once per state and reason."""
        status = self.status
        state = status.state if status is not None else StreamState.STARTING
        if state is StreamState.RUNNING:
            state = StreamState.STARTING  # running, but no picture yet
        translations = await async_get_translations(
            self.hass, self.hass.config.language, "entity", {DOMAIN}
        )
        title = translations.get(
            f"component.{DOMAIN}.entity.sensor.stream_state.state.{state.value}", state.value
        )
        detail = (
            status.last_error
            if status is not None
            and state in (StreamState.FAILED, StreamState.DEGRADED, StreamState.HOURLY_LIMIT)
            else None
        )
        return await self.hass.async_add_executor_job(render, title, detail)


class RtspCamera(NestStreamsCamera):
    """An RTSP camera: one session of its stream inside HA feeds every live view and still.

    Google allows one client per stream URL, so nothing but the camera's feed (`live.py`,
    `media/`) opens it: not HA's stream worker (`stream_source` is None), not a second viewer.
    """

    @override
    async def stream_source(self) -> str | None:
        """None: HA's stream worker would be a second client of Google's URL."""
        return None

    def _running_url(self) -> str | None:
        # Starting with a URL: a stream taken over after a reload or restart, still playing
        # while its first extension waits for its turn; closing the feed then would stall
        # the live view until the next key frame.
        status = self.status
        if status is None or status.state not in (StreamState.RUNNING, StreamState.STARTING):
            return None
        return status.stream_url

    @property
    def _camera_name(self) -> str:
        return self.coordinator.cameras[self.device_id].name

    @override
    async def async_handle_async_webrtc_offer(
        self, offer_sdp: str, session_id: str, send_message: WebRTCSendMessage
    ) -> None:
        """Answer the viewer with a relay of the camera's one session (costs no command)."""
        await self.coordinator.live.relay_offer(
            self.device_id, self._camera_name, session_id, offer_sdp, send_message
        )

    @override
    async def async_on_webrtc_candidate(
        self, session_id: str, candidate: RTCIceCandidateInit
    ) -> None:
        """A candidate of the viewer's, for its relay."""
        await self.coordinator.live.candidate(session_id, candidate.candidate, candidate.sdp_mid)

    @callback
    @override
    def close_webrtc_session(self, session_id: str) -> None:
        """The viewer left (maybe before its answer): its relay ends."""
        self.coordinator.live.close_session(session_id)
        super().close_webrtc_session(session_id)

    @override
    async def async_camera_image(
        self, width: int | None = None, height: int | None = None
    ) -> bytes | None:
        """The newest key frame of the camera's session; the placeholder without one."""
        if self.is_streaming:
            image = await self.coordinator.live.still(
                self.device_id, self._camera_name, width, height
            )
            if image:
                return image
        return await super().async_camera_image(width, height)

    @override
    async def handle_async_mjpeg_stream(self, request: web.Request) -> web.StreamResponse | None:
        """The picture as MJPEG (the frontend's fallback without WebRTC)."""
        if not self.is_streaming:
            return None
        return await self.coordinator.live.mjpeg(self.device_id, self._camera_name, request)

    @override
    async def async_restream_url(self) -> str:
        """The camera's restream URL; its secret is made (and saved) on first use."""
        secrets = self.coordinator.config_entry.runtime_data.restream
        return restream_url(self.hass, self.device_id, await secrets.async_ensure(self.device_id))

    @override
    async def async_rotate_restream_secret(self) -> None:
        """A new secret; the recorders reading the old URL are ended."""
        await self.coordinator.config_entry.runtime_data.restream.async_rotate(self.device_id)
        self.coordinator.live.end_readers(self.device_id, "the restream secret was rotated")

    async def async_added_to_hass(self) -> None:
        """Hand the camera's current URL to its feed."""
        await super().async_added_to_hass()
        self._update_feed()

    def _update_feed(self) -> None:
        self.coordinator.live.media(self.device_id, self._camera_name).feed.set_url(
            self._running_url()
        )

    @callback
    @override
    def _handle_coordinator_update(self) -> None:
        """Hand a rotated stream token (or the stream's end) to the camera's feed: a new URL
        is opened beside the running session and taken over at its first key frame."""
        self._update_feed()
        super()._handle_coordinator_update()


class WebRtcCamera(NestStreamsCamera):
    """A WebRTC-only camera: each viewer's offer gets a session from the shared queue."""

    keeps_alive = False
    """On demand: nothing to start, stop or restart (the services skip or refuse it)."""

    @property
    @override
    def is_streaming(self) -> bool:
        """Whether someone watches (WebRTC cameras stream on demand)."""
        return self.coordinator.live.watched(self.device_id)

    @override
    def _async_get_webrtc_client_configuration(self) -> WebRTCClientConfiguration:
        """Ask the frontend for a data channel: Google refuses offers without one."""
        return WebRTCClientConfiguration(data_channel="dataSendChannel")

    @override
    async def async_handle_async_webrtc_offer(
        self, offer_sdp: str, session_id: str, send_message: WebRTCSendMessage
    ) -> None:
        """Generate a session for the viewer ahead of background work and keep it extended."""
        await self.coordinator.live.google_offer(
            self.device_id, session_id, offer_sdp, send_message
        )

    @override
    async def async_on_webrtc_candidate(
        self, session_id: str, candidate: RTCIceCandidateInit
    ) -> None:
        """Google's answer carries its candidates; the viewer's are not needed."""

    @callback
    @override
    def close_webrtc_session(self, session_id: str) -> None:
        """The viewer left (maybe before its answer): its session is stopped at Google."""
        self.coordinator.live.close_session(session_id)
        super().close_webrtc_session(session_id)
