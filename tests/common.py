"""Helpers shared by the Home Assistant tests: virtual time and entity states."""

from __future__ import annotations

import asyncio
from datetime import timedelta
import logging
from pathlib import Path

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import async_fire_time_changed

CLIENT_ID = "some-client-id"
CLIENT_SECRET = "some-client-secret"
PROJECT_ID = "project-id-1"
# An offer as HA's frontend makes it in Chromium for a Nest camera: a data channel (HA's
# `dataSendChannel`), then receive-only audio and video.
CHROME_OFFER = (Path(__file__).parent / "fixtures" / "chrome_offer.sdp").read_bytes().decode()


async def advance(hass: HomeAssistant, freezer: FrozenDateTimeFactory, seconds: float) -> None:
    """Move time forward in steps of at most 2 s, letting every due timer run.

    The integration's tasks are background tasks, which `async_block_till_done` does not wait
    for: a few extra loop turns let their wake-up chains settle before time moves on.
    """
    while seconds > 0:
        step = min(2.0, seconds)
        freezer.tick(timedelta(seconds=step))
        async_fire_time_changed(hass)
        await hass.async_block_till_done()
        for _ in range(10):
            await asyncio.sleep(0)
        seconds -= step


def state(hass: HomeAssistant, entity_id: str) -> str:
    """The state of `entity_id`, which must exist."""
    current = hass.states.get(entity_id)
    assert current is not None, entity_id
    return current.state


def logged(caplog: pytest.LogCaptureFixture, text: str) -> int:
    """How many records at WARNING or above say `text` (what a user's log shows; HA's debug
    records repeat a failure's message with its traceback)."""
    return sum(
        1
        for record in caplog.records
        if record.levelno >= logging.WARNING and text in record.getMessage()
    )
