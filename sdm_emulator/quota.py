"""Google's per-minute quotas as sliding 60 s windows."""

from __future__ import annotations

from collections import deque

WINDOW = 60.0


class SlidingWindow:
    """Counts accepted calls per key in the last 60 s."""

    def __init__(self) -> None:
        """Start empty."""
        self._calls: dict[tuple[str, ...], deque[float]] = {}

    def try_acquire(self, key: tuple[str, ...], limit: int, now: float) -> bool:
        """Record a call for `key` unless `limit` calls were accepted in (now - 60 s, now]."""
        calls = self._calls.setdefault(key, deque())
        while calls and calls[0] <= now - WINDOW:
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
