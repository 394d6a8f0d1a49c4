"""The restream URL's secrets and address, without media."""

from __future__ import annotations

from typing import Any

from homeassistant.core import HomeAssistant

from custom_components.nest_streams.restream import RestreamSecrets, restream_url

DEVICE = "enterprises/project-id-1/devices/rtsp-01"


async def test_secrets_are_made_once_kept_and_rotated(
    hass: HomeAssistant, hass_storage: dict[str, Any]
) -> None:
    """A secret is made on first use and saved; a rotation replaces it; an unreadable file
    gives no secret (every request refused) rather than an error."""
    secrets = await RestreamSecrets.async_load(hass, "entry")
    assert not secrets.matches(DEVICE, "")
    first = await secrets.async_ensure(DEVICE)
    assert len(first) >= 40
    assert await secrets.async_ensure(DEVICE) == first
    assert secrets.matches(DEVICE, first)
    assert not secrets.matches(DEVICE, first[:-1])
    assert hass_storage["nest_streams.entry.restream"]["data"] == {"secrets": {DEVICE: first}}
    again = await RestreamSecrets.async_load(hass, "entry")
    assert again.matches(DEVICE, first)
    second = await again.async_rotate(DEVICE)
    assert second != first
    assert not again.matches(DEVICE, first)

    hass_storage["nest_streams.broken.restream"] = {"version": 1, "data": {"secrets": [first]}}
    broken = await RestreamSecrets.async_load(hass, "broken")
    assert not broken.matches(DEVICE, first)


async def test_the_url_uses_home_assistants_own_address(hass: HomeAssistant) -> None:
    """The internal address when HA knows one, else only the path (HA knows none)."""
    hass.config.internal_url = "http://ha.lan:8123"
    assert restream_url(hass, DEVICE, "s") == (
        "http://ha.lan:8123/api/nest_streams/restream/rtsp-01?secret=s"
    )
    hass.config.internal_url = None
    hass.config.external_url = None
    hass.config.api = None
    assert restream_url(hass, DEVICE, "s") == "/api/nest_streams/restream/rtsp-01?secret=s"
