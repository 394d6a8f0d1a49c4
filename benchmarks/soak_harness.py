"""A long soak of nest_streams in Home Assistant with every fault mixed in, under pytest.

Run by `benchmarks/soak.py` in a subprocess with its parameters in SOAK_* environment variables;
writes one JSON line to SOAK_OUTPUT. HA comes from pytest-homeassistant-custom-component, time is
frozen and moved by freezer to the next due timer (at most 2 s), so a day passes in minutes; all
SDM calls and token refreshes go to the in-process emulator.

The fault programme, each repeated over the run (times in virtual hours from the start):
- per-call faults at SOAK_FAULT_RATE (500, 503, slow answers past the 10 s timeout, malformed
  answers, connections lost before the call reached Google), from the emulator's seeded
  injector;
- a 30 s storm of 429s (every command refused, e.g. another app bursting) every 8 h;
- an empty device list (200 `{}`) every 3 h and an HTML 500 on the device list every 4 h, read
  at the next 15-minute re-read;
- every access token refused (401) while the refresh token stays good, every 6 h;
- one camera answering 404 for 20 s every 7 h (its stream vanished at Google);
- an HA restart (unload, then set-up from the saved state) at 40 % of the run and a reload
  (what an options change does) at 70 %.
Wall-clock jumps are not in the programme: freezer moves HA's monotonic and wall clocks together
(the queue's monotonic pacing under a wall-clock jump is tested in tests/core/test_queue.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Generator
import json
import logging
import os
from pathlib import Path
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import SOURCE_REAUTH
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed
from pytest_homeassistant_custom_component.test_util.aiohttp import AiohttpClientMocker

from sdm_emulator import Emulator, EmulatorConfig, FaultConfig, ScriptedFault, default_devices
from sdm_emulator.faults import Fault

from .ha_entry import add_entry, emulator_behind_ha
from .versus_core_harness import next_timer

PROJECT_ID = "project-id-1"
STEP = 2.0
HOUR = 3600.0
STARTUP = 300.0
"""Start-up allowance (one stream lifetime); start-up is reported on its own."""
NOT_FOUND = "rtsp-02"


def _env(name: str, default: str) -> str:
    return os.environ.get(f"SOAK_{name}", default)


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Load custom_components/ (nest_streams)."""


@pytest.fixture
def emulator() -> Emulator:
    """The emulator: SOAK_CAMERAS cameras, some of them WebRTC (wired and battery)."""
    cameras = int(_env("CAMERAS", "20"))
    webrtc, battery = max(0, cameras // 5), max(0, cameras // 10)
    return Emulator(
        EmulatorConfig(
            project_id=PROJECT_ID,
            devices=default_devices(cameras - webrtc - battery, webrtc=webrtc, battery=battery),
            faults=_fault_mix(float(_env("FAULT_RATE", "0.01"))),
            seed=int(_env("SEED", "1")),
        )
    )


def _fault_mix(rate: float) -> FaultConfig:
    """`rate` spread evenly over 500, 503, slow, malformed answers and lost connections."""
    share = rate / 5
    return FaultConfig(
        rate_500=share, rate_503=share, rate_slow=share, rate_malformed=share, rate_lost=share
    )


@pytest.fixture(autouse=True)
def bridge(emulator: Emulator, aioclient_mock: AiohttpClientMocker) -> Generator[None]:
    """All SDM calls and token refreshes go to the emulator."""
    with emulator_behind_ha(emulator, aioclient_mock):
        yield


FAILED_UPDATE = "Error fetching nest_streams data"
"""How HA's DataUpdateCoordinator logs a failed device-list read (handled: once per outage,
the entities stay, it is retried): counted apart from unhandled exceptions."""


class _Errors(logging.Handler):
    """Records at ERROR and above (unhandled exceptions land there), and apart from them the
    device-list reads that failed, as HA's coordinator logs them."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []
        self.failed_updates = 0

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith(FAILED_UPDATE):
            self.failed_updates += 1
        else:
            self.messages.append(f"{record.name}: {message}"[:300])


def _programme(emulator: Emulator, at: float) -> None:
    """Start the faults due at `at` seconds (called once per step; each fires once)."""
    faults = emulator.config.faults
    if _due(at, 8 * HOUR, HOUR):
        start = emulator.elapsed()
        faults.scripted.append(ScriptedFault(Fault.QUOTA, start, start + 30))
    if _due(at, 3 * HOUR, 0.5 * HOUR):
        faults.empty_device_lists += 1
    if _due(at, 4 * HOUR, 1.5 * HOUR):
        faults.failed_device_lists += 1
    if _due(at, 6 * HOUR, 2 * HOUR):
        emulator.expire_access_tokens()
    if _due(at, 7 * HOUR, 2.5 * HOUR):
        start = emulator.elapsed()
        faults.scripted.append(ScriptedFault(Fault.NOT_FOUND, start, start + 20, NOT_FOUND))


_fired: set[tuple[float, int]] = set()


def _outside(spans: list[list[float]], since: float) -> float:
    """Seconds of `spans` after `since`."""
    return sum(max(0.0, end - max(start, since)) for start, end in spans)


def _due(at: float, period: float, offset: float) -> bool:
    """True once each time `at` passes offset + k * period."""
    if at < offset:
        return False
    k = int((at - offset) // period)
    if (period, k) in _fired:
        return False
    _fired.add((period, k))
    return True


async def _restart(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """What an HA restart does to the entry: unload (streams saved), set up again."""
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.config_entries.async_setup(entry.entry_id)


async def _reload(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """What an options change does."""
    await hass.config_entries.async_reload(entry.entry_id)


async def test_soak(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    emulator: Emulator,
    entity_registry: er.EntityRegistry,
) -> None:
    """Run SOAK_HOURS of virtual time with the fault programme; write the figures."""
    hours = float(_env("HOURS", "24"))
    errors = _Errors()
    logging.getLogger().addHandler(errors)
    entry = await add_entry(hass, emulator)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    entities = {
        e.entity_id for e in er.async_entries_for_config_entry(entity_registry, entry.entry_id)
    }
    cameras = sorted(e for e in entities if e.startswith("camera."))
    # The cameras kept alive: RTSP ones (WebRTC cameras are on demand, kept only while watched).
    running = sorted(
        e
        for e in entities
        if e.endswith("_stream_state") and (s := hass.states.get(e)) and s.state != "on_demand"
    )
    assert running, "no camera is kept alive"
    unavailable_s = 0.0
    not_running_s: dict[str, float] = dict.fromkeys(running, 0.0)
    outages: dict[str, list[list[float]]] = {entity_id: [] for entity_id in running}
    restarts = {"restart": 0.4 * hours * HOUR, "reload": 0.7 * hours * HOUR}
    operations: list[asyncio.Task[None]] = []
    elapsed = 0.0
    while elapsed < hours * HOUR:
        _programme(emulator, elapsed)
        for what, at in list(restarts.items()):
            if elapsed >= at:
                del restarts[what]
                # Run as a task while time keeps moving: a set-up may wait on time (a slow
                # answer, HA's retry of a set-up that met a device-list fault).
                operations.append(
                    asyncio.create_task(
                        _restart(hass, entry) if what == "restart" else _reload(hass, entry)
                    )
                )
        step = max(0.01, min(STEP, next_timer(hass) or STEP))
        freezer.tick(step)
        async_fire_time_changed(hass)
        for _ in range(20):
            await asyncio.sleep(0)
        elapsed += step
        for entity_id in cameras:
            state = hass.states.get(entity_id)
            if state is None or state.state == "unavailable":
                unavailable_s += step
        for entity_id in running:
            state = hass.states.get(entity_id)
            if state is None or state.state != "running":
                not_running_s[entity_id] += step
                spans = outages[entity_id]
                if spans and spans[-1][1] >= elapsed - step - 0.001:
                    spans[-1][1] = elapsed
                else:
                    spans.append([elapsed - step, elapsed])
    assert all(operation.done() for operation in operations)
    for operation in operations:
        operation.result()
    report = emulator.report()
    coordinator = entry.runtime_data.coordinator
    held = len(coordinator.scheduler.handles())
    after = {
        e.entity_id for e in er.async_entries_for_config_entry(entity_registry, entry.entry_id)
    }
    reauths = [
        flow
        for flow in hass.config_entries.flow.async_progress()
        if flow["context"]["source"] == SOURCE_REAUTH
    ]
    duration = hours * HOUR
    # Necessary generations: one per camera, every one of a battery camera (it cannot extend),
    # and one after each 404 window of NOT_FOUND (its stream is gone at Google).
    per_device: dict[str, int] = {}
    for record in emulator.streams.values():
        device = record.device_id.rsplit("/", 1)[-1]
        per_device[device] = per_device.get(device, 0) + 1
    windows = len([f for f in emulator.config.faults.scripted if f.device == NOT_FOUND])
    generations = sum(per_device.values())
    beyond = sum(
        count - 1 - (windows if device == NOT_FOUND else 0)
        for device, count in per_device.items()
        if "battery" not in device
    )
    result: dict[str, Any] = {
        "cameras": len(cameras),
        "hours": hours,
        "fault_rate": float(_env("FAULT_RATE", "0.01")),
        "seed": int(_env("SEED", "1")),
        "unhandled_exceptions": len(errors.messages),
        "errors": errors.messages[:10],
        "failed_device_list_reads_logged": errors.failed_updates,
        "entities_lost": len(entities - after),
        "reauth_flows": len(reauths),
        "generations": generations,
        "generations_beyond_necessary": beyond,
        "camera_entity_unavailable_s": round(unavailable_s, 1),
        "worst_camera_not_running_s": round(max(not_running_s.values()), 1),
        "worst_camera": (worst := max(not_running_s, key=not_running_s.__getitem__)),
        "worst_camera_outages_s": [[round(a), round(b)] for a, b in outages[worst][:20]],
        "worst_camera_client_availability_from_start": round(
            1 - max(not_running_s.values()) / duration, 6
        ),
        # As the capacity benchmark counts: after a start-up allowance of one stream lifetime
        # (start-up itself is `startup_s`: the last camera's first running moment).
        "startup_s": round(
            max(spans[0][1] if spans and spans[0][0] == 0 else 0 for spans in outages.values())
        ),
        "worst_camera_client_availability": round(
            1 - max(_outside(spans, STARTUP) for spans in outages.values()) / (duration - STARTUP),
            6,
        ),
        "worst_camera_availability": report["availability"]["min"],
        "availability": report["availability"]["overall"],
        "quota_rejections_429": report["quota_rejections"],
        "orphan_streams_at_google": max(0, report["live_streams"] - held),
        # Over the whole run: streams replaced while they lived and then left to expire, and
        # the time cameras held two streams or more at Google.
        "orphan_streams_during_run": report["double_streams"]["orphans"],
        "double_stream_seconds": report["double_streams"]["double_seconds"],
        "late_answers_used": entry.runtime_data.coordinator.scheduler.stats().late_answers,
        "faults": report["faults"],
    }
    output = Path(_env("OUTPUT", "soak.jsonl"))
    await hass.async_add_executor_job(output.write_text, json.dumps(result) + "\n")
    logging.getLogger().removeHandler(errors)
    assert await hass.config_entries.async_unload(entry.entry_id)
