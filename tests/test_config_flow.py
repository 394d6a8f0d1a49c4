"""The config flow: project id -> Google OAuth (the emulator's consent screen) -> camera list."""

from __future__ import annotations

import dataclasses
from typing import Any
from urllib.parse import parse_qs, urlparse

from homeassistant.config_entries import SOURCE_USER
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.nest_streams.const import (
    CONF_CAMERAS,
    CONF_EXCLUDED_CAMERAS,
    CONF_PROJECT_ID,
    DOMAIN,
)
from custom_components.nest_streams.core.settings import USER_OPTIONS, Settings
from sdm_emulator import Emulator
from sdm_emulator.config import default_devices

from .common import CLIENT_ID, PROJECT_ID

pytestmark = pytest.mark.usefixtures("current_request_with_host")


async def _sign_in(
    hass: HomeAssistant,
    client_factory: ClientSessionGenerator,
    emulator: Emulator,
    result: Any,
    *,
    project_gone: bool = False,
) -> Any:
    """Follow the external step: the emulator's consent page redirects to HA's callback.

    `project_gone`: the project disappears after the consent (Google then knows no such
    enterprise when the flow reads the device list).
    """
    assert result["type"] is FlowResultType.EXTERNAL_STEP
    url = urlparse(result["url"])
    assert url.netloc == "nestservices.google.com"
    assert url.path == f"/partnerconnections/{PROJECT_ID}/auth"
    query = {key: values[0] for key, values in parse_qs(url.query).items()}
    assert query["client_id"] == CLIENT_ID
    assert query["scope"] == "https://www.googleapis.com/auth/sdm.service"
    assert query["access_type"] == "offline"
    consent = await emulator.handle("GET", url.path, query, {}, b"")
    assert consent.status == 302
    callback = urlparse(consent.headers["Location"])
    if project_gone:
        emulator.config.project_id = "another-project"
    client = await client_factory()
    response = await client.get(f"{callback.path}?{callback.query}")
    assert response.status == 200
    return await hass.config_entries.flow.async_configure(result["flow_id"])


async def _start(hass: HomeAssistant) -> Any:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    return await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_PROJECT_ID: f" {PROJECT_ID} "}
    )


@pytest.mark.usefixtures("setup_credentials")
async def test_full_flow(
    hass: HomeAssistant, hass_client_no_auth: ClientSessionGenerator, emulator: Emulator
) -> None:
    result = await _sign_in(hass, hass_client_no_auth, emulator, await _start(hass))
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Home"
    assert result["result"].unique_id == PROJECT_ID
    data = result["data"]
    assert data[CONF_PROJECT_ID] == PROJECT_ID
    assert data["auth_implementation"] == "imported-cred"
    assert data["token"]["refresh_token"].startswith("1//")


@pytest.mark.usefixtures("setup_credentials")
async def test_already_configured(hass: HomeAssistant, config_entry: MockConfigEntry) -> None:
    config_entry.add_to_hass(hass)
    result = await _start(hass)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_missing_credentials(hass: HomeAssistant) -> None:
    result = await _start(hass)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "missing_credentials"


@pytest.mark.usefixtures("setup_credentials")
@pytest.mark.parametrize("devices", [[]])
async def test_no_cameras(
    hass: HomeAssistant, hass_client_no_auth: ClientSessionGenerator, emulator: Emulator
) -> None:
    result = await _sign_in(hass, hass_client_no_auth, emulator, await _start(hass))
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "no_cameras"


@pytest.mark.usefixtures("setup_credentials")
async def test_project_not_found(
    hass: HomeAssistant, hass_client_no_auth: ClientSessionGenerator, emulator: Emulator
) -> None:
    """Google answers 404 "Enterprise not found": the user is told to check the project id."""
    result = await _sign_in(
        hass, hass_client_no_auth, emulator, await _start(hass), project_gone=True
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "project_not_found"
    assert result["description_placeholders"] == {"project_id": PROJECT_ID}


@pytest.mark.usefixtures("setup_credentials")
async def test_api_error(
    hass: HomeAssistant, hass_client_no_auth: ClientSessionGenerator, emulator: Emulator
) -> None:
    emulator.config.faults.rate_503 = 1.0
    result = await _sign_in(hass, hass_client_no_auth, emulator, await _start(hass))
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "api_error"
    assert "503" in result["description_placeholders"]["error"]


@pytest.mark.usefixtures("setup_credentials")
async def test_refused_token(
    hass: HomeAssistant, hass_client_no_auth: ClientSessionGenerator, emulator: Emulator
) -> None:
    emulator.config.access_token_lifetime = 0  # every token is born expired
    result = await _sign_in(hass, hass_client_no_auth, emulator, await _start(hass))
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "invalid_auth"


@pytest.mark.usefixtures("setup_credentials")
async def test_reauth(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    emulator: Emulator,
    config_entry: MockConfigEntry,
) -> None:
    config_entry.add_to_hass(hass)
    old_token = config_entry.data["token"]["access_token"]
    result = await config_entry.start_reauth_flow(hass)
    assert result["step_id"] == "reauth_confirm"
    assert result["description_placeholders"]["project_id"] == PROJECT_ID
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    result = await _sign_in(hass, hass_client_no_auth, emulator, result)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert config_entry.data["token"]["access_token"] != old_token
    assert config_entry.data[CONF_PROJECT_ID] == PROJECT_ID
    await hass.async_block_till_done()
    assert await hass.config_entries.async_unload(config_entry.entry_id)


@pytest.mark.usefixtures("setup_credentials")
async def test_reconfigure(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    emulator: Emulator,
    config_entry: MockConfigEntry,
) -> None:
    config_entry.add_to_hass(hass)
    result = await config_entry.start_reconfigure_flow(hass)
    assert result["step_id"] == "reconfigure"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_PROJECT_ID: PROJECT_ID}
    )
    result = await _sign_in(hass, hass_client_no_auth, emulator, result)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    assert await hass.config_entries.async_unload(config_entry.entry_id)


@pytest.mark.usefixtures("setup_credentials")
async def test_reconfigure_must_keep_the_project(
    hass: HomeAssistant, config_entry: MockConfigEntry
) -> None:
    config_entry.add_to_hass(hass)
    result = await config_entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_PROJECT_ID: "another-project"}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "wrong_project"


NEW_OPTIONS = {
    "qpm": 8.5,
    "extension_lead": 20,
    "max_failures": 3,
    "degraded_retry": 600,
    "retry_base": 5,
    "device_calls_per_hour": 40,
}


def test_the_flow_offers_every_user_option_of_settings() -> None:
    """One name per setting: every user option is a field of Settings with its default."""
    assert {option.name for option in USER_OPTIONS} == set(NEW_OPTIONS)
    for option in USER_OPTIONS:
        assert option.default == getattr(Settings(), option.name)
        assert option.parse(option.default) == option.default


async def test_options_flow(hass: HomeAssistant, setup_integration: MockConfigEntry) -> None:
    entry = setup_integration
    cameras = list(entry.runtime_data.coordinator.cameras)
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "init"
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {**NEW_OPTIONS, CONF_CAMERAS: cameras[1:]}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options == {**NEW_OPTIONS, CONF_EXCLUDED_CAMERAS: [cameras[0]]}
    await hass.async_block_till_done()
    # The entry reloaded with the new options: each reaches the core under its own name.
    scheduler = entry.runtime_data.coordinator.scheduler
    assert scheduler.settings == Settings(**NEW_OPTIONS)  # type: ignore[arg-type]
    assert scheduler.queue.interval == pytest.approx(60 / 8.5 * 1.01)
    assert not scheduler.stream(cameras[0]).enabled


async def test_options_flow_refuses_invalid_numbers(
    hass: HomeAssistant, setup_integration: MockConfigEntry
) -> None:
    """A value the selector lets through but the option cannot take is an error on its field."""
    result = await hass.config_entries.options.async_init(setup_integration.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {**NEW_OPTIONS, "qpm": 2.25, "max_failures": 2.5}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"qpm": "invalid_number", "max_failures": "invalid_number"}
    # HA's number selector would store `true` as 1 (capacity 4): refused instead.
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {**NEW_OPTIONS, "qpm": True}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"qpm": "invalid_number"}
    result = await hass.config_entries.options.async_configure(result["flow_id"], NEW_OPTIONS)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()


@pytest.mark.parametrize("options", [{CONF_EXCLUDED_CAMERAS: ["enterprises/p/devices/x"]}])
@pytest.mark.usefixtures("setup_credentials")
async def test_options_flow_of_an_unloaded_entry_keeps_the_exclusions(
    hass: HomeAssistant, config_entry: MockConfigEntry
) -> None:
    """Without the camera list (entry not loaded) the exclusions are kept, not wiped."""
    config_entry.add_to_hass(hass)
    result = await hass.config_entries.options.async_init(config_entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    schema = result["data_schema"]
    assert schema is not None
    assert CONF_CAMERAS not in schema.schema
    result = await hass.config_entries.options.async_configure(result["flow_id"], NEW_OPTIONS)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert config_entry.options[CONF_EXCLUDED_CAMERAS] == ["enterprises/p/devices/x"]
    await hass.async_block_till_done()
    assert await hass.config_entries.async_unload(config_entry.entry_id)


@pytest.mark.usefixtures("setup_credentials")
@pytest.mark.parametrize(
    "project_id", ["", "   ", "../../oauth2/v4/token?x=", "p/devices/x", "a" * 5000, "p q"]
)
async def test_invalid_project_ids_are_refused(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    emulator: Emulator,
    project_id: str,
) -> None:
    """A project id that is no id is a form error; nothing goes into the authorize URL."""
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_PROJECT_ID: project_id}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_PROJECT_ID: "invalid_project_id"}
    # Corrected (pasted as the API names it), the flow goes on.
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_PROJECT_ID: f"enterprises/{PROJECT_ID}"}
    )
    result = await _sign_in(hass, hass_client_no_auth, emulator, result)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_PROJECT_ID] == PROJECT_ID


async def test_reconfigure_refuses_an_invalid_project_id(
    hass: HomeAssistant, setup_integration: MockConfigEntry
) -> None:
    result = await setup_integration.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_PROJECT_ID: "x/../y"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_PROJECT_ID: "invalid_project_id"}


def _fields(result: Any) -> dict[str, tuple[Any, Any]]:
    """The form's fields: name -> (key, selector)."""
    schema = result["data_schema"]
    assert schema is not None
    return {str(key.schema): (key, selector) for key, selector in schema.schema.items()}


def _first_camera_renamed(name: str) -> list[Any]:
    """The default project, its first camera (first by device id) named `name`."""
    first, *others = default_devices(3, webrtc=1)
    return [dataclasses.replace(first, name=name), *others]


@pytest.mark.parametrize("devices", [_first_camera_renamed("Zoo gate")])
async def test_the_options_form_shows_each_option_with_its_range(
    hass: HomeAssistant, setup_integration: MockConfigEntry
) -> None:
    """Every option: its default, its range, step and unit as a box; the cameras by name (not
    by device id: the first camera by id is the last by name), all kept alive; what was typed
    is shown again with the error."""
    result = await hass.config_entries.options.async_init(setup_integration.entry_id)
    assert result["step_id"] == "init"
    fields = _fields(result)
    assert list(fields) == [*(option.name for option in USER_OPTIONS), CONF_CAMERAS]
    for option in USER_OPTIONS:
        key, selector = fields[option.name]
        assert key.default() == option.default
        expected: dict[str, Any] = {
            "min": option.minimum,
            "max": option.maximum,
            "step": option.step,
            "mode": "box",
        }
        if option.unit is not None:
            expected["unit_of_measurement"] = option.unit
        assert selector.config == expected
    key, selector = fields[CONF_CAMERAS]
    cameras = setup_integration.runtime_data.coordinator.cameras
    labels = [option["label"] for option in selector.config["options"]]
    assert labels == sorted(camera.name for camera in cameras.values())
    assert labels[-1] == "Zoo gate"
    assert sorted(key.description["suggested_value"]) == sorted(cameras)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {**NEW_OPTIONS, "qpm": 2.25}
    )
    key, _ = _fields(result)["qpm"]
    assert key.description["suggested_value"] == 2.25


async def test_the_reconfigure_form_shows_the_project(
    hass: HomeAssistant, setup_integration: MockConfigEntry
) -> None:
    result = await setup_integration.start_reconfigure_flow(hass)
    assert result["step_id"] == "reconfigure"
    key, _ = _fields(result)[CONF_PROJECT_ID]
    assert key.description["suggested_value"] == PROJECT_ID
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_PROJECT_ID: "x/../y"}
    )
    assert result["step_id"] == "reconfigure"
    key, _ = _fields(result)[CONF_PROJECT_ID]
    assert key.description["suggested_value"] == "x/../y"
