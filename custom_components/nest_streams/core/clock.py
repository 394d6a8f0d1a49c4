"""Time, injectable: the core never calls time.time() or asyncio.sleep() directly."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    """Wall-clock time in epoch seconds, a monotonic clock, and a way to wait.

    Expiry is wall-clock time (Google's `expiresAt`); pacing (quota slots, back-off, retry
    delays) is monotonic, so a wall-clock jump cannot freeze or flood the queue.
    """

    def now(self) -> float:
        """Return the current time in epoch seconds."""
        ...

    def monotonic(self) -> float:
        """Return seconds of a clock that never jumps (any origin)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait for `seconds`."""
        ...


class SystemClock:
    """The real clock: time.time() and asyncio.sleep()."""

    def now(self) -> float:
        """Return time.time()."""
        return time.time()

    def monotonic(self) -> float:
        """Return time.monotonic()."""
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        """Sleep on the running loop."""
        await asyncio.sleep(max(0.0, seconds))


class LoopClock:
    """Epoch time derived from the event loop's clock.

    With a virtual-time event loop (see `sdm_emulator.virtual_time`), hours pass in seconds.
    """

    def __init__(self, epoch: float, loop: asyncio.AbstractEventLoop) -> None:
        """Start at `epoch` epoch seconds now."""
        self._loop = loop
        self._offset = epoch - loop.time()

    def now(self) -> float:
        """Return the loop's time shifted to the epoch."""
        return self._offset + self._loop.time()

    def monotonic(self) -> float:
        """Return the loop's time."""
        return self._loop.time()

    async def sleep(self, seconds: float) -> None:
        """Sleep on the loop."""
        await asyncio.sleep(max(0.0, seconds))
