"""Secrets out of logs and diagnostics: tokens, sessions, auth= URLs, SDP and addresses.

"Enable debug logging" turns on the loggers of the manifest (ours, google_nest_sdm's, aiortc's
and aioice's). google-nest-sdm logs each request and response whole (a viewer's offer and
Google's answer among them); aiortc and aioice log candidates, that is a viewer's public and
private addresses. `SecretFilter` rewrites every record of those loggers before any handler sees
it: secret values, whole SDP bodies (only their media kinds stay), ICE credentials,
fingerprints, candidates and IP addresses.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from typing import Any

REDACTED = "**REDACTED**"
SDP_KEYS = ("answerSdp", "offerSdp", "answer_sdp", "offer_sdp", "sdp")
SECRET_KEYS = (
    "streamExtensionToken",
    "streamToken",
    "mediaSessionId",
    "extension_token",
    "session_id",
    "access_token",
    "refresh_token",
    *SDP_KEYS,
)
_SDP_VALUE = re.compile(
    r"""(?P<key>["']?(?:"""
    + "|".join(SDP_KEYS)
    + r""")["']?\s*[:=]\s*)(?P<quote>["'])(?P<value>(?:\\.|(?!(?P=quote)).)*)(?P=quote)""",
    re.DOTALL,
)
_KEY_VALUE = re.compile(
    r"""(?P<key>["']?(?:"""
    + "|".join(SECRET_KEYS)
    + r""")["']?\s*[:=]\s*)(?P<quote>["']?)(?P<value>[^"',}\s]+)"""
)
_URL_SECRET = re.compile(r"(?P<name>auth|secret)=[^&\s\"']+")
_BEARER = re.compile(r"Bearer\s+[A-Za-z0-9._~+/=-]+")
_SDP_LINE = re.compile(
    r"(?P<name>a=(?:ice-ufrag|ice-pwd|fingerprint|candidate|crypto)|c=IN IP[46]|o=)"
    r"[^\r\n\\]*"
)
_CANDIDATE = re.compile(r"candidate:[^\r\n'\"\\]*")
_ADDRESS = re.compile(r"(?<![\w.:])[0-9a-fA-F]*[.:][0-9a-fA-F.:]*(?![\w.:])")
"""What may be an IPv4 or IPv6 address (checked with `ipaddress` before it is replaced)."""
_MEDIA = re.compile(r"m=(\w+)")
LOGGER_PREFIXES = ("google_nest_sdm", "custom_components.nest_streams", "aiortc", "aioice")


def _sdp_summary(match: re.Match[str]) -> str:
    kinds = " ".join(_MEDIA.findall(match["value"])) or "no media"
    return f"{match['key']}{match['quote']}{REDACTED} SDP ({kinds}){match['quote']}"


def redact_text(text: str) -> str:
    """`text` with every known secret replaced (SDP bodies down to their media kinds, ICE
    credentials, fingerprints, candidates and IP addresses included)."""
    text = _SDP_VALUE.sub(_sdp_summary, text)
    text = _KEY_VALUE.sub(lambda m: f"{m['key']}{m['quote']}{REDACTED}", text)
    text = _URL_SECRET.sub(lambda m: f"{m['name']}={REDACTED}", text)
    text = _BEARER.sub(f"Bearer {REDACTED}", text)
    text = _SDP_LINE.sub(lambda m: f"{m['name']} {REDACTED}", text)
    text = _CANDIDATE.sub(f"candidate:{REDACTED}", text)
    return _ADDRESS.sub(_address, text)


def _address(match: re.Match[str]) -> str:
    try:
        ipaddress.ip_address(match[0])
    except ValueError:
        return match[0]
    return REDACTED


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
