"""What keeping streams alive costs Home Assistant per command, under pytest (freezer time).

Run by `benchmarks/ha_cost.py` in a subprocess with its parameters in HACOST_* environment
variables; writes one JSON line to HACOST_OUTPUT. HA comes from
pytest-homeassistant-custom-component; SDM calls go to the in-process emulator (no faults).
After start-up, time moves from due timer to due timer (at most 1 s at a time) for
HACOST_MINUTES virtual minutes; the process CPU time spent in that window (HA's loop: the
queue, the coordinator's pushes, the entities' state writes) is divided by the commands Google
accepted in it. The harness's own cost of a time step, measured before set-up (its cheapest of
three windows after a warm-up), is subtracted, so the figure is an upper bound.
"""

from __future__ import annotations

from collections.abc import Generator
import json
import os
from pathlib import Path
import time

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import Event, HomeAssistant, callback
import pytest
from pytest_homeassistant_custom_component.common import async_fire_time_changed
from pytest_homeassistant_custom_component.test_util.aiohttp import AiohttpClientMocker

from sdm_emulator import Emulator, EmulatorConfig, default_devices

from .ha_entry import add_entry, emulator_behind_ha
from .versus_core_harness import next_timer

PROJECT_ID = "project-id-1"
STEP = 1.0
IDLE_SECONDS = 30.0
IDLE_WINDOWS = 3


def _env(name: str, default: str) -> str:
    return os.environ.get(f"HACOST_{name}", default)


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Load custom_components/ (nest_streams)."""


@pytest.fixture
def emulator() -> Emulator:
    """HACOST_CAMERAS RTSP cameras, the project quota at HACOST_QPM."""
    return Emulator(
        EmulatorConfig(
            project_id=PROJECT_ID,
            devices=default_devices(int(_env("CAMERAS", "45"))),
            execute_qpm=int(float(_env("QPM", "10"))),
        )
    )


@pytest.fixture(autouse=True)
def bridge(emulator: Emulator, aioclient_mock: AiohttpClientMocker) -> Generator[None]:
    """All SDM calls and token refreshes go to the emulator."""
    with emulator_behind_ha(emulator, aioclient_mock):
        yield


async def _steps(hass: HomeAssistant, freezer: FrozenDateTimeFactory, seconds: float) -> int:
    """Move `seconds` of virtual time, to each due timer (at most STEP apart); the steps."""
    steps, elapsed = 0, 0.0
    while elapsed < seconds:
        step = max(0.01, min(STEP, next_timer(hass) or STEP, seconds - elapsed))
        freezer.tick(step)
        async_fire_time_changed(hass)
        await hass.async_block_till_done()
        elapsed += step
        steps += 1
    return steps


async def _idle_step_cost(hass: HomeAssistant, freezer: FrozenDateTimeFactory) -> float:
    """The harness's own CPU seconds per time step, before anything of ours runs.

    The first steps pay for warming up (imports, caches), so they are not measured; of
    IDLE_WINDOWS windows the cheapest counts. A low estimate of the harness's cost makes ours
    an upper bound rather than noise that can fall below zero.
    """
    await _steps(hass, freezer, IDLE_SECONDS)
    costs = []
    for _ in range(IDLE_WINDOWS):
        started = time.process_time()
        steps = await _steps(hass, freezer, IDLE_SECONDS)
        costs.append((time.process_time() - started) / steps)
    return min(costs)


async def test_cost(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, emulator: Emulator
) -> None:
    """Set up, let every camera start, then measure a window of steady keep-alive."""
    cameras, qpm = int(_env("CAMERAS", "45")), float(_env("QPM", "10"))
    minutes = float(_env("MINUTES", "10"))
    entry = await add_entry(hass, emulator, {"qpm": qpm})
    step_cost = await _idle_step_cost(hass, freezer)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    entities = len(hass.states.async_all())
    writes = 0

    @callback
    def count(_event: Event) -> None:
        nonlocal writes
        writes += 1

    await _steps(hass, freezer, 300 + 60)  # start-up, then one minute
    commands_before = emulator.report()["accepted_commands"]
    unsubscribe = hass.bus.async_listen("state_changed", count)
    started = time.process_time()
    steps = await _steps(hass, freezer, minutes * 60)
    cpu = time.process_time() - started - step_cost * steps
    unsubscribe()
    commands = emulator.report()["accepted_commands"] - commands_before
    statuses = entry.runtime_data.coordinator.scheduler.statuses()
    result = {
        "cameras": cameras,
        "qpm": qpm,
        "entities": entities,
        "running": sum(1 for s in statuses.values() if s.state.value == "running"),
        "window_minutes": minutes,
        "commands": commands,
        "cpu_ms_per_command": round(1000 * cpu / commands, 3) if commands else None,
        "state_changes_per_command": round(writes / commands, 2) if commands else None,
        "step_cost_ms": round(1000 * step_cost, 3),
    }
    output = Path(_env("OUTPUT", "ha_cost.jsonl"))
    await hass.async_add_executor_job(output.write_text, json.dumps(result) + "\n")
    assert await hass.config_entries.async_unload(entry.entry_id)
