"""Set-up and unload of a config entry."""

from __future__ import annotations

import time

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.test_util.aiohttp import AiohttpClientMocker

from custom_components.nest_streams.const import OAUTH2_TOKEN

from .conftest import REFRESH_TOKEN


@pytest.mark.usefixtures("setup_credentials")
async def test_setup_and_unload(hass: HomeAssistant, config_entry: MockConfigEntry) -> None:
    """A valid token sets the entry up; unloading ends it."""
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    assert config_entry.state is ConfigEntryState.LOADED
    assert config_entry.runtime_data.session.token["refresh_token"] == REFRESH_TOKEN

    assert await hass.config_entries.async_unload(config_entry.entry_id)
    assert config_entry.state is ConfigEntryState.NOT_LOADED


@pytest.mark.usefixtures("setup_credentials")
@pytest.mark.parametrize("token_expires_at", [time.time() - 60])
async def test_expired_token_is_refreshed(
    hass: HomeAssistant, config_entry: MockConfigEntry, aioclient_mock: AiohttpClientMocker
) -> None:
    """An expired access token is refreshed at Google's token URL on set-up."""
    aioclient_mock.post(
        OAUTH2_TOKEN,
        json={"access_token": "new-token", "expires_in": 3599, "token_type": "Bearer"},
    )
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    assert config_entry.state is ConfigEntryState.LOADED
    assert config_entry.data["token"]["access_token"] == "new-token"


@pytest.mark.usefixtures("setup_credentials")
@pytest.mark.parametrize(
    ("status", "state"),
    [
        (400, ConfigEntryState.SETUP_ERROR),
        (401, ConfigEntryState.SETUP_ERROR),
        (500, ConfigEntryState.SETUP_RETRY),
    ],
)
@pytest.mark.parametrize("token_expires_at", [time.time() - 60])
async def test_token_refresh_failure(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    aioclient_mock: AiohttpClientMocker,
    status: int,
    state: ConfigEntryState,
) -> None:
    """A refused refresh asks for reauth; a token service failure retries later."""
    aioclient_mock.post(OAUTH2_TOKEN, status=status)
    config_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(config_entry.entry_id)
    assert config_entry.state is state
