"""Rate limiters: a smooth project-wide limiter, a sliding per-device window, and our share
of a quota other apps may use too."""

from __future__ import annotations

from collections import deque
import math

from .clock import Clock
from .settings import WINDOW, Settings, quota_interval


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

    def set_rate(self, qpm: float, safety: float) -> None:
        """Space the next commands for `qpm` commands per minute."""
        self.interval = quota_interval(qpm, safety)

    def defer(self, until: float) -> None:
        """Give no slot before monotonic time `until` (quota back-off)."""
        self._next = max(self._next, until)

    @property
    def next_slot(self) -> float:
        """Monotonic time of the next slot (-inf: one is free)."""
        return self._next


class DeviceWindow:
    """At most `limit` calls of one command per device in any sliding `window` seconds.

    Google's per-minute limit is per device AND command: a camera's extensions do not hold up
    its generation (nor the other way round). The hourly budget is a window of an hour over
    every command of a device (one key for all: `ANY`).
    """

    ANY = "*"
    """The command key of a window that counts every command of a device."""

    def __init__(self, clock: Clock, limit: int, window: float = WINDOW) -> None:
        """Allow `limit` calls per device and command per `window` seconds."""
        self._clock = clock
        self._limit = limit
        self._window = window
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
        cutoff = self._clock.monotonic() - self._window
        while sent and sent[0] <= cutoff:
            sent.popleft()
        if len(sent) < self._limit:
            return -math.inf
        return sent[0] + self._window

    def record(self, device_id: str, command: str) -> None:
        """Count a call of `command` sent now."""
        self._sent.setdefault((device_id, command), deque()).append(self._clock.monotonic())

    def block(self, device_id: str, command: str) -> float:
        """Google refused `command` for this device (its own limit): wait a slot of the window.

        Returns until when (monotonic).
        """
        until = self._clock.monotonic() + self._window / self._limit
        self._blocked[(device_id, command)] = until
        return until

    def forget(self, device_id: str) -> None:
        """Drop a removed device."""
        for key in [key for key in self._sent if key[0] == device_id]:
            del self._sent[key]
        for key in [key for key in self._blocked if key[0] == device_id]:
            del self._blocked[key]


class SharedQuota:
    """Our share of a project's quota that other apps may use too.

    When Google refuses one of our commands for the project's quota while it counted clearly
    fewer of ours in the last minute than the quota (`share_detect`), and did so before within
    `share_confirm` seconds (one 429 may be a passing one) with one of ours accepted in between
    (an app that shares the quota leaves room in the minute between its refusals; a storm
    refuses every command in a row, and reading it as another app would keep our rate and
    admission down for half an hour after it), someone else spends the rest: our
    rate drops to the quota less that other app's apparent use and a margin (at least one step,
    at most to `share_decrease` of itself; once per window: the 429s of the next minute come
    from the same full window).
    Without 429s it steps up by `share_step` every `share_probe` seconds (a probe: when the
    other app is still there, a refusal measures it again), and every `WINDOW` seconds once
    `share_quiet` seconds passed without a drop (the other app went quiet).
    `admission` is the rate admission plans with: `share_headroom` under the rate after a drop
    (room for the cameras' extensions when the next drop comes), rising only a step at a time
    once the other app is quiet, so cameras are not dropped and admitted again with every probe
    nor many admitted at once.
    """

    def __init__(self, clock: Clock, settings: Settings) -> None:
        """Start with the whole quota."""
        self._clock = clock
        self._settings = settings
        self.rate = settings.qpm
        """Commands per minute we send now."""
        self.admission = settings.qpm
        """Commands per minute admission plans with."""
        self._refused_at = -math.inf
        """Monotonic time of the last drop."""
        self._heard_at = -math.inf
        """Monotonic time of the last refusal that suggested another app."""
        self._accepted_since = False
        """Whether Google accepted one of ours since the last refusal."""
        self._stepped_at = -math.inf

    def refused(self, ours_last_minute: int) -> bool:
        """Google refused a command for the project's quota; whether our rate dropped.

        `ours_last_minute`: our commands Google accepted in the last minute.
        """
        settings = self._settings
        mono = self._clock.monotonic()
        accepted, self._accepted_since = self._accepted_since, False
        other = settings.qpm - ours_last_minute
        if other < settings.share_detect:
            return False  # our own minute (nearly) filled the quota: a passing refusal
        heard, self._heard_at = self._heard_at, mono
        if mono - heard > settings.share_confirm:
            return False  # the first lately: one 429 may be a passing one
        if not accepted:
            return False  # refused in a row: a storm (or the same full minute), not a share
        if mono - self._refused_at < WINDOW:
            return False  # the same full window
        self._refused_at = self._stepped_at = mono
        fits = max(
            settings.qpm - other - settings.share_margin, self.rate * settings.share_decrease
        )
        self.rate = max(settings.share_floor, min(fits, self.rate - settings.share_step))
        self.admission = min(
            self.admission, max(settings.share_floor, self.rate - settings.share_headroom)
        )
        return True

    def accepted(self) -> None:
        """Google's quota let one of our commands through."""
        self._accepted_since = True

    def probe(self) -> bool:
        """Step up when no 429 came for a while; whether the rate or admission changed."""
        settings = self._settings
        mono = self._clock.monotonic()
        quiet = mono - self._refused_at >= settings.share_quiet
        if mono - self._stepped_at < (WINDOW if quiet else settings.share_probe):
            return False
        changed = False
        if self.rate < settings.qpm:
            self.rate = min(settings.qpm, self.rate + settings.share_step)
            changed = True
        if quiet and self.admission < self.rate:
            self.admission = min(self.rate, self.admission + settings.share_step)
            changed = True
        if changed:
            self._stepped_at = mono
        return changed


class DeviceLimits:
    """Google's limits of each device: `per_device_qpm` calls per device and command in any
    minute, and our hourly budget per device (`device_calls_per_hour`, every command)."""

    def __init__(self, clock: Clock, settings: Settings) -> None:
        """Nothing sent yet."""
        self._clock = clock
        self._minute = DeviceWindow(clock, settings.per_device_qpm)
        self._hour = DeviceWindow(clock, settings.device_calls_per_hour, window=3600.0)

    def ready_at(self, device_id: str, command: str) -> float:
        """When the device may send `command` next (monotonic; -inf: now)."""
        return max(
            self._minute.ready_at(device_id, command),
            self._hour.ready_at(device_id, DeviceWindow.ANY),
        )

    def record(self, device_id: str, command: str) -> None:
        """Count a call of `command` sent now."""
        self._minute.record(device_id, command)
        self._hour.record(device_id, DeviceWindow.ANY)

    def block(self, device_id: str, command: str) -> float:
        """Google refused `command` for this device's own limit (a 429 per device): it waits a
        slot of the minute. Returns until when (monotonic)."""
        return self._minute.block(device_id, command)

    def budget_spent_until(self, device_id: str) -> float | None:
        """Wall-clock time until which the device's hourly budget is spent, None if it is not."""
        ready_at = self._hour.ready_at(device_id, DeviceWindow.ANY)
        mono = self._clock.monotonic()
        return None if ready_at <= mono else self._clock.now() + ready_at - mono

    def forget(self, device_id: str) -> None:
        """Drop a device that left the project."""
        self._minute.forget(device_id)
        self._hour.forget(device_id)
