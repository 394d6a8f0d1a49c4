"""Fixtures shared by all tests."""

from __future__ import annotations

import time
from typing import Any

from homeassistant.components.application_credentials import (
    ClientCredential,
    async_import_client_credential,
)
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.nest_streams.const import CONF_PROJECT_ID, DOMAIN

CLIENT_ID = "some-client-id"
CLIENT_SECRET = "some-client-secret"
PROJECT_ID = "project-id-1"
ACCESS_TOKEN = "some-access-token"
REFRESH_TOKEN = "some-refresh-token"


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Let Home Assistant load custom_components/ in every test."""


@pytest.fixture
async def setup_credentials(hass: HomeAssistant) -> None:
    """Import application credentials the way HA's own OAuth tests do."""
    assert await async_setup_component(hass, "application_credentials", {})
    await async_import_client_credential(
        hass, DOMAIN, ClientCredential(CLIENT_ID, CLIENT_SECRET), "imported-cred"
    )


@pytest.fixture
def token_expires_at() -> float:
    """When the stored access token expires (in an hour, unless a test says otherwise)."""
    return time.time() + 3600


@pytest.fixture
def token_entry(token_expires_at: float) -> dict[str, Any]:
    """HA's OAuth2 token dict as stored in the config entry."""
    return {
        "access_token": ACCESS_TOKEN,
        "refresh_token": REFRESH_TOKEN,
        "scope": "https://www.googleapis.com/auth/sdm.service",
        "token_type": "Bearer",
        "expires_in": 3599,
        "expires_at": token_expires_at,
    }


@pytest.fixture
def config_entry(token_entry: dict[str, Any]) -> MockConfigEntry:
    """A config entry for PROJECT_ID."""
    return MockConfigEntry(
        domain=DOMAIN,
        title="Home",
        unique_id=PROJECT_ID,
        data={
            "auth_implementation": "imported-cred",
            "token": token_entry,
            CONF_PROJECT_ID: PROJECT_ID,
        },
    )
