"""A stable URL per RTSP camera for recorders (Frigate, go2rtc, Blue Iris, VLC): MPEG-TS over
HA's own HTTP server, fed by the camera's one Google session.

`/api/nest_streams/restream/<camera>?secret=<secret>` (`<camera>` is the last part of the
SDM device id) serves the camera's H.264 and AAC as they come, muxed as MPEG-TS
(`media/restream.py`). The URL outlives stream extensions, token rotations, Google-side
outages (the reader sees a pause), reloads and restarts.

Recorders cannot log in to HA, so the URL carries its own secret: per camera, made when the
user first asks for the URL (`nest_streams.get_restream_url`, admins only), 32 random bytes,
kept in the entry's `.storage/nest_streams.<entry_id>.restream`, compared in constant time.
Without a secret a camera is not served at all. `nest_streams.rotate_restream_secret` makes a
new one and ends the current readers. The secret never reaches logs or diagnostics.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from typing import TYPE_CHECKING, Any

from aiohttp import web
from homeassistant.core import HomeAssistant
from homeassistant.helpers.http import KEY_HASS, HomeAssistantView
from homeassistant.helpers.network import NoURLAvailableError, get_url
from homeassistant.helpers.storage import Store

from .const import DOMAIN
from .core.models import StreamProtocol
from .live import TooManyReaders
from .media.restream import CONTENT_TYPE

if TYPE_CHECKING:
    from .coordinator import NestStreamsConfigEntry

_LOGGER = logging.getLogger(__name__)

URL_PATH = "/api/nest_streams/restream/{camera}"
STORE_VERSION = 1


def camera_key(device_id: str) -> str:
    """The camera's part of its URL: the last part of its SDM device id."""
    return device_id.rsplit("/", 1)[-1]


class RestreamSecrets:
    """The entry's restream secrets, by device id (see the module)."""

    def __init__(self, store: Store[dict[str, Any]], saved: dict[str, str]) -> None:
        """Secrets `saved` in `store`."""
        self._store = store
        self._secrets = saved

    @classmethod
    async def async_load(cls, hass: HomeAssistant, entry_id: str) -> RestreamSecrets:
        """The entry's saved secrets (none when never asked for)."""
        store = _store(hass, entry_id)
        data = await store.async_load() or {}
        saved = data.get("secrets", {})
        if not isinstance(saved, dict):
            saved = {}
        return cls(
            store, {str(key): value for key, value in saved.items() if isinstance(value, str)}
        )

    async def async_ensure(self, device_id: str) -> str:
        """The camera's secret, made (and saved) on first use."""
        if (secret := self._secrets.get(device_id)) is None:
            secret = await self.async_rotate(device_id)
        return secret

    async def async_rotate(self, device_id: str) -> str:
        """A new secret for the camera (the old one stops working at once)."""
        secret = self._secrets[device_id] = secrets.token_urlsafe(32)
        await self._store.async_save({"secrets": dict(self._secrets)})
        return secret

    def matches(self, device_id: str, given: str) -> bool:
        """Whether `given` is the camera's secret (compared in constant time)."""
        expected = self._secrets.get(device_id)
        return expected is not None and hmac.compare_digest(given.encode(), expected.encode())


def _store(hass: HomeAssistant, entry_id: str) -> Store[dict[str, Any]]:
    return Store(hass, STORE_VERSION, f"{DOMAIN}.{entry_id}.restream", private=True)


async def async_remove_secrets(hass: HomeAssistant, entry_id: str) -> None:
    """Delete a removed entry's secrets."""
    await _store(hass, entry_id).async_remove()


def restream_url(hass: HomeAssistant, device_id: str, secret: str) -> str:
    """The camera's URL with HA's own address (the local one if HA knows it)."""
    path = URL_PATH.format(camera=camera_key(device_id)) + f"?secret={secret}"
    for allow_external in (False, True):
        try:
            return get_url(hass, allow_external=allow_external) + path
        except NoURLAvailableError:
            continue
    return path


def _find(hass: HomeAssistant, key: str) -> tuple[NestStreamsConfigEntry, str] | None:
    """The loaded entry and device id of the RTSP camera `key`."""
    entries: list[NestStreamsConfigEntry] = hass.config_entries.async_loaded_entries(DOMAIN)
    for entry in entries:
        coordinator = entry.runtime_data.coordinator
        for device_id, camera in coordinator.cameras.items():
            if camera_key(device_id) == key and StreamProtocol.RTSP in camera.protocols:
                return entry, device_id
    return None


class RestreamView(HomeAssistantView):
    """Serves each RTSP camera's MPEG-TS to the holders of its secret (see the module)."""

    url = URL_PATH
    name = "api:nest_streams:restream"
    requires_auth = False  # recorders cannot log in: the URL's secret is checked instead

    def __init__(self) -> None:
        """No refusal logged yet."""
        self._refused: set[str] = set()

    async def get(self, request: web.Request, camera: str) -> web.StreamResponse:
        """Stream the camera until the reader leaves, the secret is rotated or the camera
        goes; 404 for an unknown camera, 401 for a wrong secret, 503 beyond the readers'
        bound."""
        hass: HomeAssistant = request.app[KEY_HASS]
        if (found := _find(hass, camera)) is None:
            return web.Response(status=404)
        entry, device_id = found
        data = entry.runtime_data
        if not data.restream.matches(device_id, request.query.get("secret", "")):
            if device_id not in self._refused:  # once until a reader gets in
                self._refused.add(device_id)
                _LOGGER.warning(
                    "Refused a recorder of %s (from %s): wrong or no secret in its URL",
                    data.coordinator.cameras[device_id].name,
                    request.remote,
                )
            return web.Response(status=401)
        self._refused.discard(device_id)
        live = data.coordinator.live
        name = data.coordinator.cameras[device_id].name
        try:
            reader = live.open_reader(device_id, name)
        except TooManyReaders as err:
            _LOGGER.debug("Refused a recorder of %s: %s", name, err)
            return web.Response(status=503, text=str(err))
        response = web.StreamResponse(
            headers={"Content-Type": CONTENT_TYPE, "Cache-Control": "no-store"}
        )
        try:
            await response.prepare(request)
            async for chunk in reader.chunks():
                await response.write(chunk)
        except ConnectionError:
            pass  # the reader left
        finally:
            live.close_reader(device_id, reader)
        return response
