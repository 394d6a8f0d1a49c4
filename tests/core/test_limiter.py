"""The smooth limiter and the per-device window."""

from __future__ import annotations

import math

import pytest

from custom_components.nest_streams.core.limiter import DeviceWindow, SharedQuota, SmoothLimiter
from custom_components.nest_streams.core.settings import Settings
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
    with pytest.raises(ValueError, match=r"^qpm must be positive$"):
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
    assert window.block("a", "STOP") == 60 + 30  # a slot of the window: 60 s / 2
    assert window.block("b", "STOP") == 90
    assert window.ready_at("a", "STOP") == 90
    window.forget("a")
    assert window.ready_at("a", "EXTEND") == -math.inf
    assert window.ready_at("a", "GENERATE") == -math.inf
    assert window.ready_at("a", "STOP") == -math.inf  # its block is forgotten too
    assert window.ready_at("b", "STOP") == 90  # the other device's is not


def test_shared_quota_gives_way_to_another_app_and_comes_back() -> None:
    """Refusals while Google counted few of ours, confirmed by a second: the rate drops toward
    what the other app leaves (less a margin, at most a quarter per drop), admission 1.5 under
    it; then a step up per probe, quicker once quiet, admission a step at a time."""
    clock = ManualClock(0)
    share = SharedQuota(clock, Settings())
    assert share.refused(ours_last_minute=9) is False  # our own minute was full: passing
    assert share.refused(ours_last_minute=6) is False  # one 429 may be a passing one
    assert (share.rate, share.admission) == (10, 10)
    clock.advance(10)
    share.accepted()  # one of ours went through between the refusals
    assert share.refused(ours_last_minute=6) is True  # another app used ~4 a minute
    assert (share.rate, share.admission) == (7.5, 6.0)  # 10 - 4 - 1 = 5, but a quarter at most
    clock.advance(30)
    share.accepted()
    assert share.refused(ours_last_minute=3) is False  # the same full window
    clock.advance(30)
    share.accepted()
    assert share.refused(ours_last_minute=6) is True  # 10 - 4 - 1 = 5, but 0.75 x 7.5 at most
    assert (share.rate, share.admission) == (5.625, 4.125)
    clock.advance(60)
    share.accepted()
    assert share.refused(ours_last_minute=8) is True  # 10 - 2 - 1 = 7, but at least a step
    assert (share.rate, share.admission) == (5.125, 3.625)
    refused_at = clock.now()
    rates = []
    while clock.now() < refused_at + 1800 - 300:
        clock.advance(299)
        assert share.probe() is False  # too soon
        clock.advance(1)
        assert share.probe() is True
        rates.append(share.rate)
    assert rates == [5.625, 6.125, 6.625, 7.125, 7.625]
    assert share.admission == 3.625  # the other app may still be there
    clock.advance(300)  # quiet now: the rate and admission step every minute
    steps = []
    while share.probe() or share.admission < 10:
        steps.append((share.rate, share.admission))
        clock.advance(60)
    assert steps[0] == (8.125, 4.125)
    assert steps[-1] == (10, 10)
    assert len(steps) == 13  # admission: 3.625 -> 10 a step (0.5) at a time
    assert share.probe() is False
    clock.advance(3600)
    assert share.refused(ours_last_minute=0) is False  # a lone 429 long after: passing


def test_a_storm_that_refuses_everything_is_not_another_app() -> None:
    """429s in a row, none of ours accepted between them, are a storm: our share stays whole
    however few of ours Google counted; the first refusal after an accepted command counts."""
    clock = ManualClock(0)
    share = SharedQuota(clock, Settings())
    for ours in (6, 3, 1, 0, 0, 0):
        assert share.refused(ours_last_minute=ours) is False
        clock.advance(20)
    assert (share.rate, share.admission) == (10, 10)
    share.accepted()  # the storm ended
    clock.advance(20)
    assert share.refused(ours_last_minute=5) is True  # refused again after an accepted one
    assert share.rate < 10


def test_shared_quota_never_goes_below_its_floor() -> None:
    clock = ManualClock(0)
    share = SharedQuota(clock, Settings(qpm=2))
    for _ in range(4):
        share.accepted()
        share.refused(ours_last_minute=0)
        clock.advance(60)
    assert (share.rate, share.admission) == (1.0, 1.0)


def test_shared_quota_thresholds_are_inclusive() -> None:
    """Exactly `share_detect` calls a minute that are not ours suggest another app; a second
    refusal exactly `share_confirm` seconds after the first confirms it."""
    clock = ManualClock(0)
    settings = Settings(qpm=9.5)
    share = SharedQuota(clock, settings)
    assert share.refused(ours_last_minute=8) is False  # 1.5 not ours: heard, unconfirmed
    clock.advance(settings.share_confirm)
    share.accepted()
    assert share.refused(ours_last_minute=8) is True
    assert share.rate < 9.5
