"""Secrets out of logs and diagnostics: stream tokens, extension tokens, sessions, auth= URLs.

"Enable debug logging" turns on the loggers of the manifest (ours and google_nest_sdm's), and
google-nest-sdm logs each request and response whole. `SecretFilter` rewrites every record of
those loggers before any handler sees it.
"""

from __future__ import annotations

import logging
import re
from typing import Any

REDACTED = "**REDACTED**"
SECRET_KEYS = (
    "streamExtensionToken",
    "streamToken",
    "mediaSessionId",
    "answerSdp",
    "offerSdp",
    "extension_token",
    "session_id",
    "answer_sdp",
    "access_token",
    "refresh_token",
)
_KEY_VALUE = re.compile(
    r"""(?P<key>["']?(?:"""
    + "|".join(SECRET_KEYS)
    + r""")["']?\s*[:=]\s*)(?P<quote>["']?)(?P<value>[^"',}\s]+)"""
)
_AUTH_PARAMETER = re.compile(r"auth=[^&\s\"']+")
_BEARER = re.compile(r"Bearer\s+[A-Za-z0-9._~+/=-]+")
LOGGER_PREFIXES = ("google_nest_sdm", "custom_components.nest_streams")


def redact_text(text: str) -> str:
    """`text` with every known secret replaced."""
    text = _KEY_VALUE.sub(lambda m: f"{m['key']}{m['quote']}{REDACTED}", text)
    text = _AUTH_PARAMETER.sub(f"auth={REDACTED}", text)
    return _BEARER.sub(f"Bearer {REDACTED}", text)


def redact_value(value: Any) -> Any:
    """`value` (str, dict, list) with secrets inside strings replaced."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {key: redact_value(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_value(item) for item in value]
    return value


class SecretFilter(logging.Filter):
    """Rewrites a record's message with its secrets replaced (the record is kept)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact, then let the record through."""
        message = record.getMessage()
        redacted = redact_text(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


_FILTER = SecretFilter()


def install_secret_filter() -> None:
    """Attach the filter to every logger of ours and of google-nest-sdm (records are filtered
    only by the logger that creates them, so each module's logger gets it)."""
    names = [
        name for name in list(logging.Logger.manager.loggerDict) if name.startswith(LOGGER_PREFIXES)
    ]
    for name in {*names, *LOGGER_PREFIXES}:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
