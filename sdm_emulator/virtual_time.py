"""An asyncio event loop whose clock jumps to the next timer whenever nothing else can run.

With it, `asyncio.sleep(300)` returns at once while `loop.time()` moves 300 s: hours of stream
keeping run in seconds, deterministically. It relies on the loop's internal ready/scheduled
queues (CPython's BaseEventLoop), and suits code that does no real I/O (use
`inprocess.InProcessSession` rather than sockets).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
import heapq
from typing import Any


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """A selector loop with virtual time."""

    def __init__(self, start: float = 0.0) -> None:
        """Start virtual time at `start` (0 by default)."""
        super().__init__()
        self._virtual_now = start

    def time(self) -> float:
        """Virtual time."""
        return self._virtual_now

    def _run_once(self) -> None:
        ready = self._ready  # type: ignore[attr-defined]
        scheduled = self._scheduled  # type: ignore[attr-defined]
        # Cancelled timers first leave the head of the heap, as the loop itself does: else
        # the clock stays at a cancelled timer's time and the loop waits for the next live
        # one in real time.
        while scheduled and scheduled[0].cancelled():
            handle = heapq.heappop(scheduled)
            handle._scheduled = False
            self._timer_cancelled_count -= 1  # type: ignore[attr-defined]
        if not ready and scheduled:
            self._virtual_now = max(self._virtual_now, scheduled[0].when())
        super()._run_once()  # type: ignore[misc]


def run_virtual[T](main: Coroutine[Any, Any, T], *, start: float = 0.0) -> T:
    """Run `main` to completion on a new virtual-time loop whose clock starts at `start`."""
    loop = VirtualTimeLoop(start)
    try:
        return loop.run_until_complete(main)
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
