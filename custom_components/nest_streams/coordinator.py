"""The coordinator: one scheduler per config entry, pushed to the entities as snapshots."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
import logging
from typing import Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryAuthFailed, ConfigEntryNotReady
from homeassistant.helpers import device_registry as dr, issue_registry as ir
from homeassistant.helpers.event import async_track_time_interval
from homeassistant.helpers.storage import Store
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator

from .api import SdmClient
from .const import (
    CONF_DEGRADED_RETRY,
    CONF_EXCLUDED_CAMERAS,
    CONF_EXTENSION_LEAD,
    CONF_MAX_FAILURES,
    CONF_QPM,
    CONF_RETRY_BASE,
    DEFAULT_DEGRADED_RETRY,
    DEFAULT_EXTENSION_LEAD,
    DEFAULT_MAX_FAILURES,
    DEFAULT_QPM,
    DEFAULT_RETRY_BASE,
    DOMAIN,
)
from .core.camera import StreamConfig
from .core.clock import SystemClock
from .core.errors import AuthFailed, StreamError
from .core.models import CameraInfo, QueueStats, StreamHandle, StreamProtocol, StreamStatus
from .core.scheduler import StreamScheduler

_LOGGER = logging.getLogger(__name__)

DEVICE_REFRESH_INTERVAL = timedelta(minutes=15)
STORE_VERSION = 1
SAVE_DELAY = 10
STOP_GRACE = 5.0
"""Seconds an unload spends stopping streams, paced by the quota (the rest expire by themselves)."""

# A receive-only offer that keeps a WebRTC-only camera's session alive while nobody watches.
BACKGROUND_OFFER = (
    "v=0\r\no=- 0 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=recvonly\r\n"
    "a=rtpmap:96 H264/90000\r\n"
)


@dataclass(frozen=True, slots=True)
class StreamsSnapshot:
    """What the entities read: immutable, replaced on every change."""

    cameras: Mapping[str, CameraInfo] = field(default_factory=dict)
    statuses: Mapping[str, StreamStatus] = field(default_factory=dict)
    stats: QueueStats = field(default_factory=QueueStats)
    over_capacity: tuple[str, ...] = ()


@dataclass(slots=True)
class NestStreamsData:
    """What one loaded config entry holds."""

    coordinator: NestStreamsCoordinator


type NestStreamsConfigEntry = ConfigEntry[NestStreamsData]


def stream_config(options: Mapping[str, Any]) -> StreamConfig:
    """The core's timing from the entry's options."""
    return StreamConfig(
        min_lead=float(options.get(CONF_EXTENSION_LEAD, DEFAULT_EXTENSION_LEAD)),
        retry_base=float(options.get(CONF_RETRY_BASE, DEFAULT_RETRY_BASE)),
        max_failures=int(options.get(CONF_MAX_FAILURES, DEFAULT_MAX_FAILURES)),
        degraded_retry=float(options.get(CONF_DEGRADED_RETRY, DEFAULT_DEGRADED_RETRY)),
        webrtc_offer=BACKGROUND_OFFER,
    )


def _handle_to_json(handle: StreamHandle) -> dict[str, Any]:
    return {
        "protocol": handle.protocol.value,
        "expires_at": handle.expires_at,
        "url": handle.url,
        "extension_token": handle.extension_token,
        "session_id": handle.session_id,
    }


def _handle_from_json(data: Mapping[str, Any]) -> StreamHandle | None:
    try:
        return StreamHandle(
            protocol=StreamProtocol(data["protocol"]),
            expires_at=float(data["expires_at"]),
            url=data.get("url"),
            extension_token=data.get("extension_token"),
            session_id=data.get("session_id"),
        )
    except KeyError, TypeError, ValueError:
        return None


class NestStreamsCoordinator(DataUpdateCoordinator[StreamsSnapshot]):
    """Owns the scheduler of one Google project and pushes its state to the entities.

    The data is pushed (`async_set_updated_data`) on every change; the device list is re-read
    on its own timer, because a push resets the coordinator's polling timer.
    """

    config_entry: NestStreamsConfigEntry

    def __init__(
        self, hass: HomeAssistant, entry: NestStreamsConfigEntry, client: SdmClient
    ) -> None:
        """Create the coordinator and its scheduler (nothing runs yet)."""
        super().__init__(hass, _LOGGER, config_entry=entry, name=DOMAIN, update_interval=None)
        self.client = client
        options = entry.options
        self.scheduler = StreamScheduler(
            client,
            SystemClock(),
            qpm=float(options.get(CONF_QPM, DEFAULT_QPM)),
            config=stream_config(options),
            spawn=lambda coro, name: entry.async_create_background_task(hass, coro, name),
            spawn_command=lambda coro, name: entry.async_create_background_task(hass, coro, name),
        )
        self.scheduler.on_auth_failed = self._auth_failed
        self._store: Store[dict[str, Any]] = Store(
            hass, STORE_VERSION, f"{DOMAIN}.{entry.entry_id}"
        )
        self._restored: dict[str, StreamHandle] = {}
        self.user_stopped: set[str] = set()
        self._push_pending = False
        self._unsubscribe: list[CALLBACK_TYPE] = []
        self.new_camera_listeners: list[Callable[[list[str]], None]] = []
        self._known: set[str] = set()
        self.hub_device_id = ""
        """Registry id of the project's hub device (set before the platforms load)."""

    @property
    def cameras(self) -> dict[str, CameraInfo]:
        """The project's cameras, by device id."""
        return self.scheduler.cameras

    @property
    def project_id(self) -> str:
        """The Device Access project id."""
        return str(self.config_entry.unique_id)

    async def async_restore(self) -> None:
        """Load the stream tokens and user-stopped cameras saved before a restart."""
        data = await self._store.async_load() or {}
        streams = data.get("streams", {})
        if isinstance(streams, dict):
            for device_id, raw in streams.items():
                if isinstance(raw, dict) and (handle := _handle_from_json(raw)) is not None:
                    self._restored[device_id] = handle
        stopped = data.get("stopped", [])
        if isinstance(stopped, list):
            self.user_stopped = {str(device_id) for device_id in stopped}

    def _store_data(self) -> dict[str, Any]:
        return {
            "streams": {
                device_id: _handle_to_json(handle)
                for device_id, handle in self.scheduler.handles().items()
            },
            "stopped": sorted(self.user_stopped),
        }

    async def _async_update_data(self) -> StreamsSnapshot:
        """Read the device list and hand the cameras to the scheduler."""
        try:
            cameras = await self.client.async_list_cameras()
        except AuthFailed as err:
            raise ConfigEntryAuthFailed(
                translation_domain=DOMAIN, translation_key="auth_failed"
            ) from err
        except StreamError as err:
            raise ConfigEntryNotReady(
                translation_domain=DOMAIN,
                translation_key="device_list_failed",
                translation_placeholders={"error": str(err)},
            ) from err
        self._apply_cameras(cameras)
        return self._snapshot()

    def _keep_alive(self, camera: CameraInfo) -> bool:
        excluded = self.config_entry.options.get(CONF_EXCLUDED_CAMERAS, [])
        return camera.device_id not in excluded and camera.device_id not in self.user_stopped

    def _apply_cameras(self, cameras: list[CameraInfo]) -> None:
        restored, self._restored = self._restored, {}
        self.scheduler.set_cameras(cameras, keep_alive=self._keep_alive, restored=restored)
        ids = {camera.device_id for camera in cameras}
        new = sorted(ids - self._known)
        gone = self._known - ids
        self._known = ids
        if new:
            for listener in list(self.new_camera_listeners):
                listener(new)
        if gone:
            self._remove_devices(gone)
        self._update_repair_issue()

    def _remove_devices(self, device_ids: set[str]) -> None:
        registry = dr.async_get(self.hass)
        for device_id in device_ids:
            device = registry.async_get_device_by_identifier(
                (DOMAIN, device_id), self.config_entry.entry_id
            )
            if device is not None:
                _LOGGER.info("Camera %s left the project; removing its device", device.name)
                registry.async_update_device(
                    device.id, remove_config_entry_id=self.config_entry.entry_id
                )

    def _update_repair_issue(self) -> None:
        issue_id = f"over_capacity_{self.config_entry.entry_id}"
        over = self.scheduler.over_capacity
        if not over:
            ir.async_delete_issue(self.hass, DOMAIN, issue_id)
            return
        names = [self.cameras[device_id].name for device_id in over if device_id in self.cameras]
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            issue_id,
            is_fixable=False,
            severity=ir.IssueSeverity.WARNING,
            translation_key="over_capacity",
            translation_placeholders={
                "cameras": ", ".join(names),
                "capacity": str(self.scheduler.capacity),
                "qpm": f"{self.scheduler.qpm:g}",
            },
        )

    async def async_refresh_devices(self, *_: Any) -> None:
        """Re-read the device list (new cameras get entities, removed ones are removed)."""
        try:
            cameras = await self.client.async_list_cameras()
        except StreamError as err:
            _LOGGER.debug("Could not re-read the device list: %s", err)
            return
        self._apply_cameras(cameras)
        self._push()

    def _snapshot(self) -> StreamsSnapshot:
        return StreamsSnapshot(
            cameras=dict(self.scheduler.cameras),
            statuses=self.scheduler.statuses(),
            stats=self.scheduler.stats(),
            over_capacity=self.scheduler.over_capacity,
        )

    @callback
    def _scheduler_changed(self) -> None:
        """Coalesce the scheduler's changes into one push per event-loop turn."""
        if not self._push_pending:
            self._push_pending = True
            self.hass.loop.call_soon(self._push)

    @callback
    def _push(self) -> None:
        self._push_pending = False
        self.async_set_updated_data(self._snapshot())
        self._store.async_delay_save(self._store_data, SAVE_DELAY)

    @callback
    def _auth_failed(self) -> None:
        _LOGGER.warning("Google refused the credentials; re-authentication is needed")
        self.config_entry.async_start_reauth(self.hass)

    async def async_start(self) -> None:
        """Start the queue worker and the device-list timer."""
        self.config_entry.async_create_background_task(
            self.hass, self.scheduler.run(), name=f"{DOMAIN} command queue"
        )
        self._unsubscribe.append(self.scheduler.add_listener(self._scheduler_changed))
        self._unsubscribe.append(
            async_track_time_interval(
                self.hass,
                self.async_refresh_devices,
                DEVICE_REFRESH_INTERVAL,
                cancel_on_shutdown=True,
            )
        )

    async def async_shutdown(self) -> None:
        """Stop the streams at Google as far as the quota allows; leave no task or timer.

        The quota stops at most one stream per 6 s; an unload waits `STOP_GRACE` for them,
        and the streams not stopped by then expire at Google within 5 minutes.
        """
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()
        await self.scheduler.stop(stop_streams=True, grace=STOP_GRACE)
        await self._store.async_save(self._store_data())
        await super().async_shutdown()

    # -- services ------------------------------------------------------------------------------

    def _reapply(self) -> None:
        self.scheduler.set_cameras(self.scheduler.cameras.values(), keep_alive=self._keep_alive)
        self._update_repair_issue()
        self._push()

    def async_start_camera(self, device_id: str) -> None:
        """Keep a camera alive again (service `start_stream`); a degraded one is retried now.

        A camera the quota cannot hold stays stopped (and named in the repair issue).
        """
        self.user_stopped.discard(device_id)
        self._reapply()
        if (stream := self.scheduler.stream(device_id)).enabled:
            stream.start()

    def async_stop_camera(self, device_id: str) -> None:
        """Stop keeping a camera alive, and stop its stream at Google (service `stop_stream`)."""
        self.user_stopped.add(device_id)
        self._reapply()

    def async_restart_camera(self, device_id: str) -> None:
        """Replace a camera's stream with a new one now (service `restart_stream`)."""
        self.user_stopped.discard(device_id)
        self._reapply()
        if (stream := self.scheduler.stream(device_id)).enabled:
            stream.restart()
