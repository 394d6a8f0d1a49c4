"""The emulator's clock: injectable, so tests and benchmarks control time."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    """Epoch seconds and a way to wait."""

    def now(self) -> float:
        """Return the current time in epoch seconds."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait for `seconds`."""
        ...


class SystemClock:
    """Real time."""

    def now(self) -> float:
        """Return time.time()."""
        return time.time()

    async def sleep(self, seconds: float) -> None:
        """asyncio.sleep."""
        await asyncio.sleep(max(0.0, seconds))


class ManualClock:
    """A clock that moves only when told to (`advance`); sleeps return at once."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        """Start at `start` epoch seconds."""
        self._now = start

    def now(self) -> float:
        """Return the current manual time."""
        return self._now

    def monotonic(self) -> float:
        """The manual time (it only moves forward)."""
        return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self._now += seconds

    async def sleep(self, seconds: float) -> None:
        """Advance time instead of waiting."""
        self._now += max(0.0, seconds)
