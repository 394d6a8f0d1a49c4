"""Application credentials platform for Nest Streams."""

from __future__ import annotations

from homeassistant.components.application_credentials import AuthorizationServer
from homeassistant.core import HomeAssistant

from .const import OAUTH2_TOKEN


async def async_get_authorization_server(hass: HomeAssistant) -> AuthorizationServer:
    """Return the authorization server.

    The authorize URL holds the Device Access project id, so the config flow builds it.
    """
    return AuthorizationServer(authorize_url="", token_url=OAUTH2_TOKEN)


async def async_get_description_placeholders(hass: HomeAssistant) -> dict[str, str]:
    """Return description placeholders for the credentials dialog."""
    return {
        "oauth_consent_url": "https://console.cloud.google.com/apis/credentials/consent",
        "oauth_creds_url": "https://console.cloud.google.com/apis/credentials",
        "device_access_console_url": "https://console.nest.google.com/device-access/",
        "redirect_url": "https://my.home-assistant.io/redirect/oauth",
    }
