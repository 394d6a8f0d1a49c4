"""Fixtures shared by the Home Assistant tests: the integration talks to the SDM emulator.

HA's shared aiohttp session is swapped for an in-process session bound to the emulator (the
same the benchmarks use), and HA's OAuth token requests, made through `aioclient_mock`, are
answered by the emulator's token endpoint. Time is HA's: freezer moves both sides.
"""

from __future__ import annotations

from collections.abc import Generator
import time
from typing import Any
from unittest.mock import PropertyMock, patch

from aiortc import RTCCertificate
from homeassistant.components.application_credentials import (
    ClientCredential,
    async_import_client_credential,
)
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.syrupy import HomeAssistantSnapshotExtension
from pytest_homeassistant_custom_component.test_util.aiohttp import AiohttpClientMocker
from syrupy.assertion import SnapshotAssertion

from custom_components.nest_streams.const import CONF_PROJECT_ID, DOMAIN, OAUTH2_TOKEN
from sdm_emulator import Emulator, EmulatorConfig, default_devices
from sdm_emulator.ha_bridge import register_token_endpoint
from sdm_emulator.inprocess import InProcessSession

from .common import CLIENT_ID, CLIENT_SECRET, PROJECT_ID

# aiortc signs a certificate per peer; cryptography's Rust core remembers the `datetime` class
# it first sees. Signing once now, outside frozen time, keeps a later peer made under freezer
# (tests of the RTSP live view) from leaving it bound to freezegun's class for the whole run.
RTCCertificate.generateCertificate()


@pytest.fixture
def snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    """Snapshots in HA's format (ids and timestamps made stable), as HA core's tests use."""
    return snapshot.use_extension(HomeAssistantSnapshotExtension)


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Let Home Assistant load custom_components/ in every test."""


@pytest.fixture
def devices() -> list[Any]:
    """The emulated project: 3 RTSP cameras, a wired WebRTC camera, a thermostat."""
    return default_devices(3, webrtc=1)


@pytest.fixture
def emulator(devices: list[Any]) -> Emulator:
    """The SDM + OAuth emulator on real (or frozen) time."""
    return Emulator(EmulatorConfig(project_id=PROJECT_ID, devices=devices))


@pytest.fixture(autouse=True)
def sdm_session(emulator: Emulator) -> Generator[InProcessSession]:
    """Route the integration's SDM calls to the emulator."""
    session = InProcessSession(emulator)
    with (
        patch("custom_components.nest_streams.async_get_clientsession", return_value=session),
        patch(
            "custom_components.nest_streams.config_flow.async_get_clientsession",
            return_value=session,
        ),
    ):
        yield session


@pytest.fixture(autouse=True)
def token_endpoint(aioclient_mock: AiohttpClientMocker, emulator: Emulator) -> None:
    """Answer HA's OAuth token requests from the emulator's token endpoint."""
    register_token_endpoint(aioclient_mock, emulator, OAUTH2_TOKEN)


@pytest.fixture
async def setup_credentials(hass: HomeAssistant) -> None:
    """Import application credentials the way HA's own OAuth tests do."""
    assert await async_setup_component(hass, "application_credentials", {})
    await async_import_client_credential(
        hass, DOMAIN, ClientCredential(CLIENT_ID, CLIENT_SECRET), "imported-cred"
    )


@pytest.fixture
def token_lifetime() -> float:
    """Seconds the stored access token still lives (negative: already expired)."""
    return 3599


@pytest.fixture
def token_entry(emulator: Emulator, token_lifetime: float) -> dict[str, Any]:
    """HA's OAuth2 token dict, issued by the emulator."""
    tokens = emulator.issue_tokens()
    return {**tokens, "expires_at": time.time() + token_lifetime}


@pytest.fixture
def options() -> dict[str, Any]:
    """The entry's options."""
    return {}


@pytest.fixture
def config_entry(token_entry: dict[str, Any], options: dict[str, Any]) -> MockConfigEntry:
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
        options=options,
    )


@pytest.fixture
async def setup_integration(
    hass: HomeAssistant, setup_credentials: None, config_entry: MockConfigEntry
) -> MockConfigEntry:
    """The entry, set up."""
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    return config_entry


@pytest.fixture
def entity_registry_enabled_by_default() -> Generator[None]:
    """Create entities that are disabled by default enabled (as HA core's fixture does)."""
    with patch(
        "homeassistant.helpers.entity.Entity.entity_registry_enabled_default",
        new_callable=PropertyMock,
        return_value=True,
    ):
        yield
