"""Shared by the HA benchmark harnesses: the emulator behind HA, and a nest_streams entry."""

from __future__ import annotations

from collections.abc import Generator, Mapping
import contextlib
import time
from typing import Any
from unittest.mock import patch

from homeassistant.components.application_credentials import (
    ClientCredential,
    async_import_client_credential,
)
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.test_util.aiohttp import AiohttpClientMocker

import custom_components.nest_streams  # noqa: F401 - imported so it can be patched
from sdm_emulator import Emulator
from sdm_emulator.ha_bridge import register_token_endpoint
from sdm_emulator.inprocess import InProcessSession

TOKEN_URL = "https://www.googleapis.com/oauth2/v4/token"


@contextlib.contextmanager
def emulator_behind_ha(emulator: Emulator, aioclient_mock: AiohttpClientMocker) -> Generator[None]:
    """All of nest_streams' SDM calls and HA's token refreshes go to `emulator`."""
    register_token_endpoint(aioclient_mock, emulator, TOKEN_URL)
    session = InProcessSession(emulator)
    with patch("custom_components.nest_streams.async_get_clientsession", return_value=session):
        yield


async def add_entry(
    hass: HomeAssistant, emulator: Emulator, options: Mapping[str, Any] | None = None
) -> MockConfigEntry:
    """A nest_streams entry for the emulator's project (credentials imported, token issued)."""
    assert await async_setup_component(hass, "application_credentials", {})
    await async_import_client_credential(
        hass, "nest_streams", ClientCredential("client-id", "client-secret"), "imported-cred"
    )
    token = {**emulator.issue_tokens(), "expires_at": time.time() + 3599}
    project_id = emulator.project_id
    entry = MockConfigEntry(
        domain="nest_streams",
        unique_id=project_id,
        data={"auth_implementation": "imported-cred", "token": token, "project_id": project_id},
        options=dict(options or {}),
    )
    entry.add_to_hass(hass)
    return entry
