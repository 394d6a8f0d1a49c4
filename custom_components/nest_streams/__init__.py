"""Nest Streams: keep many Google Nest camera live streams alive under the SDM quota."""

from __future__ import annotations

import asyncio
from typing import cast

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import (
    ConfigEntryAuthFailed,
    OAuth2TokenRequestBaseError,
    OAuth2TokenRequestReauthError,
)
from homeassistant.helpers import (
    config_entry_oauth2_flow,
    config_validation as cv,
    device_registry as dr,
)
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.typing import ConfigType

from .api import SdmClient, TokenAuth
from .const import API_URL, CONF_PROJECT_ID, DOMAIN
from .coordinator import NestStreamsConfigEntry, NestStreamsCoordinator, NestStreamsData
from .core.errors import AuthFailed, TransientError
from .entity import hub_device_info
from .live import LiveViews
from .redact import install_secret_filter
from .services import async_setup_services
from .store import StreamStore

CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)
PLATFORMS = [Platform.BINARY_SENSOR, Platform.CAMERA, Platform.SENSOR]


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the services; keep secrets out of debug logs."""
    install_secret_filter()
    async_setup_services(hass)
    return True


async def async_setup_entry(hass: HomeAssistant, entry: NestStreamsConfigEntry) -> bool:
    """Set up one Google project: token, device list, scheduler, entities."""
    implementation = await config_entry_oauth2_flow.async_get_config_entry_implementation(
        hass, entry
    )
    session = config_entry_oauth2_flow.OAuth2Session(hass, entry, implementation)
    try:
        await session.async_ensure_token_valid()
    except OAuth2TokenRequestReauthError as err:
        raise ConfigEntryAuthFailed(
            translation_domain=DOMAIN, translation_key="auth_failed"
        ) from err

    refresh_lock = asyncio.Lock()

    async def access_token(refresh: bool) -> str:
        """A valid access token (`refresh`: a new one); errors as the core's."""
        try:
            if refresh:
                refused = session.token["access_token"]
                async with refresh_lock:  # commands refused together refresh once
                    if session.token["access_token"] == refused:
                        await async_refresh_token(hass, entry, session)
            else:
                await session.async_ensure_token_valid()
        except OAuth2TokenRequestReauthError as err:
            raise AuthFailed(str(err)) from err
        except OAuth2TokenRequestBaseError as err:
            raise TransientError(f"token refresh failed: {err}") from err
        return cast(str, session.token["access_token"])

    client = SdmClient(
        TokenAuth(async_get_clientsession(hass), API_URL, access_token),
        entry.data[CONF_PROJECT_ID],
    )
    coordinator = NestStreamsCoordinator(hass, entry, client)
    await coordinator.async_config_entry_first_refresh()
    entry.runtime_data = NestStreamsData(coordinator=coordinator)
    # The hub device first: the cameras' devices hang off it.
    dr.async_get(hass).async_get_or_create(
        config_entry_id=entry.entry_id, **hub_device_info(coordinator)
    )
    await coordinator.async_start()
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    return True


async def async_refresh_token(
    hass: HomeAssistant,
    entry: NestStreamsConfigEntry,
    session: config_entry_oauth2_flow.OAuth2Session,
) -> None:
    """Refresh the access token now, although it has not expired (Google refused it)."""
    token = await session.implementation.async_refresh_token(session.token)
    hass.config_entries.async_update_entry(entry, data={**entry.data, "token": token})


async def async_remove_config_entry_device(
    hass: HomeAssistant, entry: NestStreamsConfigEntry, device_entry: dr.DeviceEntry
) -> bool:
    """Allow removing a camera's device once the camera is no longer in the project."""
    coordinator = entry.runtime_data.coordinator
    return not any(
        domain == DOMAIN and (key in coordinator.cameras or key == coordinator.project_id)
        for domain, key in device_entry.identifiers
    )


async def async_unload_entry(hass: HomeAssistant, entry: NestStreamsConfigEntry) -> bool:
    """Unload the entities; the coordinator's shutdown saves the live streams."""
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)


async def async_remove_entry(hass: HomeAssistant, entry: NestStreamsConfigEntry) -> None:
    """The entry is deleted: its live views end, its saved streams go (they expire at
    Google)."""
    await LiveViews.of(hass, entry.entry_id).async_close("the integration was removed")
    await StreamStore(hass, entry.entry_id).async_remove()
