"""manifest.json and hacs.json against HA's (hassfest) and HACS's rules, checked by hand."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
import struct
import sys
from typing import Any

from awesomeversion import AwesomeVersion
from homeassistant.const import __version__ as HA_VERSION
import pytest

from custom_components.nest_streams.const import DOMAIN

ROOT = Path(__file__).parent.parent
INTEGRATION = ROOT / "custom_components" / DOMAIN


def _manifest() -> dict[str, object]:
    return json.loads((INTEGRATION / "manifest.json").read_text())  # type: ignore[no-any-return]


def test_manifest_keys_and_order() -> None:
    """Domain, name, then the other keys in alphabetical order (hassfest's rule)."""
    manifest = _manifest()
    keys = list(manifest)
    assert keys[:2] == ["domain", "name"]
    assert keys[2:] == sorted(keys[2:])
    assert manifest["domain"] == DOMAIN == INTEGRATION.name
    assert manifest["name"] == "Nest Streams"
    assert manifest["config_flow"] is True
    assert manifest["dependencies"] == ["application_credentials", "http", "web_rtc"]
    assert manifest["integration_type"] == "hub"
    assert manifest["iot_class"] == "cloud_polling"
    for key in ("documentation", "issue_tracker"):
        assert str(manifest[key]).startswith("https://")
    assert manifest["codeowners"]


def test_manifest_version_and_requirements() -> None:
    """Custom integrations need a valid version; requirements must be pip specifiers."""
    manifest = _manifest()
    version = AwesomeVersion(str(manifest["version"]))
    assert version.valid
    assert version.strategy in ("SemVer", "SimpleVer", "CalVer", "PEP 440")
    requirements = manifest["requirements"]
    assert isinstance(requirements, list)
    assert any(str(req).startswith("google-nest-sdm") for req in requirements)


def test_hacs_json() -> None:
    """hacs.json names the integration and a minimum HA version no newer than the tested one."""
    hacs = json.loads((ROOT / "hacs.json").read_text())
    assert hacs["name"] == "Nest Streams"
    assert AwesomeVersion(hacs["homeassistant"]) <= AwesomeVersion(HA_VERSION)
    # Its keys are checked by scripts/validate (tests/test_validate.py).
    for required in ("README.md", "info.md", "LICENSE"):
        assert (ROOT / required).is_file()
    assert "Apache License" in (ROOT / "LICENSE").read_text()
    # One minimum-HA statement everywhere: hacs.json's version is the one the docs name.
    minimum = hacs["homeassistant"]
    for doc in ("README.md", "info.md"):
        text = (ROOT / doc).read_text()
        assert f"Home Assistant {minimum} or newer" in text, doc
        assert text.count("or newer") == 1, doc


def test_brand_icon_is_square_png() -> None:
    """brand/icon.png is a PNG of 256x256 (HA brands' rule for icon.png)."""
    data = (INTEGRATION / "brand" / "icon.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (256, 256)


def test_translations_are_valid_json() -> None:
    """translations/en.json parses and holds no strings.json key references."""
    text = (INTEGRATION / "translations" / "en.json").read_text()
    json.loads(text)
    assert "[%key:" not in text


GOOGLE = (
    "https://nestservices.google.com/partnerconnections/p/auth",
    "https://www.googleapis.com/oauth2/v4/token",
    "https://smartdevicemanagement.googleapis.com/v1",
)


def _urls(const: Any) -> tuple[str, str, str]:
    return (const.OAUTH2_AUTHORIZE.format(project_id="p"), const.OAUTH2_TOKEN, const.API_URL)


def test_an_install_cannot_be_redirected_by_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Google's hosts, whatever the environment says; shipped code reads no environment but
    the CA bundle HA's own HTTP client trusts (`REQUESTS_CA_BUNDLE`, as `homeassistant.util.ssl`
    reads it), which verifies the cameras' rtsps servers."""
    from custom_components.nest_streams import const

    for name in ("NEST_STREAMS_EMULATOR_URL", "NEST_STREAMS_API_URL", "SDM_API_URL"):
        monkeypatch.setenv(name, "http://127.0.0.1:8765/")
    assert _urls(importlib.reload(const)) == GOOGLE
    reads = []
    for path in INTEGRATION.rglob("*.py"):
        text = path.read_text()
        assert "getenv" not in text, path
        reads += [(path.name, line.strip()) for line in text.splitlines() if "os.environ" in line]
    assert reads == [("live.py", 'return os.environ.get("REQUESTS_CA_BUNDLE") or certifi.where()')]


def test_the_dev_launcher_redirects_to_the_emulator() -> None:
    """scripts/develop's launcher (not shipped) points the three hosts at the emulator."""
    import dev_hass

    from custom_components.nest_streams import const

    # Every module of ours that holds a host, restored afterwards (a reload of `const` alone
    # left `api` and `application_credentials` pointing at the emulator for later tests).
    saved = {
        (module, name): getattr(module, name)
        for key, module in list(sys.modules.items())
        if key.startswith("custom_components.nest_streams")
        for name in ("OAUTH2_AUTHORIZE", "OAUTH2_TOKEN", "API_URL")
        if hasattr(module, name)
    }
    try:
        dev_hass.redirect("http://127.0.0.1:8765/")
        assert _urls(const) == (
            "http://127.0.0.1:8765/partnerconnections/p/auth",
            "http://127.0.0.1:8765/oauth2/v4/token",
            "http://127.0.0.1:8765/v1",
        )
    finally:
        for (module, name), value in saved.items():
            setattr(module, name, value)
    assert _urls(const) == GOOGLE
