"""The smooth limiter and the per-device window."""

from __future__ import annotations

import math

import pytest

from custom_components.nest_streams.core.limiter import DeviceWindow, SmoothLimiter
from sdm_emulator.clock import ManualClock


def test_smooth_limiter_spaces_slots() -> None:
    clock = ManualClock(0)
    limiter = SmoothLimiter(clock, qpm=10, safety=0)
    assert limiter.interval == 6
    assert limiter.delay() == 0
    limiter.take()
    assert limiter.delay() == 6
    clock.advance(4)
    assert limiter.delay() == 2
    clock.advance(10)
    assert limiter.delay() == 0
    limiter.take()  # an idle limiter does not bank slots: burst 1
    assert limiter.delay() == 6
    limiter.defer(clock.now() + 30)
    assert limiter.delay() == 30
    with pytest.raises(ValueError, match="positive"):
        SmoothLimiter(clock, qpm=0, safety=0.01)


def test_safety_margin_widens_the_interval() -> None:
    assert SmoothLimiter(ManualClock(0), qpm=10, safety=0.01).interval == pytest.approx(6.06)


def test_device_window() -> None:
    clock = ManualClock(0)
    window = DeviceWindow(clock, limit=2)
    assert window.ready_at("a", "EXTEND") == -math.inf
    window.record("a", "EXTEND")
    clock.advance(10)
    window.record("a", "EXTEND")
    assert window.ready_at("a", "EXTEND") == 60
    assert window.ready_at("b", "EXTEND") == -math.inf
    assert window.ready_at("a", "GENERATE") == -math.inf  # per device AND command
    window.record("a", "GENERATE")
    clock.advance(50)
    assert window.ready_at("a", "EXTEND") == -math.inf  # the first call left the window
    window.record("a", "EXTEND")
    assert window.ready_at("a", "EXTEND") == 70
    window.forget("a")
    assert window.ready_at("a", "EXTEND") == -math.inf
    assert window.ready_at("a", "GENERATE") == -math.inf
