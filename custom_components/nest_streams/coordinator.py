"""The coordinator: one scheduler per config entry, pushed to the entities as snapshots."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
import logging
from typing import Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.event import async_track_time_interval
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator

from .api import SdmClient
from .const import CONF_EXCLUDED_CAMERAS, DOMAIN
from .core.clock import SystemClock
from .core.models import CameraInfo, QueueStats, StreamStatus
from .core.scheduler import StreamScheduler
from .core.settings import Settings
from .device_list import DeviceListReader
from .issues import async_remove_devices, async_update_over_capacity_issue
from .store import SavedState, StreamStore

_LOGGER = logging.getLogger(__name__)

DEVICE_REFRESH_INTERVAL = timedelta(minutes=15)


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
        self.scheduler = StreamScheduler(
            client,
            SystemClock(),
            Settings.from_options(entry.options),
            on_change=self._scheduler_changed,
            on_auth_failed=self._auth_failed,
            spawn=lambda coro, name: entry.async_create_background_task(hass, coro, name),
            spawn_command=lambda coro, name: entry.async_create_background_task(hass, coro, name),
        )
        self._store = StreamStore(hass, entry.entry_id)
        self._saved = SavedState()
        self._push_pending = False
        self._changed: set[str] = set()
        """Cameras whose stream changed since the last push."""
        self._updates: dict[str | None, list[CALLBACK_TYPE]] = {}
        """Entities to update when a camera (by device id) or the hub (None) changed."""
        self._unsubscribe: list[CALLBACK_TYPE] = []
        self._camera_listeners: list[Callable[[list[str]], None]] = []
        self._known: set[str] = set()
        self._hub_device_id = ""
        self._restored = False
        """Whether the set-up took the cameras saved by the last run (the list comes later)."""
        self._started = False
        self._devices = DeviceListReader(
            hass,
            entry,
            client,
            apply=self._apply_cameras,
            known=lambda: self._known,
            auth_failed=self._auth_failed,
            refresh=self.async_refresh_devices,
        )

    @property
    def cameras(self) -> dict[str, CameraInfo]:
        """The project's cameras, by device id."""
        return self.scheduler.cameras

    @property
    def project_id(self) -> str:
        """The Device Access project id."""
        return str(self.config_entry.unique_id)

    @property
    def hub_device_id(self) -> str:
        """Registry id of the project's hub device (the cameras' devices hang off it)."""
        return self._hub_device_id

    @callback
    def async_create_hub_device(self, device_info: DeviceInfo) -> None:
        """Register the project's hub device; before the platforms add the cameras."""
        hub = dr.async_get(self.hass).async_get_or_create(
            config_entry_id=self.config_entry.entry_id, **device_info
        )
        self._hub_device_id = hub.id

    @property
    def user_stopped(self) -> frozenset[str]:
        """The cameras stopped with `stop_stream` (they stay stopped across restarts)."""
        return frozenset(self._saved.stopped)

    async def _async_setup(self) -> None:
        """Load what the last run saved; with its cameras the streams go on at once.

        The device list is then read in the background (`async_start`): keeping streams alive
        must not wait for, or fail with, one device-list answer.
        """
        self._saved = await self._store.async_load()
        if cameras := self._saved.cameras:
            self.client.restore_cameras(cameras)
            self._restored = True
            self._apply_cameras(cameras)

    def _state(self) -> SavedState:
        return SavedState(
            streams=self.scheduler.handles(),
            stopped=self._saved.stopped,
            cannot_extend=self._saved.cannot_extend | self.scheduler.cannot_extend(),
            cameras=list(self.cameras.values()),
        )

    @callback
    def async_add_camera_listener(self, listener: Callable[[list[str]], None]) -> CALLBACK_TYPE:
        """Call `listener` with the device ids of cameras that join the project."""
        self._camera_listeners.append(listener)
        return lambda: self._camera_listeners.remove(listener)

    async def _async_update_data(self) -> StreamsSnapshot:
        """Read the device list and hand the cameras to the scheduler.

        Only the first read of a set-up without saved cameras can fail the entry: otherwise
        the streams are kept alive from what is known, whatever one answer says.
        """
        if self._restored and not self._started:
            return self._snapshot()  # set-up from the saved cameras; the list is read next
        may_fail = not self._devices.listed_once and not self._restored
        if not await self._devices.async_read(may_fail=may_fail):
            return self.data
        return self._snapshot()

    async def async_refresh_devices(self, *_: Any) -> None:
        """Re-read the device list (new cameras get entities, removed ones are removed)."""
        self.async_set_updated_data(await self._async_update_data())

    def _keep_alive(self, camera: CameraInfo) -> bool:
        excluded = self.config_entry.options.get(CONF_EXCLUDED_CAMERAS, [])
        return camera.device_id not in excluded and camera.device_id not in self._saved.stopped

    def _apply_cameras(self, cameras: list[CameraInfo] | None = None) -> None:
        """Hand the cameras (by default the current ones) to the scheduler again."""
        if cameras is None:
            cameras = list(self.scheduler.cameras.values())
        restored, self._saved.streams = self._saved.streams, {}
        self.scheduler.set_cameras(
            cameras,
            keep_alive=self._keep_alive,
            restored=restored,
            cannot_extend=self._saved.cannot_extend,
        )
        ids = {camera.device_id for camera in cameras}
        new = sorted(ids - self._known)
        gone = self._known - ids
        self._known = ids
        if new:
            for listener in list(self._camera_listeners):
                listener(new)
        if gone:
            async_remove_devices(self.hass, self.config_entry, gone)
        async_update_over_capacity_issue(self.hass, self.config_entry, self.scheduler)

    def _snapshot(self) -> StreamsSnapshot:
        return StreamsSnapshot(
            cameras=dict(self.scheduler.cameras),
            statuses=self.scheduler.statuses(),
            stats=self.scheduler.stats(),
            over_capacity=self.scheduler.over_capacity,
        )

    @callback
    def async_add_update_listener(
        self, device_id: str | None, update: CALLBACK_TYPE
    ) -> CALLBACK_TYPE:
        """Call `update` when camera `device_id` changed (None: the hub's queue statistics).

        A command changes one camera and the queue, so only those entities are written (a
        device-list read still updates every entity, through the coordinator's listeners).
        """
        listeners = self._updates.setdefault(device_id, [])
        listeners.append(update)
        return lambda: listeners.remove(update)

    @callback
    def _scheduler_changed(self, device_id: str | None) -> None:
        """Coalesce the scheduler's changes into one push per event-loop turn."""
        if device_id is not None:
            self._changed.add(device_id)
        if not self._push_pending:
            self._push_pending = True
            self.hass.loop.call_soon(self._push)

    @callback
    def _push(self) -> None:
        """Give the entities of the changed cameras and the hub the new state."""
        self._push_pending = False
        changed, self._changed = self._changed, set()
        data: StreamsSnapshot | None = self.data
        if data is None:  # before the first refresh: nothing listens yet
            return
        statuses = dict(data.statuses)
        for device_id in changed:
            if device_id in data.cameras:
                statuses[device_id] = self.scheduler.stream(device_id).status
        self.data = replace(
            data,
            statuses=statuses,
            stats=self.scheduler.stats(),
            over_capacity=self.scheduler.over_capacity,
        )
        if self.data.over_capacity != data.over_capacity:  # our share of the quota changed
            async_update_over_capacity_issue(self.hass, self.config_entry, self.scheduler)
        for key in (*changed, None):
            for update in list(self._updates.get(key, ())):
                update()
        self._store.async_delay_save(self._state)

    @callback
    def _auth_failed(self) -> None:
        _LOGGER.warning("Google refused the credentials; re-authentication is needed")
        self.config_entry.async_start_reauth(self.hass)

    async def async_start(self) -> None:
        """Start the queue worker and the device-list timer (and a first read if none was)."""
        self.config_entry.async_create_background_task(
            self.hass, self.scheduler.run(), name=f"{DOMAIN} command queue"
        )
        self._started = True
        if not self._devices.listed_once:
            self.config_entry.async_create_background_task(
                self.hass, self.async_refresh_devices(), name=f"{DOMAIN} device list"
            )
        self._unsubscribe.append(
            async_track_time_interval(
                self.hass,
                self.async_refresh_devices,
                DEVICE_REFRESH_INTERVAL,
                cancel_on_shutdown=True,
            )
        )

    async def async_shutdown(self) -> None:
        """Leave no task or timer; save the live streams for whoever comes next.

        Unloading does not stop the streams at Google: a reload (options, reauth, reconfigure)
        or a restart takes them over and extends them instead of generating new ones, and
        without one they expire at Google within 5 minutes.
        """
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()
        self._devices.cancel()
        await self.scheduler.stop(stop_streams=False)
        await self._store.async_save(self._state())
        await super().async_shutdown()

    # -- the camera actions (entity services) --------------------------------------------------

    def _set_user_stopped(self, device_id: str, stopped: bool) -> bool:
        """Record the user's wish, re-run admission; whether the camera is kept alive now."""
        if stopped:
            self._saved.stopped.add(device_id)
        else:
            self._saved.stopped.discard(device_id)
        self._apply_cameras()
        self._push()
        return self.scheduler.stream(device_id).enabled

    def async_start_camera(self, device_id: str) -> bool:
        """Keep a camera alive again; a degraded one is retried now.

        Returns False when the quota cannot hold it (it stays stopped, named in the repair).
        """
        if admitted := self._set_user_stopped(device_id, False):
            self.scheduler.stream(device_id).start()
        return admitted

    def async_stop_camera(self, device_id: str) -> None:
        """Stop keeping a camera alive, and stop its stream at Google."""
        self._set_user_stopped(device_id, True)

    def async_restart_camera(self, device_id: str) -> bool:
        """Replace a camera's stream with a new one now; False when the quota cannot hold it."""
        if admitted := self._set_user_stopped(device_id, False):
            self.scheduler.stream(device_id).restart()
        return admitted
