"""Camera entities: RTSP cameras stream from the kept-alive URL; WebRTC cameras answer offers."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from pathlib import Path
from typing import NoReturn, override

from aiortc import RTCIceServer
from homeassistant.components.camera import Camera
from homeassistant.components.camera.const import CameraEntityFeature
from homeassistant.components.camera.webrtc import (
    WebRTCAnswer,
    WebRTCClientConfiguration,
    WebRTCSendMessage,
)
from homeassistant.components.web_rtc import async_get_ice_servers
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from webrtc_models import RTCIceCandidateInit

from .const import DOMAIN
from .coordinator import NestStreamsConfigEntry, NestStreamsCoordinator
from .core.errors import OverCapacity, StreamError
from .core.models import StreamProtocol, StreamState
from .entity import CameraStreamEntity, setup_camera_entities
from .relay import RelayError, RelayPeer, RelaySource

_LOGGER = logging.getLogger(__name__)

PARALLEL_UPDATES = 0
PLACEHOLDER = Path(__file__).parent / "placeholder.jpg"
STILL_TIMEOUT = 6.0
"""Seconds a still waits for the stream's next key frame before the placeholder is used."""


@functools.cache
def _placeholder() -> bytes:
    return PLACEHOLDER.read_bytes()


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

    async def async_restart_stream(self) -> None:
        """Replace the camera's stream with a new one now (service `restart_stream`)."""
        if not self.coordinator.async_keep_alive(self.device_id, True):
            self._raise_over_capacity()
        self.coordinator.scheduler.stream(self.device_id).restart()

    async def async_stop_stream(self) -> None:
        """Stop keeping the stream alive and stop it at Google (service `stop_stream`)."""
        self.coordinator.async_keep_alive(self.device_id, False)

    async def async_start_stream(self) -> None:
        """Keep the stream alive again; a degraded camera is retried now (`start_stream`)."""
        if not self.coordinator.async_keep_alive(self.device_id, True):
            self._raise_over_capacity()
        self.coordinator.scheduler.stream(self.device_id).start()

    def _raise_over_capacity(self) -> NoReturn:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="over_capacity",
            translation_placeholders={
                "entity_id": self.entity_id,
                "capacity": str(self.coordinator.scheduler.capacity),
            },
        )

    @override
    async def async_camera_image(
        self, width: int | None = None, height: int | None = None
    ) -> bytes | None:
        """The placeholder (the SDM API has no still images of live cameras)."""
        return await self.hass.async_add_executor_job(_placeholder)


class RtspCamera(NestStreamsCamera):
    """An RTSP camera: live view over WebRTC (relayed), stills from HA's stream worker."""

    restart_on_new_token = False
    """Whether a rotated stream token restarts HA's stream worker (HA core's `nest` does).

    No: the new URL is handed to the worker for its next connection only; the worker serves
    stills (and HLS to players other than the dashboard), and a restart costs a gap. See the
    README ("Token rotation") for the measurements in both of the emulator's modes.
    """

    def __init__(self, coordinator: NestStreamsCoordinator, device_id: str) -> None:
        """Create the entity."""
        super().__init__(coordinator, device_id)
        self._viewers: dict[str, RelayPeer] = {}
        self._relay: RelaySource | None = None
        """The camera's RTSP stream for its live viewers (one session for all of them)."""

    def _running_url(self) -> str | None:
        status = self.status
        return status.stream_url if status and status.state is StreamState.RUNNING else None

    @override
    async def stream_source(self) -> str | None:
        """The current RTSP URL, with the newest stream token."""
        return self._running_url()

    @override
    async def async_handle_async_webrtc_offer(
        self, offer_sdp: str, session_id: str, send_message: WebRTCSendMessage
    ) -> None:
        """Answer the viewer with a relay of the camera's RTSP stream (see `relay.py`).

        Costs no command: the relay reads the stream kept alive for everyone (one RTSP session
        for all viewers), and follows its token when it rotates. Before the stream runs the
        viewer waits for it.
        """
        ice_servers = [
            RTCIceServer(urls=server.urls, username=server.username, credential=server.credential)
            for server in async_get_ice_servers(self.hass)
        ]
        if self._relay is None or not self._relay.live:
            self._relay = RelaySource(self._running_url)
        peer = RelayPeer(self._relay.subscribe(), ice_servers)
        try:
            answer = await peer.answer(offer_sdp)
        except RelayError as err:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="live_view_failed",
                translation_placeholders={"error": str(err)},
            ) from err
        self._viewers[session_id] = peer
        send_message(WebRTCAnswer(answer))

    @override
    async def async_on_webrtc_candidate(
        self, session_id: str, candidate: RTCIceCandidateInit
    ) -> None:
        """A candidate of the viewer's, for its relay."""
        if (peer := self._viewers.get(session_id)) is not None:
            await peer.add_candidate(candidate.candidate, candidate.sdp_mid)

    @callback
    @override
    def close_webrtc_session(self, session_id: str) -> None:
        """The viewer left: close its relay."""
        if (peer := self._viewers.pop(session_id, None)) is not None:
            self.hass.async_create_task(peer.close(), eager_start=True)
        super().close_webrtc_session(session_id)

    @override
    async def async_will_remove_from_hass(self) -> None:
        """Close the viewers' relays."""
        viewers = list(self._viewers.values())
        self._viewers.clear()
        await asyncio.gather(*(peer.close() for peer in viewers))
        await super().async_will_remove_from_hass()

    @override
    async def async_camera_image(
        self, width: int | None = None, height: int | None = None
    ) -> bytes | None:
        """A frame of the running stream (as HA core's `nest` does); the placeholder else."""
        if self.is_streaming and "stream" in self.hass.config.components:
            if self.stream is None:
                self.stream = await self.async_create_stream()
            if self.stream is not None:
                image: bytes | None = None
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(STILL_TIMEOUT):
                        image = await self.stream.async_get_image(width, height)
                        if image is None:  # the worker just started: wait for a key frame
                            image = await self.stream.async_get_image(
                                width, height, wait_for_next_keyframe=True
                            )
                if image:
                    return image
        return await super().async_camera_image(width, height)

    @callback
    @override
    def _handle_coordinator_update(self) -> None:
        """Hand a rotated stream token to the viewers' relays and to HA's stream worker.

        A relay opens the new URL beside the old one and moves at its first key frame. The
        worker keeps its connection (an open session may outlive extensions); only its next
        connection uses the new URL.
        """
        url = self._running_url()
        if url and self._relay is not None:
            self._relay.switch(url)
        if (stream := self.stream) is not None and url and stream.source != url:
            if self.restart_on_new_token:
                stream.update_source(url)
            else:
                stream.source = url
        super()._handle_coordinator_update()


class WebRtcCamera(NestStreamsCamera):
    """A WebRTC-only camera: each viewer's offer gets a session from the shared queue."""

    def __init__(self, coordinator: NestStreamsCoordinator, device_id: str) -> None:
        """Create the entity."""
        super().__init__(coordinator, device_id)
        self._viewers: dict[str, str] = {}

    @property
    @override
    def is_streaming(self) -> bool:
        """Whether someone watches (WebRTC cameras stream on demand)."""
        return bool(self._viewers)

    @override
    def _async_get_webrtc_client_configuration(self) -> WebRTCClientConfiguration:
        """Ask the frontend for a data channel: Google refuses offers without one."""
        return WebRTCClientConfiguration(data_channel="dataSendChannel")

    async def async_restart_stream(self) -> None:
        """WebRTC cameras are on demand: there is no kept-alive stream to restart."""
        self._raise_on_demand()

    async def async_stop_stream(self) -> None:
        """WebRTC cameras are on demand: there is no kept-alive stream to stop."""
        self._raise_on_demand()

    async def async_start_stream(self) -> None:
        """WebRTC cameras are on demand: a session starts when someone watches."""
        self._raise_on_demand()

    def _raise_on_demand(self) -> None:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="on_demand",
            translation_placeholders={"entity_id": self.entity_id},
        )

    @override
    async def async_handle_async_webrtc_offer(
        self, offer_sdp: str, session_id: str, send_message: WebRTCSendMessage
    ) -> None:
        """Generate a session for the viewer ahead of background work and keep it extended."""
        try:
            key, handle = await self.coordinator.scheduler.open_viewer(self.device_id, offer_sdp)
        except OverCapacity as err:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="webrtc_over_capacity",
                translation_placeholders={"error": str(err)},
            ) from err
        except StreamError as err:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="webrtc_failed",
                translation_placeholders={"error": str(err)},
            ) from err
        self._viewers[session_id] = key
        send_message(WebRTCAnswer(handle.answer_sdp or ""))
        self.async_write_ha_state()

    @override
    async def async_on_webrtc_candidate(
        self, session_id: str, candidate: RTCIceCandidateInit
    ) -> None:
        """Google's answer carries its candidates; the viewer's are not needed."""

    @callback
    @override
    def close_webrtc_session(self, session_id: str) -> None:
        """The viewer left: stop extending the session and stop it at Google."""
        if (key := self._viewers.pop(session_id, None)) is not None:
            self.coordinator.scheduler.close_viewer(key)
            if self.hass is not None and self.entity_id:
                self.async_write_ha_state()
        super().close_webrtc_session(session_id)

    @override
    async def async_will_remove_from_hass(self) -> None:
        """Close the viewers' sessions."""
        for session_id in list(self._viewers):
            self.close_webrtc_session(session_id)
        await super().async_will_remove_from_hass()
