"""Access tokens for the SDM client, from HA's OAuth2 session; a refused refresh is final.

Google may refuse an access token before its stated expiry (revoked server-side, a host clock
behind Google's): a refused token is refreshed once, however many commands it refused at once.
A refused refresh (`invalid_grant`: the user revoked access, or a "Testing" project's refresh
token expired after 7 days) means only a new sign-in helps: from then on no token is asked for
(every command fails at once with `AuthFailed`, without a request), until the re-authentication
flow reloads the entry.
"""

from __future__ import annotations

import asyncio
import logging
from typing import cast

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import OAuth2TokenRequestBaseError, OAuth2TokenRequestReauthError
from homeassistant.helpers import config_entry_oauth2_flow

from .core.errors import AUTH_REQUIRED, AuthFailed, TransientError

_LOGGER = logging.getLogger(__name__)


class AccessTokens:
    """`await tokens(refresh)`: a valid access token (`refresh`: the current one was refused)."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: ConfigEntry,
        session: config_entry_oauth2_flow.OAuth2Session,
    ) -> None:
        """Tokens of `entry`'s OAuth2 session."""
        self._hass = hass
        self._entry = entry
        self._session = session
        self._lock = asyncio.Lock()
        self.refused = False
        """Whether Google refused the refresh token (a new sign-in is needed)."""

    async def __call__(self, refresh: bool) -> str:
        """A valid access token; raises `AuthFailed` or `TransientError`."""
        session = self._session
        refused_token = session.token["access_token"]
        try:
            async with self._lock:  # commands refused together refresh once
                if self.refused:
                    raise AuthFailed(AUTH_REQUIRED)
                if refresh and session.token["access_token"] == refused_token:
                    token = await session.implementation.async_refresh_token(session.token)
                    self._hass.config_entries.async_update_entry(
                        self._entry, data={**self._entry.data, "token": token}
                    )
                elif not refresh:
                    await session.async_ensure_token_valid()
        except OAuth2TokenRequestReauthError as err:
            self.refused = True
            _LOGGER.debug("Google refused the refresh token: %s", err)
            raise AuthFailed(AUTH_REQUIRED) from err
        except OAuth2TokenRequestBaseError as err:
            raise TransientError("the access token could not be refreshed") from err
        return cast(str, session.token["access_token"])
