"""Every setting of one Google project's stream keeping: one name and one default each.

The options flow's fields, the stored options' keys, `const.py`'s defaults and the core all
derive from `Settings` and `USER_OPTIONS`, so a setting keeps its name from the UI to its use.
The quota arithmetic (`quota_interval`, `Settings.capacity`) lives here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
import logging
import math
from typing import Any

_LOGGER = logging.getLogger(__name__)

WINDOW = 60.0
"""Google's quota window, in seconds."""


def quota_interval(qpm: float, safety: float) -> float:
    """Seconds between two commands so that no 60 s window holds more than `qpm` of them."""
    return WINDOW / qpm * (1.0 + safety)


@dataclass(frozen=True, slots=True)
class Settings:
    """How one project's streams are kept alive."""

    qpm: float = 10.0
    """Commands per minute the project's quota allows us (user option)."""
    extension_lead: float = 15.0
    """Shortest time before expiry at which a stream is extended, in seconds (user option)."""
    max_failures: int = 5
    """Consecutive failures after which a camera is degraded (user option)."""
    degraded_retry: float = 300.0
    """Seconds between retries of a degraded camera (user option)."""
    retry_base: float = 10.0
    """First retry delay after a failure, in seconds; doubles per failure (user option)."""
    retry_cap: float = 160.0
    """Longest retry delay before a camera is degraded, in seconds."""
    per_device_qpm: int = 5
    """Commands per minute Google allows per device and command."""
    device_calls_per_hour: int = 30
    """Most commands we send per device in any hour (user option): Google also limits each
    device per hour, number unpublished (one claim: 100). Keep-alive takes 12.6-13.8 an hour
    (one per 300 s less a 15-39 s lead); 30 leaves as much again for retries and stops."""
    safety: float = 0.01
    """Fraction added to the command interval against clock jitter between us and Google."""
    command_timeout: float = 10.0
    """Seconds a command may take before it counts as unanswered."""
    stream_lifetime: float = 300.0
    """Seconds a stream lives at Google after a generation or an extension."""
    quota_reserve: float = 0.02
    """Share of the quota kept free for retries: admission and the adaptive lead leave it."""
    share_detect: float = 1.5
    """Commands a minute another app must seem to use before we give way: when Google refuses
    one of ours for the project's quota, the quota less what it counted of ours in the last
    minute. Below this a 429 is taken for a passing one (back-off only)."""
    share_margin: float = 1.0
    """Commands a minute left to another app beyond what it seemed to use (its pace varies)."""
    share_confirm: float = 600.0
    """Seconds within which a second such refusal confirms another app (one may be passing)."""
    share_decrease: float = 0.75
    """The most one drop takes: our rate falls to no less than this share of itself (a sudden
    deep cut crowds the cameras' extensions, which were spaced for the old rate)."""
    share_step: float = 0.5
    """Commands a minute our rate moves by: down at least this much at a refusal, up this much
    per probe while no 429 comes; admission, once quiet, rises by as much per minute."""
    share_headroom: float = 1.5
    """Commands a minute admission leaves under our rate after a drop: the cameras' extensions
    keep room (a larger lead), so that the next drop does not crowd them. Measured with another
    app at 3-4 a minute (`benchmarks/capacity.py --foreign-qpm`): 1.5 kept every admitted camera
    at 100 % on 8 seeds; 1.0 and 0.5 let one in 8 and three in 6 seeds lapse for 13-21 s."""
    share_probe: float = 300.0
    """Seconds without a 429 before each step up, while the other app was heard lately."""
    share_quiet: float = 1800.0
    """Seconds without a 429 after which the other app counts as gone: the rate steps up every
    `WINDOW` seconds, and admission plans with the current rate again."""
    share_floor: float = 1.0
    """The lowest rate we go down to, in commands per minute."""

    def at_rate(self, qpm: float) -> Settings:
        """The same settings with `qpm` commands per minute (a quota shared with another app)."""
        return self if qpm == self.qpm else replace(self, qpm=qpm)

    @property
    def interval(self) -> float:
        """Seconds between two commands."""
        return quota_interval(self.qpm, self.safety)

    @property
    def capacity(self) -> int:
        """How many cameras the quota keeps alive: each costs one command per cycle.

        A cycle is the stream's lifetime less the extension lead; the reserve stays free.
        """
        cycle = self.stream_lifetime - self.extension_lead
        return max(0, math.floor(cycle * (1 - self.quota_reserve) / self.interval))

    def lead_slack(self, active: int) -> float:
        """Seconds the extension lead may grow beyond its minimum with `active` cameras.

        Extending `lead` seconds before expiry makes a cycle `lifetime - lead` long, and every
        camera needs one command per cycle: the lead may grow while the cameras' commands still
        fit in the quota less its reserve.
        """
        needed = active * self.interval / (1 - self.quota_reserve)
        return max(0.0, self.stream_lifetime - self.extension_lead - needed)

    @property
    def degrade_after(self) -> float:
        """Seconds a camera must have been failing before it is degraded: the back-off's
        schedule up to `max_failures` (10 + 20 + 40 + 80 s by default)."""
        return sum(self.retry_delay(failures) for failures in range(1, self.max_failures))

    def retry_delay(self, failures: int) -> float:
        """Back-off after `failures` consecutive failures: base, doubling, capped."""
        return float(min(self.retry_base * 2 ** max(0, failures - 1), self.retry_cap))

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Settings:
        """Settings from a config entry's options; a missing or invalid value keeps its default.

        An invalid value (not a number, not finite, out of its option's range) is logged once
        per call and ignored, so a hand-edited or old entry still loads.
        """
        settings = cls()
        changes: dict[str, Any] = {}
        for option in USER_OPTIONS:
            if option.name not in options:
                continue
            raw = options[option.name]
            value = option.parse(raw)
            if value is None:
                _LOGGER.warning(
                    "Ignoring the invalid option %s=%r; using %s",
                    option.name,
                    raw,
                    getattr(settings, option.name),
                )
                continue
            changes[option.name] = value
        return replace(settings, **changes)


@dataclass(frozen=True, slots=True)
class UserOption:
    """A setting the options flow offers: its range, step and unit."""

    name: str
    minimum: float
    maximum: float
    unit: str | None = None
    step: float = 1
    """The flow's step; a value must be a multiple of it."""

    @property
    def default(self) -> float | int:
        """The default, from `Settings`."""
        value: float | int = getattr(DEFAULTS, self.name)
        return value

    def parse(self, raw: Any) -> float | int | None:
        """The value as the core takes it, or None when it is not valid for this option."""
        if isinstance(raw, bool):
            return None
        try:
            value = float(raw)
        except TypeError, ValueError:
            return None
        if not math.isfinite(value) or not self.minimum <= value <= self.maximum:
            return None
        if not math.isclose(value / self.step, round(value / self.step)):
            return None
        return int(value) if isinstance(self.default, int) else value


DEFAULTS = Settings()

USER_OPTIONS: tuple[UserOption, ...] = (
    UserOption("qpm", 1, 600, "calls/min", step=0.5),  # up to a quota Google raised
    UserOption("extension_lead", 5, 120, "s"),
    UserOption("max_failures", 1, 50),
    UserOption("degraded_retry", 30, 3600, "s"),
    UserOption("retry_base", 1, 300, "s"),
    UserOption("device_calls_per_hour", 14, 600, "calls/h"),
)
