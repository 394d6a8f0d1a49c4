"""Constants for Nest Streams.

The options' keys and defaults are the fields of `core.settings.Settings` (see `USER_OPTIONS`).
"""

from __future__ import annotations

from typing import Final

DOMAIN: Final = "nest_streams"

CONF_PROJECT_ID: Final = "project_id"

OAUTH2_AUTHORIZE: Final = "https://nestservices.google.com/partnerconnections/{project_id}/auth"
OAUTH2_TOKEN: Final = "https://www.googleapis.com/oauth2/v4/token"
API_URL: Final = "https://smartdevicemanagement.googleapis.com/v1"
SDM_SCOPES: Final = ["https://www.googleapis.com/auth/sdm.service"]

CONF_CAMERAS: Final = "cameras"
"""The options flow's field: the cameras to keep streaming."""
CONF_EXCLUDED_CAMERAS: Final = "excluded_cameras"
"""The stored option: the cameras NOT to keep streaming (cameras added later default to on)."""
