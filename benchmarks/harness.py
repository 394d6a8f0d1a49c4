"""Shared pieces of the benchmarks: the core + SDM adapter against an in-process emulator."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
import statistics
from typing import Any, cast

import aiohttp

from custom_components.nest_streams.api import SdmClient, TokenAuth
from custom_components.nest_streams.core.clock import LoopClock
from custom_components.nest_streams.core.models import StreamState
from custom_components.nest_streams.core.scheduler import StreamScheduler
from custom_components.nest_streams.core.settings import Settings
from sdm_emulator import Emulator, EmulatorConfig, FaultConfig, default_devices
from sdm_emulator.inprocess import InProcessSession

EPOCH = 1_800_000_000.0
API = "https://smartdevicemanagement.googleapis.com/v1"
TOKEN_URL = "https://www.googleapis.com/oauth2/v4/token"
OFFER = "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n"


class RefreshingToken:
    """An access token refreshed at the emulator's token endpoint shortly before it expires."""

    def __init__(self, session: InProcessSession, clock: LoopClock, tokens: dict[str, Any]) -> None:
        """Start from issued tokens."""
        self._session = session
        self._clock = clock
        self._refresh = str(tokens["refresh_token"])
        self._access = str(tokens["access_token"])
        self._expires = clock.now() + float(tokens["expires_in"])

    async def __call__(self, refresh: bool = False) -> str:
        """A valid access token (`refresh`: a new one)."""
        if refresh or self._clock.now() > self._expires - 60:
            response = await self._session.post(
                TOKEN_URL, data={"grant_type": "refresh_token", "refresh_token": self._refresh}
            )
            response.raise_for_status()
            body = await response.json()
            self._access = body["access_token"]
            self._expires = self._clock.now() + float(body["expires_in"])
        return self._access


@dataclass(slots=True)
class Run:
    """One simulated run's parts."""

    emulator: Emulator
    scheduler: StreamScheduler
    clock: LoopClock


async def simulate(
    *,
    cameras: int,
    qpm: float,
    hours: float,
    fault_rate: float,
    seed: int,
    webrtc: int = 0,
    battery: int = 0,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Keep `cameras` streams alive for `hours` of loop time; return the emulator's figures."""
    loop = asyncio.get_running_loop()
    clock = LoopClock(EPOCH, loop)
    emulator = Emulator(
        EmulatorConfig(
            devices=default_devices(cameras, webrtc=webrtc, battery=battery),
            execute_qpm=10,
            faults=FaultConfig.uniform(fault_rate),
            seed=seed,
        ),
        clock,
    )
    session = InProcessSession(emulator)
    token = RefreshingToken(session, clock, emulator.issue_tokens())
    client = SdmClient(
        TokenAuth(cast(aiohttp.ClientSession, session), API, token), emulator.project_id
    )
    leads: list[float] = []
    first_running: dict[str, float] = {}

    def observe() -> None:
        for device_id, status in scheduler.statuses().items():
            if status.state is StreamState.RUNNING and device_id not in first_running:
                first_running[device_id] = clock.now() - start

    scheduler = StreamScheduler(
        client,
        clock,
        settings or Settings(qpm=qpm),
        on_change=observe,
        on_auth_failed=lambda: None,
    )
    worker = asyncio.create_task(scheduler.run())
    start = clock.now()
    scheduler.set_cameras(await client.async_list_cameras())
    original_extend = client.extend

    async def extend_and_measure(camera: Any, stream: Any) -> Any:
        leads.append(stream.expires_at - clock.now())
        return await original_extend(camera, stream)

    client.extend = extend_and_measure  # type: ignore[method-assign]
    await asyncio.sleep(hours * 3600)
    end = clock.now()
    report = emulator.report(until=end)
    statuses = scheduler.statuses()
    await scheduler.stop(stop_streams=False)
    worker.cancel()
    await asyncio.gather(worker, return_exceptions=True)
    availability = report["availability"]
    accepted = report["accepted_commands"]
    leads.sort()
    return {
        "cameras": cameras,
        "qpm": qpm,
        "hours": hours,
        "fault_rate": fault_rate,
        "seed": seed,
        "availability": availability["overall"],
        "min_camera_availability": availability["min"],
        "peak_calls_60s": report["peak_commands_60s"],
        "quota_rejections": report["quota_rejections"],
        "calls_per_camera_hour": accepted / cameras / hours if cameras and hours else 0,
        "extension_lead_p50": statistics.median(leads) if leads else None,
        "extension_lead_p1": leads[len(leads) // 100] if leads else None,
        "all_running_after_s": max(first_running.values())
        if len(first_running) == cameras
        else None,
        "not_admitted": len(scheduler.over_capacity),
        "degraded_at_end": sum(1 for s in statuses.values() if s.state is StreamState.DEGRADED),
        "faults": report["faults"],
    }
