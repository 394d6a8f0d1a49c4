"""Google's per-minute quotas: fixed windows (as documented) or sliding 60 s windows."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
import math
import random

WINDOW = 60.0


class FixedWindow:
    """Counts accepted calls per key in fixed windows: a window opens with the first call and
    lasts 60 s ("until the end of the minute that started with the first command")."""

    def __init__(self, window: float = WINDOW) -> None:
        """Start empty; windows last `window` seconds."""
        self._window = window
        self._windows: dict[tuple[str, ...], tuple[float, int]] = {}

    def try_acquire(self, key: tuple[str, ...], limit: int, now: float) -> bool:
        """Record a call for `key` unless its current window already holds `limit` calls."""
        start, count = self._windows.get(key, (-math.inf, 0))
        if now >= start + self._window:
            start, count = now, 0
        if count >= limit:
            return False
        self._windows[key] = (start, count + 1)
        return True

    def release(self, key: tuple[str, ...]) -> None:
        """Take back the newest call for `key` (a later check refused the call)."""
        if (window := self._windows.get(key)) is not None and window[1] > 0:
            self._windows[key] = (window[0], window[1] - 1)


class SlidingWindow:
    """Counts accepted calls per key in the last 60 s (or `window` seconds)."""

    def __init__(self, window: float = WINDOW) -> None:
        """Start empty."""
        self._window = window
        self._calls: dict[tuple[str, ...], deque[float]] = {}

    def try_acquire(self, key: tuple[str, ...], limit: int, now: float) -> bool:
        """Record a call for `key` unless `limit` calls were accepted in (now - window, now]."""
        calls = self._calls.setdefault(key, deque())
        while calls and calls[0] <= now - self._window:
            calls.popleft()
        if len(calls) >= limit:
            return False
        calls.append(now)
        return True

    def release(self, key: tuple[str, ...]) -> None:
        """Take back the newest call for `key` (a later check refused the call)."""
        calls = self._calls.get(key)
        if calls:
            calls.pop()


class ForeignClient:
    """Another app on the same project (HA's own `nest`, a second integration): it spends the
    project's executeCommand quota at `qpm` calls a minute from `start` to `stop` seconds after
    the emulator started, evenly spaced with +-25 % jitter.

    Its calls are played lazily into the quota window, in order, before each of ours (`catch_up`),
    so it needs no task of its own and runs in virtual time too.
    """

    def __init__(self, qpm: float, start: float, stop: float, seed: int) -> None:
        """A client calling `qpm` times a minute in [start, stop)."""
        self.qpm = qpm
        self._stop = stop
        self._random = random.Random(seed)
        self._next = start if qpm > 0 else math.inf
        self.calls = 0
        self.refused = 0

    def catch_up(self, elapsed: float, call: Callable[[float], bool]) -> None:
        """Make the calls due up to `elapsed`; `call(at)` says whether Google accepted one."""
        while self._next <= elapsed and self._next < self._stop:
            self.calls += 1
            if not call(self._next):
                self.refused += 1
            period = 60.0 / self.qpm
            self._next += period * self._random.uniform(0.75, 1.25)
