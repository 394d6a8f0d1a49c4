"""Nest Streams: keep many Google Nest camera live streams alive under the SDM quota."""

from __future__ import annotations

import dns.rdata
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ConfigEntryAuthFailed, OAuth2TokenRequestReauthError
from homeassistant.helpers import (
    config_entry_oauth2_flow,
    config_validation as cv,
    device_registry as dr,
)
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.typing import ConfigType

from .api import SdmClient, TokenAuth
from .auth import AccessTokens
from .const import API_URL, CONF_PROJECT_ID, DOMAIN
from .coordinator import NestStreamsConfigEntry, NestStreamsCoordinator, NestStreamsData
from .entity import hub_device_info
from .live import LiveViews
from .redact import install_secret_filter
from .restream import RestreamSecrets, RestreamView, async_remove_secrets
from .services import async_setup_services
from .store import StreamStore

CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)
PLATFORMS = [Platform.BINARY_SENSOR, Platform.CAMERA, Platform.SENSOR]


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the services and the restream URLs' view; keep secrets out of debug logs;
    load what the live view's ICE would otherwise import in the event loop."""
    install_secret_filter()
    async_setup_services(hass)
    hass.http.register_view(RestreamView())
    await hass.async_add_executor_job(_load_dns_types)
    return True


def _load_dns_types() -> None:
    """dnspython's record types, which it imports on first use: aioice resolves a browser's
    mDNS candidates (`….local`) with it, in the event loop (HA reports blocking imports)."""
    dns.rdata.load_all_types(disable_dynamic_load=False)  # type: ignore[no-untyped-call]


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

    client = SdmClient(
        TokenAuth(async_get_clientsession(hass), API_URL, AccessTokens(hass, entry, session)),
        entry.data[CONF_PROJECT_ID],
    )
    coordinator = NestStreamsCoordinator(hass, entry, client)
    await coordinator.async_config_entry_first_refresh()
    entry.runtime_data = NestStreamsData(
        coordinator=coordinator,
        restream=await RestreamSecrets.async_load(hass, entry.entry_id),
    )
    # The hub device first: the cameras' devices hang off it.
    dr.async_get(hass).async_get_or_create(
        config_entry_id=entry.entry_id, **hub_device_info(coordinator)
    )
    await coordinator.async_start()
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    return True


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
    await async_remove_secrets(hass, entry.entry_id)
