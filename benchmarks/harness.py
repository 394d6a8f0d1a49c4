"""Shared pieces of the benchmarks: the core + SDM adapter against an in-process emulator."""

from __future__ import annotations

import asyncio
from dataclasses import replace
import statistics
from typing import Any, cast

import aiohttp

from custom_components.nest_streams.api import SdmClient, TokenAuth
from custom_components.nest_streams.core.clock import LoopClock
from custom_components.nest_streams.core.errors import TransientError
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


class ClientHeld:
    """When the scheduler itself holds a usable stream per camera: what the entity shows.

    A camera counts while its state is running and its stream has not expired; fed with every
    change of one camera (the scheduler's `on_change`).
    """

    def __init__(self, clock: LoopClock, scheduler: StreamScheduler | None = None) -> None:
        """Track cameras of `scheduler` (set later with `attach` when built afterwards)."""
        self._clock = clock
        self._scheduler = scheduler
        self._open: dict[str, tuple[float, float]] = {}
        """Camera -> (held since, stream expiry) while held."""
        self.spans: dict[str, list[tuple[float, float]]] = {}

    def attach(self, scheduler: StreamScheduler) -> None:
        """The scheduler whose cameras are tracked."""
        self._scheduler = scheduler

    def changed(self, device_id: str | None) -> None:
        """One camera's stream changed (None: the queue; nothing to do)."""
        if device_id is None or self._scheduler is None:
            return
        now = self._clock.now()
        status = self._scheduler.stream(device_id).status
        held = (
            status.state is StreamState.RUNNING
            and status.expires_at is not None
            and status.expires_at > now
        )
        current = self._open.get(device_id)
        if current is not None and (not held or current[1] <= now):
            # Ended now, or earlier at its expiry while nothing changed.
            self.spans.setdefault(device_id, []).append((current[0], min(now, current[1])))
            del self._open[device_id]
            current = None
        if held and status.expires_at is not None:
            self._open[device_id] = (current[0] if current else now, status.expires_at)

    def _held(self, device_id: str, until: float) -> list[tuple[float, float]]:
        """The camera's held spans up to `until`, in order (the open one included)."""
        spans = list(self.spans.get(device_id, []))
        if (current := self._open.get(device_id)) is not None:
            spans.append((current[0], min(until, current[1])))
        return spans

    def availability(self, devices: list[str], since: float, until: float) -> dict[str, float]:
        """Per camera, the share of [since, until] it was held (0 for a camera never held)."""
        return {
            device_id: sum(
                max(0.0, min(b, until) - max(a, since)) for a, b in self._held(device_id, until)
            )
            / (until - since)
            for device_id in devices
        }

    def longest_gap(self, device_id: str, since: float, until: float) -> float:
        """The longest time in [since, until] the camera was not held."""
        spans = sorted(self._held(device_id, until))
        gap, edge = 0.0, since
        for start, end in spans:
            if end <= since:
                continue
            gap = max(gap, min(start, until) - edge)
            edge = max(edge, end)
        return max(gap, until - edge)


async def simulate(
    *,
    cameras: int,
    qpm: float,
    hours: float,
    fault_rate: float,
    seed: int,
    google_qpm: float | None = None,
    device_quota_rate: float = 0.0,
    webrtc: int = 0,
    battery: int = 0,
    settings: Settings | None = None,
    foreign_qpm: float = 0.0,
    foreign_minutes: float = 60.0,
    device_qph: int | None = None,
    quota_window: str = "fixed",
) -> dict[str, Any]:
    """Keep `cameras` streams alive for `hours` of loop time; return the figures.

    Availability counts every camera from the end of a start-up allowance (one stream
    lifetime) to the end, a camera never streamed as 0; `from_start_*` counts from t=0.
    `google_qpm` is the emulator's project quota (default: `qpm`, rounded down). With
    `foreign_qpm` another app spends the project's quota for the first `foreign_minutes`
    (figures under `shared`).
    """
    loop = asyncio.get_running_loop()
    clock = LoopClock(EPOCH, loop)
    settings = settings or Settings(qpm=qpm)
    emulator = Emulator(
        EmulatorConfig(
            devices=default_devices(cameras, webrtc=webrtc, battery=battery),
            execute_qpm=max(1, int(qpm if google_qpm is None else google_qpm)),
            faults=replace(FaultConfig.uniform(fault_rate), rate_device_quota=device_quota_rate),
            seed=seed,
            foreign_qpm=foreign_qpm,
            foreign_until=foreign_minutes * 60,
            device_qph=device_qph,
            quota_window=quota_window,
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
    held = ClientHeld(clock)
    shares: list[tuple[float, float, float, tuple[str, ...]]] = []
    """(time, rate, admission rate, cameras not admitted) at each change of them."""

    def observe(device_id: str | None) -> None:
        held.changed(device_id)
        share = scheduler.quota
        sample = (share.rate, share.admission, scheduler.over_capacity)
        if not shares or shares[-1][1:] != sample:
            shares.append((clock.now() - start, *sample))
        if (
            device_id is not None
            and device_id not in first_running
            and scheduler.stream(device_id).status.state is StreamState.RUNNING
        ):
            first_running[device_id] = clock.now() - start

    scheduler = StreamScheduler(
        client, clock, settings, on_change=observe, on_auth_failed=lambda: None
    )
    held.attach(scheduler)
    worker = asyncio.create_task(scheduler.run())
    start = clock.now()
    while True:  # the first device list may fail like any call (faults): read it again
        try:
            listed = await client.async_list_cameras()
            break
        except TransientError:
            await asyncio.sleep(60)
    scheduler.set_cameras(listed)
    original_extend = client.extend

    async def extend_and_measure(camera: Any, stream: Any) -> Any:
        leads.append(stream.expires_at - clock.now())
        return await original_extend(camera, stream)

    client.extend = extend_and_measure  # type: ignore[method-assign]
    await asyncio.sleep(hours * 3600)
    end = clock.now()
    steady = min(end, start + settings.stream_lifetime)
    report = emulator.report(until=end, since=steady)
    from_start = emulator.report(until=end, since=start)["availability"]
    statuses = scheduler.statuses()
    ids = [camera.device_id for camera in listed]
    client_held = held.availability(ids, steady, end)
    worst = min(client_held, key=client_held.__getitem__) if client_held else None
    shared = (
        _shared_figures(emulator, held, shares, ids, start, end, settings.qpm)
        if foreign_qpm
        else None
    )
    await scheduler.stop(stop_streams=False)
    worker.cancel()
    await asyncio.gather(worker, return_exceptions=True)
    availability = report["availability"]
    accepted = report["accepted_commands"]
    leads.sort()
    return {
        "cameras": cameras,
        "qpm": qpm,
        "google_qpm": emulator.config.execute_qpm,
        "hours": hours,
        "fault_rate": fault_rate,
        "device_quota_rate": device_quota_rate,
        "device_qph": device_qph,
        "quota_window": quota_window,
        "seed": seed,
        "availability": availability["overall"],
        "min_camera_availability": availability["min"],
        "client_availability": sum(client_held.values()) / len(client_held)
        if client_held
        else None,
        "client_min_camera_availability": client_held[worst] if worst else None,
        "client_longest_outage_s": held.longest_gap(worst, steady, end) if worst else None,
        "from_start_min_camera_availability": from_start["min"],
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
        "orphans": report["double_streams"]["orphans"],
        "orphans_per_day": round(report["double_streams"]["orphans"] / hours * 24, 1)
        if hours
        else None,
        # Of those, the ones whose token reached us only in an unreadable answer.
        "unreadable_orphans_per_day": round(
            report["double_streams"]["unreadable_orphans"] / hours * 24, 1
        )
        if hours
        else None,
        "other_orphan_overlap_s_median": report["double_streams"]["other_orphan_overlap_s_median"],
        "other_orphan_overlap_s_max": report["double_streams"]["other_orphan_overlap_s_max"],
        "double_stream_share": report["double_streams"]["double_seconds"]
        / (cameras * (end - steady))
        if cameras and end > steady
        else 0.0,
        "late_answers": scheduler.stats().late_answers,
        "faults": report["faults"],
        "shared": shared,
    }


SETTLE = 600.0
"""Seconds the shared-quota figures leave out at the start (the first 10 minutes)."""


def _shared_figures(
    emulator: Emulator,
    held: ClientHeld,
    shares: list[tuple[float, float, float, tuple[str, ...]]],
    ids: list[str],
    start: float,
    end: float,
    qpm: float,
) -> dict[str, Any]:
    """What another app's use of the quota cost: 429s, admission, the admitted cameras.

    The cameras admitted throughout are those admitted from the first 10 minutes on until the
    other app stopped; their availability counts over that time. After it stopped and every
    camera was admitted again, `after_min_availability` counts every camera from 300 s later
    (their start-up) to the end.
    """
    until = emulator.config.foreign_until
    refused = emulator.metrics.refused_commands
    during = until - SETTLE
    after = end - start - until

    def rate_at(moment: float) -> tuple[float, float, tuple[str, ...]]:
        current: tuple[float, float, tuple[str, ...]] = (qpm, qpm, ())
        for at, rate, admission, over in shares:
            if at > moment:
                break
            current = (rate, admission, over)
        return current

    dropped = {
        device_id for at, _, _, over in shares if SETTLE <= at < until for device_id in over
    } | set(rate_at(SETTLE)[2])
    kept = [device_id for device_id in ids if device_id not in dropped]
    kept_held = held.availability(kept, start + SETTLE, start + until)

    def back_to_full(index: int) -> float | None:
        """Seconds after the other app stopped until rate (1) or admission (2) was full."""
        last_short = max(
            (at for at, rate, admission, _ in shares if (rate, admission)[index - 1] < qpm),
            default=None,
        )
        if last_short is None or last_short < until:
            return None if last_short is None else 0.0
        later = [sample[0] for sample in shares if sample[0] > last_short]
        return later[0] - until if later else None

    full_admission = back_to_full(2)
    settled = None if full_admission is None else start + until + full_admission + 300
    after_held = (
        held.availability(ids, settled, end) if settled is not None and settled < end else {}
    )
    return {
        "foreign_qpm": emulator.config.foreign_qpm,
        "foreign_minutes": until / 60,
        "foreign_calls": emulator.foreign.calls,
        "foreign_refused": emulator.foreign.refused,
        "our_429s_first_10_min": sum(1 for t in refused if t < SETTLE),
        "our_429s_per_hour_during": round(
            sum(1 for t in refused if SETTLE <= t < until) / during * 3600, 1
        )
        if during > 0
        else None,
        "our_429s_per_hour_after": round(sum(1 for t in refused if t >= until) / after * 3600, 1)
        if after > 0
        else None,
        "lowest_rate": min((rate for _, rate, _, _ in shares), default=qpm),
        "rate_at_stop": rate_at(until)[0],
        "admitted_at_stop": len(ids) - len(rate_at(until)[2]),
        "fewest_admitted": len(ids) - max((len(over) for *_, over in shares), default=0),
        "admitted_throughout": len(kept),
        "admitted_throughout_min_availability": min(kept_held.values()) if kept else None,
        "admitted_throughout_longest_outage_s": max(
            (held.longest_gap(d, start + SETTLE, start + until) for d in kept), default=None
        ),
        "full_rate_after_s": back_to_full(1),
        "full_admission_after_s": full_admission,
        "after_min_availability": min(after_held.values()) if after_held else None,
        "admitted_at_end": len(ids) - len(shares[-1][3]) if shares else len(ids),
    }
