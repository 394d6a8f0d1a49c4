"""Helpers shared by the core's tests: a scripted client and virtual time."""

from __future__ import annotations

import asyncio
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Callable, Coroutine
import contextlib
from dataclasses import dataclass
from typing import Any

from custom_components.nest_streams.core.clock import LoopClock
from custom_components.nest_streams.core.models import CameraInfo, StreamHandle, StreamProtocol
from custom_components.nest_streams.core.scheduler import StreamScheduler
from custom_components.nest_streams.core.settings import Settings
from sdm_emulator.virtual_time import run_virtual

EPOCH = 1_800_000_000.0
LIFETIME = 300.0


def rtsp(name: str) -> CameraInfo:
    """An RTSP camera."""
    return CameraInfo(device_id=f"enterprises/p/devices/{name}", name=name)


def webrtc(name: str) -> CameraInfo:
    """A WebRTC-only camera."""
    return CameraInfo(
        device_id=f"enterprises/p/devices/{name}",
        name=name,
        protocols=(StreamProtocol.WEB_RTC,),
    )


@dataclass(frozen=True, slots=True)
class Call:
    """One call the fake client saw."""

    at: float
    op: str
    device: str


class FakeClient:
    """A `StreamClient` whose answers the test scripts per device and operation.

    An outcome is an exception to raise, a number of seconds to take, None (succeed now), or
    (seconds, outcome): that outcome after that many seconds.
    """

    def __init__(self, clock: LoopClock) -> None:
        self.clock = clock
        self.calls: list[Call] = []
        self.offers: list[tuple[str, str | None]] = []
        """(device, offer) of every generation."""
        self.outcomes: defaultdict[tuple[str, str], deque[Any]] = defaultdict(deque)
        self.stopped: list[StreamHandle] = []
        """The streams stopped, in order."""
        self._serial = 0

    def script(self, device: str, op: str, *outcomes: Any) -> None:
        self.outcomes[(device, op)].extend(outcomes)

    async def _run(self, op: str, camera: CameraInfo) -> None:
        name = camera.device_id.rsplit("/", 1)[-1]
        self.calls.append(Call(self.clock.now() - EPOCH, op, name))
        queue = self.outcomes.get((name, op))
        outcome = queue.popleft() if queue else None
        if isinstance(outcome, tuple):  # (seconds, outcome): the answer takes that long
            seconds, outcome = outcome
            await asyncio.sleep(seconds)
        if isinstance(outcome, BaseException):
            raise outcome
        if isinstance(outcome, (int, float)):
            await asyncio.sleep(outcome)

    def _handle(self, camera: CameraInfo, session: str | None = None) -> StreamHandle:
        self._serial += 1
        return StreamHandle(
            protocol=camera.protocol,
            expires_at=self.clock.now() + LIFETIME,
            url=f"rtsps://host/{camera.name}?auth=t{self._serial}"
            if camera.protocol is StreamProtocol.RTSP
            else None,
            extension_token=f"e{self._serial}",
            session_id=session or f"s{self._serial}",
        )

    async def generate(self, camera: CameraInfo, offer_sdp: str | None = None) -> StreamHandle:
        self.offers.append((camera.name, offer_sdp))
        await self._run("generate", camera)
        return self._handle(camera)

    async def extend(self, camera: CameraInfo, stream: StreamHandle) -> StreamHandle:
        await self._run("extend", camera)
        return self._handle(camera, stream.session_id)

    async def stop(self, camera: CameraInfo, stream: StreamHandle) -> None:
        self.stopped.append(stream)
        await self._run("stop", camera)

    def ops(self, device: str | None = None) -> list[tuple[float, str]]:
        return [(round(c.at, 2), c.op) for c in self.calls if device in (None, c.device)]


MONOTONIC_START = 86_400.0
"""The loop clock's reading when a test starts: far from zero, as on a host that has run for
a day, so that a monotonic deadline computed with the wrong sign cannot pass for the right one."""


def virtual[T](main: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine in virtual time (the loop clock starting at `MONOTONIC_START`)."""
    return run_virtual(main, start=MONOTONIC_START)


class JumpingClock(LoopClock):
    """The loop's clock, whose wall time a test can move."""

    def jump(self, seconds: float) -> None:
        """Move the wall clock by `seconds` (a host clock correction); monotonic time goes on."""
        self._offset += seconds


def clock() -> JumpingClock:
    """A clock at EPOCH on the running loop."""
    return JumpingClock(EPOCH, asyncio.get_running_loop())


OFFER = "v=0\r\n"


def ended(reason: str) -> None:
    """A viewer's `on_end` that ignores the end (the tests look at the calls instead)."""


def make_scheduler(
    client: FakeClient,
    clk: LoopClock,
    settings: Settings | None = None,
    *,
    on_change: Callable[[str | None], None] = lambda _device_id: None,
    on_auth_failed: Callable[[], None] = lambda: None,
) -> StreamScheduler:
    """A scheduler with default settings (or `settings`) and a background WebRTC offer."""
    return StreamScheduler(
        client,
        clk,
        settings or Settings(),
        on_change=on_change,
        on_auth_failed=on_auth_failed,
    )


@contextlib.asynccontextmanager
async def running(
    scheduler: StreamScheduler, *, stop_streams: bool = False, grace: float = 10.0
) -> AsyncIterator[StreamScheduler]:
    """Run the scheduler's worker for the block; stop both afterwards (the streams too only
    with `stop_streams`, within `grace`)."""
    worker = asyncio.create_task(scheduler.run())
    try:
        yield scheduler
    finally:
        await scheduler.stop(stop_streams=stop_streams, grace=grace)
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)
