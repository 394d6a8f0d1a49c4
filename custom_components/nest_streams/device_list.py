"""Reading the project's device list: what one answer may change, and what it may not."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Set
import logging
from typing import Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import CALLBACK_TYPE, HomeAssistant
from homeassistant.exceptions import ConfigEntryAuthFailed, ConfigEntryNotReady
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.event import async_call_later

from .api import SdmClient
from .const import DOMAIN
from .core.errors import AuthFailed, StreamError
from .core.models import CameraInfo
from .issues import async_remove_stale_devices

_LOGGER = logging.getLogger(__name__)

LIST_RETRY = 60.0
"""Seconds until a failed device-list read is tried again."""


class DeviceListReader:
    """Reads the device list and hands the cameras on; one bad answer changes nothing.

    Only a read that `may_fail` (the first of a set-up without saved cameras) fails the entry;
    otherwise a failed read is logged once and retried sooner than the regular re-read, and a
    list without any camera while cameras are known removes nothing (Google omits an empty
    `devices` field).
    """

    def __init__(
        self,
        hass: HomeAssistant,
        entry: ConfigEntry,
        client: SdmClient,
        *,
        apply: Callable[[list[CameraInfo]], None],
        known: Callable[[], Set[str]],
        auth_failed: Callable[[], None],
        refresh: Callable[[], Awaitable[None]],
    ) -> None:
        """Read for `entry`; `apply` takes a camera list, `known` gives the cameras known now."""
        self._hass = hass
        self._entry = entry
        self._client = client
        self._apply = apply
        self._known = known
        self._auth_failed = auth_failed
        self._refresh = refresh
        self.listed_once = False
        """Whether a device list was taken."""
        self._error: str | None = None
        self._empty_logged = False
        self._stale_checked = False
        self._retry: CALLBACK_TYPE | None = None

    async def async_read(self, *, may_fail: bool) -> bool:
        """Read the list and apply it; whether it was taken."""
        try:
            cameras = await self._client.async_list_cameras()
        except AuthFailed as err:
            if may_fail:
                raise ConfigEntryAuthFailed(
                    translation_domain=DOMAIN, translation_key="auth_failed"
                ) from err
            self._auth_failed()
            self._failed(err)
            return False
        except StreamError as err:
            if may_fail:
                raise ConfigEntryNotReady(
                    translation_domain=DOMAIN,
                    translation_key="device_list_failed",
                    translation_placeholders={"error": str(err)},
                ) from err
            self._failed(err)
            return False
        if may_fail and not cameras and self._registered_cameras():
            # Set-up (a restart): an empty list now would start without the cameras that
            # were here before and let their saved streams lapse. Try again shortly.
            raise ConfigEntryNotReady(
                translation_domain=DOMAIN, translation_key="no_cameras_listed"
            )
        if self._error is not None:
            _LOGGER.info("The device list can be read again")
            self._error = None
        self._take(cameras)
        self.listed_once = True
        return True

    def _registered_cameras(self) -> bool:
        """Whether the device registry holds camera devices of this entry (from earlier runs)."""
        devices = dr.async_entries_for_config_entry(dr.async_get(self._hass), self._entry.entry_id)
        return any(
            domain == DOMAIN and key != self._entry.unique_id
            for device in devices
            for domain, key in device.identifiers
        )

    def _failed(self, err: StreamError) -> None:
        """Log a failed read once (until a read succeeds) and retry soon; the streams go on."""
        if self._error is None:
            _LOGGER.warning("Could not read the device list (the streams go on): %s", err)
        self._error = str(err)
        if self._retry is None:
            self._retry = async_call_later(self._hass, LIST_RETRY, self._retry_now)

    async def _retry_now(self, _now: Any) -> None:
        self._retry = None
        await self._refresh()

    def _take(self, cameras: list[CameraInfo]) -> None:
        """New cameras start, cameras missing from a list that names others are removed."""
        if not cameras and self._known():
            if not self._empty_logged:
                _LOGGER.warning(
                    "Google listed no cameras; keeping the %d known ones until a list "
                    "names any camera",
                    len(self._known()),
                )
                self._empty_logged = True
            return
        self._empty_logged = False
        self._apply(cameras)
        if not self._stale_checked:
            # Cameras removed while HA was down: their devices are gone from the list now.
            self._stale_checked = True
            async_remove_stale_devices(
                self._hass, self._entry, {*self._known(), str(self._entry.unique_id)}
            )

    def cancel(self) -> None:
        """Drop a pending retry (unload)."""
        if self._retry is not None:
            self._retry()
            self._retry = None
