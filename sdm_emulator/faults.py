"""Seeded, deterministic fault injection."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
import random


class Fault(StrEnum):
    """What can go wrong with one API call."""

    ERROR_500 = "500"
    ERROR_503 = "503"
    SLOW = "slow"
    """The call is carried out, but the answer comes after `slow_seconds`."""
    MALFORMED = "malformed"
    """The call is carried out, but the answer is not JSON."""
    LOST = "lost"
    """The connection drops before the call reaches Google: nothing is carried out (and no
    quota spent), the client sees a dropped connection and cannot tell it from a lost answer."""
    DEVICE_QUOTA = "device_429"
    """Google's per-device limit refuses the command (another app drives the same camera)."""
    NOT_FOUND = "404"
    CONFLICT = "409"
    """A generation answered 409 (seen in practice, cause unknown; only Generate commands)."""
    QUOTA = "429"
    TOKEN_DOWN = "token_down"
    """The OAuth token endpoint answers 503."""


@dataclass(frozen=True, slots=True)
class ScriptedFault:
    """A fault active from `start` to `end` (seconds since the emulator started).

    `device` limits it to one device's calls; None means every SDM call (or the token endpoint
    for TOKEN_DOWN).
    """

    fault: Fault
    start: float
    end: float
    device: str | None = None


@dataclass(slots=True)
class FaultConfig:
    """Per-call fault rates (0..1) and standing faults."""

    rate_500: float = 0.0
    rate_503: float = 0.0
    rate_slow: float = 0.0
    rate_malformed: float = 0.0
    rate_lost: float = 0.0
    rate_device_quota: float = 0.0
    rate_409: float = 0.0
    """Share of Generate commands answered 409."""
    slow_seconds: float = 30.0
    not_found_devices: set[str] = field(default_factory=set)
    """Devices answered with 404 (still listed: a device that vanished behind the list's back)."""
    failing_devices: set[str] = field(default_factory=set)
    """Devices whose every command answers 500."""
    token_down: bool = False
    empty_device_lists: int = 0
    """The next N device-list answers are 200 `{}` (no `devices` field)."""
    failed_device_lists: int = 0
    """The next N device-list answers are an HTML 500 page."""
    scripted: list[ScriptedFault] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        """The faults in force, JSON-ready (sets as sorted lists, scripted faults as objects)."""
        return {
            name: sorted(value)
            if isinstance(value, set)
            else [
                {"fault": item.fault.name.lower(), "start": item.start, "end": item.end}
                | ({"device": item.device} if item.device else {})
                for item in value
            ]
            if name == "scripted"
            else value
            for name in self.__dataclass_fields__
            for value in [getattr(self, name)]
        }

    @classmethod
    def uniform(cls, rate: float) -> FaultConfig:
        """A total per-call fault `rate` spread over 500, 503, slow and malformed answers."""
        share = rate / 4
        return cls(rate_500=share, rate_503=share, rate_slow=share, rate_malformed=share)


class FaultInjector:
    """Decides, deterministically from a seed, which fault (if any) hits a call."""

    def __init__(self, config: FaultConfig, seed: int) -> None:
        """Use `config` with a random generator seeded by `seed`."""
        self.config = config
        self._random = random.Random(seed)

    def token_down(self, elapsed: float) -> bool:
        """Whether the token endpoint is down now."""
        return self.config.token_down or self._scripted(Fault.TOKEN_DOWN, elapsed, None)

    def _scripted(self, fault: Fault, elapsed: float, device: str | None) -> bool:
        return any(
            item.fault is fault
            and item.start <= elapsed < item.end
            and (item.device is None or item.device == device)
            for item in self.config.scripted
        )

    def for_call(self, elapsed: float, device: str | None, *, command: bool) -> Fault | None:
        """The fault for one SDM call now (`device` for device calls, `command` for commands)."""
        config = self.config
        if device is not None and device in config.not_found_devices:
            return Fault.NOT_FOUND
        if command and device is not None and device in config.failing_devices:
            return Fault.ERROR_500
        for fault in (
            Fault.QUOTA,
            Fault.NOT_FOUND,
            Fault.ERROR_500,
            Fault.ERROR_503,
            Fault.SLOW,
            Fault.MALFORMED,
            Fault.LOST,
            Fault.CONFLICT,
        ):
            if self._scripted(fault, elapsed, device):
                return fault
        draw = self._random.random()
        for fault, rate in (
            (Fault.ERROR_500, config.rate_500),
            (Fault.ERROR_503, config.rate_503),
            (Fault.SLOW, config.rate_slow),
            (Fault.MALFORMED, config.rate_malformed),
            (Fault.LOST, config.rate_lost),
            (Fault.DEVICE_QUOTA, config.rate_device_quota),
            (Fault.CONFLICT, config.rate_409),
        ):
            if draw < rate:
                return fault
            draw -= rate
        return None
