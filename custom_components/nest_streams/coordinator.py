"""The coordinator: reads the device list, owns the scheduler, tells entities what changed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
import logging
from typing import Any, override

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryAuthFailed, ConfigEntryNotReady
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed
from homeassistant.util.hass_dict import HassKey

from .api import SdmClient
from .const import CONF_EXCLUDED_CAMERAS, DOMAIN
from .core.clock import SystemClock
from .core.errors import AuthFailed, StreamError
from .core.models import CameraInfo, QueueStats, StreamStatus
from .core.quota import QuotaHistory
from .core.scheduler import StreamScheduler
from .core.settings import Settings
from .issues import (
    async_remove_devices,
    async_remove_stale_devices,
    async_update_over_capacity_issue,
    has_registered_cameras,
)
from .live import LiveViews
from .restream import RestreamSecrets
from .store import SavedState, StreamStore

_LOGGER = logging.getLogger(__name__)

QUOTA_HISTORY: HassKey[dict[str, QuotaHistory]] = HassKey(f"{DOMAIN}_quota_history")
"""Each entry's last queue's use of the quota, kept across a reload."""

DEVICE_REFRESH_INTERVAL = timedelta(minutes=15)
LIST_RETRY = 60.0
"""Seconds until a failed device-list read is tried again."""

HUB = "hub"
"""The listener context of the hub's entities: they follow the queue, which every command
changes (a camera's entities use the camera's device id)."""


@dataclass(slots=True)
class NestStreamsData:
    """What one loaded config entry holds."""

    coordinator: NestStreamsCoordinator
    restream: RestreamSecrets
    """The secrets of the cameras' restream URLs."""


type NestStreamsConfigEntry = ConfigEntry[NestStreamsData]


class NestStreamsCoordinator(DataUpdateCoordinator[dict[str, CameraInfo]]):
    """Reads the project's device list (its data) and owns the scheduler that keeps the
    cameras' streams alive.

    Entities listen once, with their camera's device id (or `HUB`) as context: a device-list
    read updates every entity, a command only its camera's entities and the hub's, once per
    loop turn. A failed read changes nothing: HA logs it once and it is retried in a minute,
    while the streams go on from what is known.
    """

    config_entry: NestStreamsConfigEntry

    def __init__(
        self, hass: HomeAssistant, entry: NestStreamsConfigEntry, client: SdmClient
    ) -> None:
        """Create the coordinator and its scheduler (nothing runs yet)."""
        super().__init__(
            hass,
            _LOGGER,
            config_entry=entry,
            name=DOMAIN,
            update_interval=DEVICE_REFRESH_INTERVAL,
        )
        self.client = client
        self.scheduler = StreamScheduler(
            client,
            SystemClock(),
            Settings.from_options(entry.options),
            on_change=self.changed,
            on_auth_failed=self._auth_failed,
            spawn=lambda coro, name: entry.async_create_background_task(hass, coro, name),
        )
        if (history := hass.data.get(QUOTA_HISTORY, {}).pop(entry.entry_id, None)) is not None:
            # A reload: Google's minute still counts the last queue's commands.
            self.scheduler.quota.resume(history)
        self._store = StreamStore(hass, entry.entry_id)
        self.live = LiveViews.of(hass, entry.entry_id)
        """The live views, stills and camera sessions (they outlive a reload of the entry)."""
        self._saved = SavedState()
        self._by_context: dict[object, list[CALLBACK_TYPE]] = {}
        """The listeners of one camera's (or the hub's) changes, by context."""
        self._changed: set[str] = set()
        """Cameras whose stream changed since the last flush."""
        self._flush_pending = False
        self._over_capacity: tuple[str, ...] = ()
        self._known: set[str] = set()
        self._reauth_asked = False
        self._restored = False
        """Whether the set-up took the cameras saved by the last run (the list comes later)."""
        self._empty_logged = False
        self._stale_checked = False

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

    @property
    def capacity(self) -> int:
        """Cameras the project's quota keeps alive now."""
        return self.scheduler.capacity

    @property
    def stats(self) -> QueueStats:
        """The command queue's statistics."""
        return self.scheduler.stats()

    def status(self, device_id: str) -> StreamStatus | None:
        """A camera's stream status (None when the camera is not in the project)."""
        try:
            return self.scheduler.stream(device_id).status
        except KeyError:
            return None

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

    async def _async_update_data(self) -> dict[str, CameraInfo]:
        """Read the device list and hand its cameras to the scheduler.

        Only the first read of a set-up without saved cameras can fail the entry; a list
        without any camera while cameras are known removes nothing (Google omits an empty
        `devices` field).
        """
        data: dict[str, CameraInfo] | None = self.data
        first = data is None
        if first and self._restored:
            return dict(self.cameras)  # the saved cameras; the list is read once set up
        try:
            cameras = await self.client.async_list_cameras()
        except AuthFailed as err:
            raise ConfigEntryAuthFailed(
                translation_domain=DOMAIN, translation_key="auth_failed"
            ) from err
        except StreamError as err:
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="device_list_failed",
                translation_placeholders={"error": str(err)},
                retry_after=LIST_RETRY,
            ) from err
        if not cameras and first and has_registered_cameras(self.hass, self.config_entry):
            # Set-up (a restart): an empty list now would start without the cameras that
            # were here before and let their saved streams lapse. Try again shortly.
            raise ConfigEntryNotReady(
                translation_domain=DOMAIN, translation_key="no_cameras_listed"
            )
        if not cameras and self._known:
            if not self._empty_logged:
                _LOGGER.warning(
                    "Google listed no cameras; keeping the %d known ones until a list "
                    "names any camera",
                    len(self._known),
                )
                self._empty_logged = True
            return dict(self.cameras)
        self._empty_logged = False
        self._apply_cameras(cameras)
        if not self._stale_checked:
            # Cameras removed while HA was down: their devices are gone from the list now.
            self._stale_checked = True
            async_remove_stale_devices(
                self.hass, self.config_entry, {*self._known, self.project_id}
            )
        return dict(self.cameras)

    def _apply_cameras(self, cameras: list[CameraInfo] | None = None) -> None:
        """Hand the cameras (by default the current ones) to the scheduler again."""
        if cameras is None:
            cameras = list(self.scheduler.cameras.values())
        restored, self._saved.streams = self._saved.streams, {}
        excluded = {*self.config_entry.options.get(CONF_EXCLUDED_CAMERAS, []), *self._saved.stopped}
        self.scheduler.set_cameras(
            cameras,
            excluded=excluded,
            restored=restored,
            cannot_extend=self._saved.cannot_extend,
        )
        ids = {camera.device_id for camera in cameras}
        gone = self._known - ids
        self._known = ids
        if gone:
            for device_id in gone:
                self.live.forget(device_id)
            async_remove_devices(self.hass, self.config_entry, gone)
        self._over_capacity = self.scheduler.over_capacity
        async_update_over_capacity_issue(self.hass, self.config_entry, self.scheduler)

    @callback
    @override
    def async_add_listener(
        self, update_callback: CALLBACK_TYPE, context: Any = None
    ) -> Callable[[], None]:
        """Listen for every device-list read; with a camera's device id (or `HUB`) as
        `context`, also for that camera's (or the queue's) changes."""
        remove = super().async_add_listener(update_callback, context)
        if context is None:
            return remove
        listeners = self._by_context.setdefault(context, [])
        listeners.append(update_callback)

        @callback
        def remove_listener() -> None:
            remove()
            listeners.remove(update_callback)

        return remove_listener

    @callback
    def changed(self, device_id: str | None) -> None:
        """Note a change of camera `device_id` (None: the queue only); flushed next turn."""
        if device_id is not None:
            self._changed.add(device_id)
        if not self._flush_pending:
            self._flush_pending = True
            self.hass.loop.call_soon(self._flush)

    @callback
    def _flush(self) -> None:
        """Save, and write the entities of the changed cameras and the hub's."""
        self._flush_pending = False
        changed, self._changed = self._changed, set()
        data: dict[str, CameraInfo] | None = self.data
        if data is None:  # before the first refresh: nothing listens, nothing to save yet
            return
        if self.scheduler.over_capacity != self._over_capacity:  # our share of the quota
            self._over_capacity = self.scheduler.over_capacity
            async_update_over_capacity_issue(self.hass, self.config_entry, self.scheduler)
        self._store.async_delay_save(self._state)
        for context in (*changed, HUB):
            for update in list(self._by_context.get(context, ())):
                update()

    @callback
    def _auth_failed(self) -> None:
        if not self._reauth_asked:
            self._reauth_asked = True
            _LOGGER.warning("Google refused the credentials; re-authentication is needed")
        self.config_entry.async_start_reauth(self.hass)

    async def async_start(self) -> None:
        """Start the queue worker (and read the list now if the set-up took saved cameras)."""
        self.config_entry.async_create_background_task(
            self.hass, self.scheduler.run(), name=f"{DOMAIN} command queue"
        )
        if self._restored:
            self.config_entry.async_create_background_task(
                self.hass, self.async_refresh(), name=f"{DOMAIN} device list"
            )
        self.live.bind(self)

    async def async_shutdown(self) -> None:
        """Leave no task or timer; save the live streams for whoever comes next.

        Unloading does not stop the streams at Google: a reload (options, reauth, reconfigure)
        or a restart takes them over and extends them instead of generating new ones, and
        without one they expire at Google within 5 minutes.
        """
        self.live.unbind()
        await self.scheduler.stop(stop_streams=False)
        self.hass.data.setdefault(QUOTA_HISTORY, {})[self.config_entry.entry_id] = (
            self.scheduler.quota.history()
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
        self._flush()

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
        admitted, _ = self.scheduler.admission(self.cameras.values(), excluded - device_ids)
        return device_ids - admitted
