"""Live views of one config entry: WebRTC sessions, stills and MJPEG, across entry reloads.

An options change, a re-authentication or a reconfigure reloads the entry: its entities and
coordinator are made anew. The frontend's live views must not notice, so everything they hang
on lives here, per entry id, and outlives the reload:
- each RTSP camera's `CameraMedia` (its one RTSP session and the viewers' relays): the new
  coordinator takes the saved stream over, so the session goes on with the same URL;
- each WebRTC camera viewer's Google session: the new scheduler adopts it and extends it on.
When the entry does not come back within `RELOAD_GRACE` (disabled, deleted, HA stopping), the
views are ended and each viewer's frontend is told why.

Every viewer is accounted for from its offer on: one that leaves before its answer ends what
its offer started (the relay's peer, or the Google session being generated).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from functools import partial
import logging
import os
import time
from typing import TYPE_CHECKING

from aiohttp import web
from aiortc import RTCIceServer
import certifi
from homeassistant.components.camera import async_get_still_stream
from homeassistant.components.camera.webrtc import (
    WebRTCAnswer,
    WebRTCError,
    WebRTCSendMessage,
)
from homeassistant.components.web_rtc import async_get_ice_servers
from homeassistant.const import EVENT_HOMEASSISTANT_STOP
from homeassistant.core import CALLBACK_TYPE, Event, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.event import async_call_later
from homeassistant.util.hass_dict import HassKey

from .const import DOMAIN
from .core.errors import OverCapacity, StreamError, ViewerWithdrawn
from .core.models import StreamHandle
from .media.hub import CameraMedia
from .media.restream import TsReader
from .media.webrtc import RelayError, resolve_ice_servers

if TYPE_CHECKING:
    from .coordinator import NestStreamsCoordinator

_LOGGER = logging.getLogger(__name__)

DATA: HassKey[dict[str, LiveViews]] = HassKey(f"{DOMAIN}_live")
RELOAD_GRACE = 60.0
"""Seconds the live views of an unloaded entry wait for it to be set up again (a reload)."""
MAX_VIEWERS_PER_CAMERA = 8
MAX_VIEWERS = 32
"""Live viewers of one entry in all (each RTSP viewer costs a relay peer, each WebRTC viewer
a Google session)."""
STILL_TIMEOUT = 6.0
"""Seconds a still waits for a key frame (a session opened now waits up to a GOP)."""
MAX_READERS_PER_CAMERA = 4
MAX_READERS = 16
"""Recorders reading restream URLs, per camera and of one entry in all (each costs a muxer
and a buffer, no Google session)."""
MJPEG_INTERVAL = 0.2
"""Seconds between the frames of an MJPEG stream (5 a second)."""
ENDED_CODE = "nest_streams_live_view_ended"


def ca_file() -> str:
    """The CA bundle HA's own HTTP client trusts (`REQUESTS_CA_BUNDLE`, else certifi's): the
    camera's `rtsps://` server is verified against it (FFmpeg finds no system CAs itself)."""
    return os.environ.get("REQUESTS_CA_BUNDLE") or certifi.where()


class TooManyReaders(Exception):
    """A recorder beyond the readers' bound (the text is its HTTP answer)."""


@dataclass(eq=False, slots=True)
class Viewer:
    """One frontend live view (a WebRTC session of HA's camera websocket API)."""

    session_id: str
    device_id: str
    send: WebRTCSendMessage
    relay: bool
    """An RTSP camera's view relayed by HA (else a WebRTC camera's Google session)."""
    key: str | None = None
    """The scheduler's key of the Google session."""
    handle: StreamHandle | None = None
    """The Google session, kept while no scheduler runs (a reload)."""
    closed: bool = False


class LiveViews:
    """The live views of one config entry (see the module)."""

    def __init__(self, hass: HomeAssistant, entry_id: str) -> None:
        """Views of entry `entry_id`; `bind` a coordinator to use them."""
        self._hass = hass
        self._entry_id = entry_id
        self._coordinator: NestStreamsCoordinator | None = None
        self._media: dict[str, CameraMedia] = {}
        self._viewers: dict[str, Viewer] = {}
        self._close_later: CALLBACK_TYPE | None = None
        self._readers: dict[str, set[TsReader]] = {}
        """Recorders reading each camera's restream URL."""
        self.problems: dict[str, str] = {}
        """The live picture's current problem, by device id."""

    @staticmethod
    def of(hass: HomeAssistant, entry_id: str) -> LiveViews:
        """The live views of entry `entry_id` (new, or the ones that outlived a reload)."""
        if DATA not in hass.data:
            hass.data[DATA] = {}

            async def close_all(_event: Event) -> None:
                views = list(hass.data.get(DATA, {}).values())
                await asyncio.gather(
                    *(view.async_close("Home Assistant is stopping") for view in views)
                )

            hass.bus.async_listen_once(EVENT_HOMEASSISTANT_STOP, close_all)
        views = hass.data[DATA]
        if entry_id not in views:
            views[entry_id] = LiveViews(hass, entry_id)
        return views[entry_id]

    # -- the entry's life --------------------------------------------------------------------

    @callback
    def bind(self, coordinator: NestStreamsCoordinator) -> None:
        """The entry's (new) coordinator; Google sessions of a reload are adopted by it."""
        if self._close_later is not None:
            self._close_later()
            self._close_later = None
        self._coordinator = coordinator
        for viewer in list(self._viewers.values()):
            if viewer.relay or viewer.handle is None:
                continue
            handle, viewer.handle = viewer.handle, None
            viewer.key = coordinator.scheduler.adopt_viewer(
                viewer.device_id, handle, partial(self._google_ended, viewer)
            )
            if viewer.key is None:
                self._end(viewer, "the camera's live session ended during the reload")

    @callback
    def unbind(self) -> None:
        """The coordinator shuts down: keep the Google sessions for the next one; end every
        view unless the entry is set up again within `RELOAD_GRACE` (at once when HA stops)."""
        if (coordinator := self._coordinator) is not None:
            for viewer in self._viewers.values():
                if viewer.key is not None:
                    viewer.handle = coordinator.scheduler.viewer_handle(viewer.key)
                    viewer.key = None
        self._coordinator = None
        if self._hass.is_stopping:
            self._hass.async_create_task(self.async_close("Home Assistant is stopping"))
        else:
            self._close_later = async_call_later(self._hass, RELOAD_GRACE, self._close_unused)

    async def _close_unused(self, _now: object) -> None:
        self._close_later = None
        if self._coordinator is None:
            await self.async_close("the integration was unloaded")

    async def async_close(self, reason: str) -> None:
        """End every view (their frontends hear `reason`) and forget this entry's views."""
        if self._close_later is not None:
            self._close_later()
            self._close_later = None
        self._hass.data.get(DATA, {}).pop(self._entry_id, None)
        for viewer in list(self._viewers.values()):
            if not viewer.relay:
                self._end(viewer, reason)
        media, self._media = list(self._media.values()), {}
        await asyncio.gather(*(item.close(reason) for item in media))

    # -- RTSP cameras --------------------------------------------------------------------------

    def media(self, device_id: str, name: str) -> CameraMedia:
        """The RTSP camera's media (made on first use; kept across reloads)."""
        if (media := self._media.get(device_id)) is None:
            media = self._media[device_id] = CameraMedia(
                name, ca_file=ca_file(), on_problem=partial(self._problem, device_id)
            )
        return media

    def _problem(self, device_id: str, problem: str | None) -> None:
        if problem is None:
            self.problems.pop(device_id, None)
        else:
            self.problems[device_id] = problem
        if self._coordinator is not None:
            self._coordinator.changed(device_id)

    def forget(self, device_id: str) -> None:
        """The camera left the project: its views end."""
        if (media := self._media.pop(device_id, None)) is not None:
            self._hass.async_create_task(media.close("the camera left the project"))
        self.problems.pop(device_id, None)

    async def still(
        self, device_id: str, name: str, width: int | None, height: int | None
    ) -> bytes | None:
        """A JPEG of the RTSP camera's newest key frame; None when none comes in time."""
        return await self.media(device_id, name).stills.image(width, height, STILL_TIMEOUT)

    async def mjpeg(self, device_id: str, name: str, request: web.Request) -> web.StreamResponse:
        """The RTSP camera's picture as MJPEG, decoded once for all MJPEG clients."""
        decoder = self.media(device_id, name).mjpeg()
        decoder.add_client()

        async def frame() -> bytes | None:
            deadline = time.monotonic() + STILL_TIMEOUT
            while not decoder.ended.is_set():
                if image := await self._hass.async_add_executor_job(decoder.latest):
                    return image
                if time.monotonic() > deadline:
                    return None
                await asyncio.sleep(MJPEG_INTERVAL)
            return None

        try:
            return await async_get_still_stream(request, frame, "image/jpeg", MJPEG_INTERVAL)
        finally:
            decoder.remove_client()

    # -- WebRTC sessions -----------------------------------------------------------------------

    def _admit(
        self, session_id: str, device_id: str, send: WebRTCSendMessage, relay: bool
    ) -> Viewer:
        if (
            sum(1 for v in self._viewers.values() if v.device_id == device_id)
            >= (MAX_VIEWERS_PER_CAMERA)
            or len(self._viewers) >= MAX_VIEWERS
        ):
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="too_many_viewers",
                translation_placeholders={
                    "per_camera": str(MAX_VIEWERS_PER_CAMERA),
                    "in_all": str(MAX_VIEWERS),
                },
            )
        viewer = Viewer(session_id, device_id, send, relay)
        self._viewers[session_id] = viewer
        return viewer

    async def relay_offer(
        self, device_id: str, name: str, session_id: str, offer: str, send: WebRTCSendMessage
    ) -> None:
        """Answer an RTSP camera's viewer with a relay of the camera's one session."""
        viewer = self._admit(session_id, device_id, send, relay=True)
        media = self.media(device_id, name)
        servers = [
            RTCIceServer(urls=s.urls, username=s.username, credential=s.credential)
            for s in async_get_ice_servers(self._hass)
        ]
        try:
            ice_servers = await resolve_ice_servers(servers)
            if viewer.closed:
                return
            answer = await media.open_viewer(
                session_id, offer, ice_servers, partial(self._relay_ended, viewer)
            )
        except RelayError as err:
            if viewer.closed:
                return  # the viewer left meanwhile: its peer is closed, nothing to say
            self._viewers.pop(session_id, None)
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="live_view_failed",
                translation_placeholders={"error": str(err)},
            ) from err
        if not viewer.closed:
            send(WebRTCAnswer(answer))

    async def google_offer(
        self, device_id: str, session_id: str, offer: str, send: WebRTCSendMessage
    ) -> None:
        """Answer a WebRTC camera's viewer with a Google session of its own."""
        coordinator = self._coordinator
        if coordinator is None:
            raise HomeAssistantError(translation_domain=DOMAIN, translation_key="not_loaded")
        viewer = self._admit(session_id, device_id, send, relay=False)
        scheduler = coordinator.scheduler
        try:
            viewer.key, handle = await scheduler.open_viewer(
                device_id, offer, partial(self._google_ended, viewer), key=session_id
            )
        except ViewerWithdrawn:
            return  # the viewer left meanwhile; nothing of it stays
        except OverCapacity as err:
            self._viewers.pop(session_id, None)
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="webrtc_over_capacity",
                translation_placeholders={"error": str(err)},
            ) from err
        except StreamError as err:
            self._viewers.pop(session_id, None)
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="webrtc_failed",
                translation_placeholders={"error": str(err)},
            ) from err
        coordinator.changed(device_id)
        send(WebRTCAnswer(handle.answer_sdp or ""))

    async def candidate(self, session_id: str, candidate: str, sdp_mid: str | None) -> None:
        """A candidate of a relayed viewer (Google's sessions carry theirs in the answer)."""
        viewer = self._viewers.get(session_id)
        if viewer is None or not viewer.relay:
            return
        if (media := self._media.get(viewer.device_id)) is not None and (
            peer := media.peer(session_id)
        ) is not None:
            await peer.add_candidate(candidate, sdp_mid)

    @callback
    def close_session(self, session_id: str) -> None:
        """The viewer left (at any time, also before its answer): end what its offer started."""
        if (viewer := self._viewers.pop(session_id, None)) is None:
            return
        viewer.closed = True
        if viewer.relay:
            media = self._media.get(viewer.device_id)
            if media is not None and (peer := media.close_viewer(session_id)) is not None:
                self._hass.async_create_task(peer.close(), eager_start=True)
            return
        if (coordinator := self._coordinator) is not None:
            if viewer.key is not None:
                coordinator.scheduler.close_viewer(viewer.key)
            else:
                coordinator.scheduler.withdraw_viewer(session_id)
            coordinator.changed(viewer.device_id)

    # -- recorders (restream URLs) -----------------------------------------------------------

    def open_reader(self, device_id: str, name: str) -> TsReader:
        """A recorder's MPEG-TS of the RTSP camera (a consumer of its one feed). Raises
        `TooManyReaders` beyond `MAX_READERS_PER_CAMERA` or `MAX_READERS`."""
        if (count := self.readers(device_id)) >= MAX_READERS_PER_CAMERA:
            raise TooManyReaders(f"{name} has {count} readers, the most it serves")
        if sum(len(each) for each in self._readers.values()) >= MAX_READERS:
            raise TooManyReaders(f"this integration serves at most {MAX_READERS} readers")
        reader = TsReader(self.media(device_id, name).feed)
        self._readers.setdefault(device_id, set()).add(reader)
        return reader

    def close_reader(self, device_id: str, reader: TsReader) -> None:
        """The recorder left."""
        reader.close()
        if (readers := self._readers.get(device_id)) is not None:
            readers.discard(reader)
            if not readers:
                del self._readers[device_id]

    def end_readers(self, device_id: str, reason: str) -> None:
        """End the camera's recorders (its secret was rotated); they leave on their own."""
        for reader in list(self._readers.get(device_id, ())):
            reader.close(reason)

    def readers(self, device_id: str) -> int:
        """Recorders reading the camera now."""
        return len(self._readers.get(device_id, ()))

    def watched(self, device_id: str) -> bool:
        """Whether someone watches the camera live."""
        return any(v.device_id == device_id for v in self._viewers.values())

    def _relay_ended(self, viewer: Viewer, reason: str) -> None:
        """The relay ended a view on its own (not connected in time, failed, unloaded)."""
        self._end(viewer, reason)

    def _google_ended(self, viewer: Viewer, reason: str) -> None:
        """A Google session ended on its own (it cannot be extended, or was refused)."""
        viewer.key = None
        self._end(viewer, reason)
        if self._coordinator is not None:
            self._coordinator.changed(viewer.device_id)

    def _end(self, viewer: Viewer, reason: str) -> None:
        """End a view the frontend still shows: it hears why, instead of a frozen picture."""
        if self._viewers.get(viewer.session_id) is viewer:
            del self._viewers[viewer.session_id]
        if not viewer.closed:
            viewer.closed = True
            _LOGGER.debug("live view of %s ended: %s", viewer.device_id, reason)
            viewer.send(WebRTCError(ENDED_CODE, reason))
