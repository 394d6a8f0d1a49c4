"""The coordinator: one scheduler per config entry, pushed to the entities as snapshots."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta
import logging
from typing import Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.event import async_track_time_interval
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator
from homeassistant.util.hass_dict import HassKey

from .api import SdmClient
from .const import CONF_EXCLUDED_CAMERAS, DOMAIN
from .core.clock import SystemClock
from .core.models import CameraInfo
from .core.queue import QuotaHistory
from .core.scheduler import StreamScheduler
from .core.settings import Settings
from .device_list import DeviceListReader
from .issues import async_remove_devices, async_update_over_capacity_issue
from .live import LiveViews
from .push import EntityPush, StreamsSnapshot
from .restream import RestreamSecrets
from .store import SavedState, StreamStore

_LOGGER = logging.getLogger(__name__)

QUOTA_HISTORY: HassKey[dict[str, QuotaHistory]] = HassKey(f"{DOMAIN}_quota_history")
"""Each entry's last queue's use of the quota, kept across a reload."""

DEVICE_REFRESH_INTERVAL = timedelta(minutes=15)


@dataclass(slots=True)
class NestStreamsData:
    """What one loaded config entry holds."""

    coordinator: NestStreamsCoordinator
    restream: RestreamSecrets
    """The secrets of the cameras' restream URLs."""


type NestStreamsConfigEntry = ConfigEntry[NestStreamsData]


class NestStreamsCoordinator(DataUpdateCoordinator[StreamsSnapshot]):
    """Owns the scheduler of one Google project and pushes its state to the entities.

    A command's change is pushed to that camera's entities and the hub's (`push`); a device-list
    read updates every entity. The list is re-read on its own timer, because a push would reset
    the coordinator's polling timer.
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
            on_change=lambda device_id: self.push.changed(device_id),
            on_auth_failed=self._auth_failed,
            spawn=lambda coro, name: entry.async_create_background_task(hass, coro, name),
        )
        if (history := hass.data.get(QUOTA_HISTORY, {}).pop(entry.entry_id, None)) is not None:
            # A reload: Google's minute still counts the last queue's commands.
            self.scheduler.queue.resume(history)
        self._store = StreamStore(hass, entry.entry_id)
        self.live = LiveViews.of(hass, entry.entry_id)
        """The live views, stills and camera sessions (they outlive a reload of the entry)."""
        self._saved = SavedState()
        self.push = EntityPush(hass, self._publish)
        self._known: set[str] = set()
        self._reauth_asked = False
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

    def _apply_cameras(self, cameras: list[CameraInfo] | None = None) -> None:
        """Hand the cameras (by default the current ones) to the scheduler again."""
        if cameras is None:
            cameras = list(self.scheduler.cameras.values())
        restored, self._saved.streams = self._saved.streams, {}
        excluded = {*self.config_entry.options.get(CONF_EXCLUDED_CAMERAS, []), *self._saved.stopped}
        self.scheduler.set_cameras(
            cameras,
            keep_alive=lambda camera: camera.device_id not in excluded,
            restored=restored,
            cannot_extend=self._saved.cannot_extend,
        )
        ids = {camera.device_id for camera in cameras}
        new = sorted(ids - self._known)
        gone = self._known - ids
        self._known = ids
        if new:
            self.push.cameras_joined(new)
        if gone:
            for device_id in gone:
                self.live.forget(device_id)
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
    def _publish(self, changed: set[str]) -> bool:
        """Give the snapshot the changed cameras' streams and the queue's statistics; save."""
        data: StreamsSnapshot | None = self.data
        if data is None:  # before the first refresh
            return False
        statuses = dict(data.statuses)
        for device_id in changed & data.cameras.keys():
            statuses[device_id] = self.scheduler.stream(device_id).status
        self.data = replace(
            data,
            statuses=statuses,
            stats=self.scheduler.stats(),
            over_capacity=self.scheduler.over_capacity,
        )
        if self.data.over_capacity != data.over_capacity:  # our share of the quota changed
            async_update_over_capacity_issue(self.hass, self.config_entry, self.scheduler)
        self._store.async_delay_save(self._state)
        return True

    @callback
    def _auth_failed(self) -> None:
        if not self._reauth_asked:
            self._reauth_asked = True
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
        self.config_entry.async_on_unload(
            async_track_time_interval(
                self.hass,
                self.async_refresh_devices,
                DEVICE_REFRESH_INTERVAL,
                cancel_on_shutdown=True,
            )
        )
        self.live.bind(self)

    async def async_shutdown(self) -> None:
        """Leave no task or timer; save the live streams for whoever comes next.

        Unloading does not stop the streams at Google: a reload (options, reauth, reconfigure)
        or a restart takes them over and extends them instead of generating new ones, and
        without one they expire at Google within 5 minutes.
        """
        self._devices.cancel()
        self.live.unbind()
        await self.scheduler.stop(stop_streams=False)
        self.hass.data.setdefault(QUOTA_HISTORY, {})[self.config_entry.entry_id] = (
            self.scheduler.queue.history()
        )
        await self._store.async_save(self._state())
        await super().async_shutdown()

    @callback
    def async_keep_alive(self, device_ids: set[str], keep: bool) -> None:
        """The user starts (`keep`) or stops cameras: the wish is saved (a stopped camera
        stays stopped across restarts) and admission runs again."""
        if keep:
            self._saved.stopped -= device_ids
        else:
            self._saved.stopped |= device_ids
        self._apply_cameras()
        self.push.push()

    @callback
    def start(self, device_id: str) -> None:
        """The user starts the camera: kept alive again, a degraded one retried now."""
        self.async_keep_alive({device_id}, True)
        self.scheduler.stream(device_id).start()

    @callback
    def stop(self, device_id: str) -> None:
        """The user stops the camera (it stays stopped across restarts)."""
        self.async_keep_alive({device_id}, False)

    @callback
    def restart(self, device_id: str) -> None:
        """The user replaces the camera's stream with a new one now."""
        self.async_keep_alive({device_id}, True)
        self.scheduler.stream(device_id).restart()

    @callback
    def not_admitted(self, device_ids: set[str]) -> set[str]:
        """Of these cameras, those the quota could not keep alive if they were started too
        (nothing changes: asked before anything is applied)."""
        excluded = {*self.config_entry.options.get(CONF_EXCLUDED_CAMERAS, []), *self._saved.stopped}
        admitted, _ = self.scheduler.admission(
            self.cameras.values(),
            lambda c: c.device_id in device_ids or c.device_id not in excluded,
        )
        return device_ids - admitted
