"""Nest Streams: keep many Google Nest camera live streams alive under the SDM quota."""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus

from aiohttp import ClientError, ClientResponseError
from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ConfigEntryAuthFailed, ConfigEntryNotReady
from homeassistant.helpers import config_entry_oauth2_flow

from .const import DOMAIN


@dataclass(slots=True)
class NestStreamsData:
    """What one config entry holds while it is loaded."""

    session: config_entry_oauth2_flow.OAuth2Session


type NestStreamsConfigEntry = ConfigEntry[NestStreamsData]


async def async_setup_entry(hass: HomeAssistant, entry: NestStreamsConfigEntry) -> bool:
    """Set up Nest Streams from a config entry."""
    implementation = await config_entry_oauth2_flow.async_get_config_entry_implementation(
        hass, entry
    )
    session = config_entry_oauth2_flow.OAuth2Session(hass, entry, implementation)
    try:
        await session.async_ensure_token_valid()
    except ClientResponseError as err:
        if HTTPStatus.BAD_REQUEST <= err.status < HTTPStatus.INTERNAL_SERVER_ERROR:
            raise ConfigEntryAuthFailed(
                translation_domain=DOMAIN, translation_key="auth_failed"
            ) from err
        raise ConfigEntryNotReady(
            translation_domain=DOMAIN, translation_key="token_unavailable"
        ) from err
    except ClientError as err:
        raise ConfigEntryNotReady(
            translation_domain=DOMAIN, translation_key="token_unavailable"
        ) from err
    entry.runtime_data = NestStreamsData(session=session)
    return True


async def async_unload_entry(hass: HomeAssistant, entry: NestStreamsConfigEntry) -> bool:
    """Unload a config entry."""
    return True
