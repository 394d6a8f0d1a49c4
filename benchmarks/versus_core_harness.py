"""One system (HA core's `nest` or `nest_streams`) for a virtual duration, under pytest.

Run by `benchmarks/versus_core.py` in a subprocess (`python -m pytest` on this file) with the
run's parameters in VERSUS_* environment variables; writes one JSON line to VERSUS_OUTPUT.

How each system is driven (identical for both):
- Home Assistant from pytest-homeassistant-custom-component, time frozen and moved by freezer in
  2 s steps, so hours pass in seconds; the emulator's clock is HA's clock.
- A fresh emulator with VERSUS_CAMERAS RTSP cameras, the same quota, stream lifetime, seed and
  per-call fault rate. All SDM calls of the system under test go to it in-process (HA's aiohttp
  session swapped for `InProcessSession`); HA's OAuth token refreshes go to its token endpoint.
- HA core's `nest` is set up from the installed homeassistant package with a config entry as its
  own config flow writes it; its Pub/Sub subscriber is patched out the way HA's nest tests do
  (the streaming pull never starts; the device list comes from the SDM API).
- A dashboard viewer: every 10 s, for every camera, the viewer asks the camera entity for its
  stream (`camera.async_get_stream_source`, what HA's stream component calls when the frontend
  opens or re-opens a stream), so a stream that core dropped is requested again.
- Availability, 429s, calls and peaks are read from the emulator's own metrics.
"""

from __future__ import annotations

import asyncio
from collections.abc import Generator
import json
import os
from pathlib import Path
import time
from unittest.mock import AsyncMock, Mock, patch

from freezegun.api import FrozenDateTimeFactory
from homeassistant.components.application_credentials import (
    ClientCredential,
    async_import_client_credential,
)
from homeassistant.components.camera import async_get_stream_source
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed
from pytest_homeassistant_custom_component.test_util.aiohttp import AiohttpClientMocker

import custom_components.nest_streams  # noqa: F401 - imported so it can be patched
from sdm_emulator import Emulator, EmulatorConfig, FaultConfig, default_devices
from sdm_emulator.ha_bridge import register_token_endpoint
from sdm_emulator.inprocess import InProcessSession

TOKEN_URL = "https://www.googleapis.com/oauth2/v4/token"
PROJECT_ID = "project-id-1"
VIEWER_INTERVAL = 10.0
STEP = 2.0


def _env(name: str, default: str) -> str:
    return os.environ.get(f"VERSUS_{name}", default)


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Load custom_components/ (nest_streams)."""


@pytest.fixture
def emulator() -> Emulator:
    """The emulator for this run."""
    return Emulator(
        EmulatorConfig(
            project_id=PROJECT_ID,
            devices=default_devices(int(_env("CAMERAS", "3")), thermostats=0),
            execute_qpm=int(_env("QPM", "10")),
            faults=FaultConfig.uniform(float(_env("FAULT_RATE", "0"))),
            seed=int(_env("SEED", "1")),
        )
    )


@pytest.fixture(autouse=True)
def bridge(emulator: Emulator, aioclient_mock: AiohttpClientMocker) -> Generator[None]:
    """All SDM calls and token refreshes of both systems go to the emulator."""
    session = InProcessSession(emulator)

    register_token_endpoint(aioclient_mock, emulator, TOKEN_URL)
    with (
        patch("custom_components.nest_streams.async_get_clientsession", return_value=session),
        patch(
            "homeassistant.components.nest.api.aiohttp_client.async_get_clientsession",
            return_value=session,
        ),
        # HA's nest tests replace the Pub/Sub subscriber; here its streaming pull never starts.
        patch("google_nest_sdm.google_nest_subscriber.StreamingManager.start", AsyncMock()),
        patch("google_nest_sdm.google_nest_subscriber.StreamingManager.stop", Mock()),
    ):
        yield


def _entry(system: str, emulator: Emulator) -> MockConfigEntry:
    token = {**emulator.issue_tokens(), "expires_at": time.time() + 3599}
    if system == "core":
        return MockConfigEntry(
            domain="nest",
            unique_id=PROJECT_ID,
            data={
                "sdm": {},
                "auth_implementation": "imported-cred",
                "token": token,
                "project_id": PROJECT_ID,
                "cloud_project_id": "cloud-project",
                "subscription_name": "projects/cloud-project/subscriptions/home-assistant",
            },
        )
    return MockConfigEntry(
        domain="nest_streams",
        unique_id=PROJECT_ID,
        data={"auth_implementation": "imported-cred", "token": token, "project_id": PROJECT_ID},
        options={"qpm": int(_env("QPM", "10"))},
    )


def _append(path: Path, line: str) -> None:
    """Append a line (a benchmark's result, once, at the end of a run)."""
    with path.open("a") as output:
        output.write(line + "\n")


def next_timer(hass: HomeAssistant) -> float | None:
    """Seconds until the loop's next timer (CPython's scheduled heap), if any."""
    now = hass.loop.time()
    pending = [
        handle.when() - now
        for handle in getattr(hass.loop, "_scheduled", [])
        if not handle.cancelled() and handle.when() > now
    ]
    return min(pending) if pending else None


async def test_run(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    emulator: Emulator,
    entity_registry: er.EntityRegistry,
) -> None:
    """Run one system for VERSUS_HOURS of virtual time; write its figures."""
    system = _env("SYSTEM", "nest_streams")
    hours = float(_env("HOURS", "0.1"))
    domain = "nest" if system == "core" else "nest_streams"
    assert await async_setup_component(hass, "application_credentials", {})
    await async_import_client_credential(
        hass, domain, ClientCredential("client-id", "client-secret"), "imported-cred"
    )
    entry = _entry(system, emulator)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    cameras = [
        item.entity_id
        for item in er.async_entries_for_config_entry(entity_registry, entry.entry_id)
        if item.domain == "camera"
    ]
    assert len(cameras) == int(_env("CAMERAS", "3"))
    viewer_errors = 0
    viewers: dict[str, asyncio.Task[str | None]] = {}

    def viewer_done(task: asyncio.Task[str | None]) -> None:
        nonlocal viewer_errors
        if not task.cancelled() and isinstance(task.exception(), HomeAssistantError):
            viewer_errors += 1

    elapsed = 0.0
    next_view = 0.0
    while elapsed < hours * 3600:
        if elapsed >= next_view:
            next_view += VIEWER_INTERVAL
            for entity_id in cameras:
                # One pending request per viewer; a slow answer must not stall the clock, so
                # requests run as tasks and time moves on while they wait.
                if entity_id in viewers and not viewers[entity_id].done():
                    continue
                task = asyncio.create_task(async_get_stream_source(hass, entity_id))
                task.add_done_callback(viewer_done)
                viewers[entity_id] = task
        # Jump to the next due timer (at most STEP, at least 10 ms): timers fire on time, so
        # a 6.06 s pacing stays 6.06 s instead of being rounded up to the step.
        step = min(STEP, next_view - elapsed, next_timer(hass) or STEP)
        step = max(step, 0.01)
        freezer.tick(step)
        async_fire_time_changed(hass)
        # Not async_block_till_done: a request held by a slow answer would wait for time
        # that only this loop can move. A few loop turns let due work run.
        for _ in range(20):
            await asyncio.sleep(0)
        elapsed += step
    for task in viewers.values():
        task.cancel()
    await asyncio.gather(*viewers.values(), return_exceptions=True)
    report = emulator.report()
    availability = report["availability"]
    calls = report["calls"]
    hours_observed = report["elapsed"] / 3600
    result = {
        "system": system,
        "cameras": len(cameras),
        "qpm": int(_env("QPM", "10")),
        "hours": hours,
        "fault_rate": float(_env("FAULT_RATE", "0")),
        "availability": availability["overall"],
        "min_camera_availability": availability["min"],
        "cameras_ever_streaming": len(availability["per_camera"]),
        "quota_rejections_429": report["quota_rejections"],
        "accepted_calls_per_camera_hour": report["accepted_commands"]
        / len(cameras)
        / hours_observed,
        "peak_calls_60s": report["peak_commands_60s"],
        "generations": calls.get("executeCommand:GenerateRtspStream", 0),
        "extensions": calls.get("executeCommand:ExtendRtspStream", 0),
        "viewer_errors": viewer_errors,
    }
    _append(Path(_env("OUTPUT", "versus.jsonl")), json.dumps(result))
    # Keep the clock moving while the entry unloads (a command may still be in flight).
    unload = asyncio.create_task(hass.config_entries.async_unload(entry.entry_id))
    while not unload.done():
        freezer.tick(STEP)
        async_fire_time_changed(hass)
        for _ in range(20):
            await asyncio.sleep(0)
    assert unload.result()
