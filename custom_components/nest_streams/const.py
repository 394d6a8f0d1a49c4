"""Constants for Nest Streams."""

from __future__ import annotations

import os
from typing import Final

DOMAIN: Final = "nest_streams"

CONF_PROJECT_ID: Final = "project_id"

# Development only (scripts/develop): one base URL that stands in for Google's three hosts,
# the local SDM emulator. Unset in every real installation.
EMULATOR_URL: Final = os.environ.get("NEST_STREAMS_EMULATOR_URL", "").rstrip("/")

OAUTH2_AUTHORIZE: Final = (
    f"{EMULATOR_URL or 'https://nestservices.google.com'}/partnerconnections/{{project_id}}/auth"
)
OAUTH2_TOKEN: Final = f"{EMULATOR_URL or 'https://www.googleapis.com'}/oauth2/v4/token"
API_URL: Final = f"{EMULATOR_URL or 'https://smartdevicemanagement.googleapis.com'}/v1"
SDM_SCOPES: Final = ["https://www.googleapis.com/auth/sdm.service"]

# Options
CONF_QPM: Final = "qpm"
CONF_EXTENSION_LEAD: Final = "extension_lead"
CONF_MAX_FAILURES: Final = "max_failures"
CONF_DEGRADED_RETRY: Final = "degraded_retry"
CONF_RETRY_BASE: Final = "retry_base"
CONF_CAMERAS: Final = "cameras"
CONF_EXCLUDED_CAMERAS: Final = "excluded_cameras"

DEFAULT_QPM: Final = 10
DEFAULT_EXTENSION_LEAD: Final = 15
DEFAULT_MAX_FAILURES: Final = 5
DEFAULT_DEGRADED_RETRY: Final = 300
DEFAULT_RETRY_BASE: Final = 10
