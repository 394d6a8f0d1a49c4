"""Rate limiters: a smooth project-wide limiter and a sliding per-device window."""

from __future__ import annotations

from collections import deque
import math

from .clock import Clock
from .settings import WINDOW, quota_interval


class SmoothLimiter:
    """One command every `quota_interval(qpm, safety)` seconds, burst 1.

    Spacing every call by at least the interval keeps any sliding 60 s window at or under `qpm`
    calls; `safety` absorbs jitter between our clock and Google's.
    """

    def __init__(self, clock: Clock, qpm: float, safety: float) -> None:
        """Allow `qpm` commands per minute."""
        if not qpm > 0:
            raise ValueError("qpm must be positive")
        self._clock = clock
        self.interval = quota_interval(qpm, safety)
        self._next = -math.inf

    def delay(self) -> float:
        """Seconds until the next slot (0 when one is free now)."""
        return max(0.0, self._next - self._clock.monotonic())

    def take(self) -> None:
        """Use the current slot."""
        self._next = max(self._next, self._clock.monotonic()) + self.interval

    def defer(self, until: float) -> None:
        """Give no slot before monotonic time `until` (quota back-off)."""
        self._next = max(self._next, until)


class DeviceWindow:
    """At most `limit` calls of one command per device in any sliding 60 s window.

    Google's limit is per device AND command: a camera's extensions do not hold up its
    generation (nor the other way round).
    """

    def __init__(self, clock: Clock, limit: int) -> None:
        """Allow `limit` calls per device and command per minute."""
        self._clock = clock
        self._limit = limit
        self._sent: dict[tuple[str, str], deque[float]] = {}
        self._blocked: dict[tuple[str, str], float] = {}
        """Device and command -> monotonic time before which Google refused them (429)."""

    def ready_at(self, device_id: str, command: str) -> float:
        """When the device may send `command` next (-inf: now)."""
        blocked = self._blocked.get((device_id, command), -math.inf)
        if blocked > self._clock.monotonic():
            return blocked
        self._blocked.pop((device_id, command), None)
        sent = self._sent.get((device_id, command))
        if not sent:
            return -math.inf
        cutoff = self._clock.monotonic() - WINDOW
        while sent and sent[0] <= cutoff:
            sent.popleft()
        if len(sent) < self._limit:
            return -math.inf
        return sent[0] + WINDOW

    def record(self, device_id: str, command: str) -> None:
        """Count a call of `command` sent now."""
        self._sent.setdefault((device_id, command), deque()).append(self._clock.monotonic())

    def block(self, device_id: str, command: str) -> float:
        """Google refused `command` for this device (its own limit): wait a slot of the window.

        Returns until when (monotonic).
        """
        until = self._clock.monotonic() + WINDOW / self._limit
        self._blocked[(device_id, command)] = until
        return until

    def forget(self, device_id: str) -> None:
        """Drop a removed device."""
        for key in [key for key in self._sent if key[0] == device_id]:
            del self._sent[key]
        for key in [key for key in self._blocked if key[0] == device_id]:
            del self._blocked[key]
