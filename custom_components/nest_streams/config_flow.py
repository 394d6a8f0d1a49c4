"""Config flow for Nest Streams: Device Access project id, then Google's OAuth."""

from __future__ import annotations

from collections.abc import Mapping
import logging
import re
from typing import Any, override

from homeassistant.config_entries import (
    SOURCE_REAUTH,
    SOURCE_RECONFIGURE,
    ConfigEntry,
    ConfigEntryState,
    ConfigFlowResult,
    OptionsFlowWithReload,
)
from homeassistant.core import callback
from homeassistant.helpers import config_entry_oauth2_flow
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.selector import (
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    SelectOptionDict,
    SelectSelector,
    SelectSelectorConfig,
)
import probatio

from .api import ProjectNotFound, SdmClient, TokenAuth
from .const import (
    API_URL,
    CONF_CAMERAS,
    CONF_EXCLUDED_CAMERAS,
    CONF_PROJECT_ID,
    DOMAIN,
    OAUTH2_AUTHORIZE,
    SDM_SCOPES,
)
from .core.errors import AuthFailed, StreamError
from .core.settings import USER_OPTIONS, UserOption

_LOGGER = logging.getLogger(__name__)

PROJECT_SCHEMA = probatio.Schema({probatio.Required(CONF_PROJECT_ID): str})
PROJECT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,62}")
"""Device Access project ids are UUIDs; letters, digits and dashes only, as they go into URLs."""


def _project_id(raw: str) -> str | None:
    """The project id typed (as the console shows it, or as `enterprises/<id>`), or None."""
    project_id = raw.strip().removeprefix("enterprises/")
    return project_id if PROJECT_ID.fullmatch(project_id) else None


class NestStreamsFlowHandler(config_entry_oauth2_flow.AbstractOAuth2FlowHandler, domain=DOMAIN):
    """Project id -> OAuth -> the camera list is read -> entry."""

    DOMAIN = DOMAIN
    VERSION = 1

    def __init__(self) -> None:
        """Initialize the flow."""
        super().__init__()
        self._project_id: str | None = None

    @property
    @override
    def logger(self) -> logging.Logger:
        """Return the logger."""
        return _LOGGER

    @property
    @override
    def extra_authorize_data(self) -> dict[str, str]:
        """Ask for the SDM scope and a refresh token."""
        return {"scope": " ".join(SDM_SCOPES), "access_type": "offline", "prompt": "consent"}

    @override
    async def async_generate_authorize_url(self) -> str:
        """Build the authorize URL from the Device Access project id."""
        query = await super().async_generate_authorize_url()
        return OAUTH2_AUTHORIZE.format(project_id=self._project_id) + query

    @override
    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Ask for the Device Access project id."""
        errors: dict[str, str] = {}
        if user_input is not None:
            if (project_id := _project_id(user_input[CONF_PROJECT_ID])) is not None:
                self._project_id = project_id
                await self.async_set_unique_id(project_id)
                self._abort_if_unique_id_configured()
                return await super().async_step_user()
            errors[CONF_PROJECT_ID] = "invalid_project_id"
        return self.async_show_form(
            step_id="user",
            data_schema=self.add_suggested_values_to_schema(PROJECT_SCHEMA, user_input),
            errors=errors,
        )

    async def async_step_reauth(self, entry_data: Mapping[str, Any]) -> ConfigFlowResult:
        """Start re-authentication after Google refused the stored credentials."""
        self._project_id = entry_data[CONF_PROJECT_ID]
        return await self.async_step_reauth_confirm()

    async def async_step_reauth_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Confirm re-authentication."""
        if user_input is None:
            return self.async_show_form(
                step_id="reauth_confirm",
                description_placeholders={"project_id": str(self._project_id)},
            )
        return await super().async_step_user()

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Sign in again, possibly with other application credentials, for the same project."""
        entry = self._get_reconfigure_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            if (project_id := _project_id(user_input[CONF_PROJECT_ID])) is not None:
                self._project_id = project_id
                await self.async_set_unique_id(project_id)
                self._abort_if_unique_id_mismatch(reason="wrong_project")
                return await super().async_step_user()
            errors[CONF_PROJECT_ID] = "invalid_project_id"
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=self.add_suggested_values_to_schema(
                PROJECT_SCHEMA, user_input or entry.data
            ),
            errors=errors,
        )

    @override
    async def async_oauth_create_entry(self, data: dict[str, Any]) -> ConfigFlowResult:
        """Read the camera list with the new token before creating or updating the entry."""
        access_token: str = data["token"]["access_token"]

        async def token(_refresh: bool) -> str:
            return access_token

        client = SdmClient(
            TokenAuth(async_get_clientsession(self.hass), API_URL, token), str(self._project_id)
        )
        try:
            cameras = await client.async_list_cameras()
            homes = await client.async_structure_names()
        except AuthFailed as err:
            _LOGGER.warning("Google refused the new token: %s", err)
            return self.async_abort(reason="invalid_auth")
        except ProjectNotFound as err:
            _LOGGER.warning("Google knows no project %s: %s", self._project_id, err)
            return self.async_abort(
                reason="project_not_found",
                description_placeholders={"project_id": str(self._project_id)},
            )
        except StreamError as err:
            _LOGGER.warning("Could not read the device list: %s", err)
            return self.async_abort(
                reason="api_error", description_placeholders={"error": str(err)}
            )
        if not cameras:
            return self.async_abort(reason="no_cameras")

        data[CONF_PROJECT_ID] = self._project_id
        if self.source in (SOURCE_REAUTH, SOURCE_RECONFIGURE):
            entry = (
                self._get_reauth_entry()
                if self.source == SOURCE_REAUTH
                else self._get_reconfigure_entry()
            )
            await self.async_set_unique_id(self._project_id)
            self._abort_if_unique_id_mismatch(reason="wrong_project")
            return self.async_update_reload_and_abort(entry, data_updates=data)
        title = ", ".join(homes) or f"Nest project {self._project_id}"
        return self.async_create_entry(title=title, data=data)

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: ConfigEntry) -> NestStreamsOptionsFlow:
        """Return the options flow."""
        return NestStreamsOptionsFlow()


class _NumberOnly(NumberSelector):
    """HA's number selector, which would take `true` for 1: a boolean reaches the step
    unchanged, which refuses it with the field's error."""

    def __call__(self, data: Any) -> Any:
        """A number as HA's selector casts it; a boolean as it came."""
        return data if isinstance(data, bool) else super().__call__(data)


def _selector(option: UserOption) -> NumberSelector:
    config = NumberSelectorConfig(
        min=option.minimum, max=option.maximum, step=option.step, mode=NumberSelectorMode.BOX
    )
    if option.unit is not None:
        config["unit_of_measurement"] = option.unit
    return _NumberOnly(config)


class NestStreamsOptionsFlow(OptionsFlowWithReload):
    """Quota, timing and which cameras to keep alive: the user options of `Settings`."""

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Show and store the options."""
        entry = self.config_entry
        excluded = set(entry.options.get(CONF_EXCLUDED_CAMERAS, []))
        cameras: dict[str, str] = {}
        if entry.state is ConfigEntryState.LOADED:
            cameras = {
                cam.device_id: cam.name for cam in entry.runtime_data.coordinator.cameras.values()
            }
        errors: dict[str, str] = {}
        if user_input is not None:
            options: dict[str, Any] = {}
            for option in USER_OPTIONS:
                value = option.parse(user_input[option.name])
                if value is None:
                    errors[option.name] = "invalid_number"
                options[option.name] = value
            if not errors:
                if cameras:
                    # Stored as the cameras NOT to keep alive, so cameras added later default
                    # to on; exclusions of cameras not in the list now are kept.
                    selected = set(user_input.get(CONF_CAMERAS, []))
                    excluded = (excluded - set(cameras)) | (set(cameras) - selected)
                options[CONF_EXCLUDED_CAMERAS] = sorted(excluded)
                return self.async_create_entry(data=options)

        fields: dict[Any, Any] = {
            probatio.Required(option.name, default=option.default): _selector(option)
            for option in USER_OPTIONS
        }
        if cameras:
            fields[probatio.Optional(CONF_CAMERAS)] = SelectSelector(
                SelectSelectorConfig(
                    options=[
                        SelectOptionDict(value=device_id, label=name)
                        for device_id, name in sorted(cameras.items(), key=lambda i: i[1])
                    ],
                    multiple=True,
                )
            )
        current = {
            **entry.options,
            **(user_input or {}),
            CONF_CAMERAS: [device_id for device_id in cameras if device_id not in excluded],
        }
        return self.async_show_form(
            step_id="init",
            data_schema=self.add_suggested_values_to_schema(probatio.Schema(fields), current),
            errors=errors,
        )
