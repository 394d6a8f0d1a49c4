"""The project's quota as one object: the last minute, going early, back-off, admission."""

from __future__ import annotations

import pytest

from custom_components.nest_streams.core.quota import Quota
from custom_components.nest_streams.core.settings import Settings
from sdm_emulator.clock import ManualClock


def test_a_prompt_command_goes_early_only_while_the_minute_leaves_two_commands() -> None:
    """At 10 a minute: 8 sent in the last minute leave room, 9 do not; a command a minute
    old no longer counts; a back-off holds everything."""
    clock = ManualClock(0)
    quota = Quota(clock, Settings(qpm=10))
    for _ in range(8):
        quota.take()
    assert quota.last_minute() == 8
    assert quota.may_go_early()
    quota.take()
    assert not quota.may_go_early()
    clock.advance(60)  # Google's minute no longer holds them
    assert quota.last_minute() == 0
    assert quota.may_go_early()
    quota.refused([])
    assert quota.backoff_until is not None
    assert not quota.may_go_early()
    quota.accepted()
    assert quota.backoff_until is None
    assert quota.may_go_early()


def test_a_refused_command_is_not_counted_and_the_history_goes_on() -> None:
    """A 429'd command leaves the last minute; a quota that takes over counts the rest and
    waits for the old pacer's next slot."""
    clock = ManualClock(0)
    quota = Quota(clock, Settings(qpm=10, safety=0))
    first = quota.take()
    quota.take()
    quota.uncount(first)
    assert quota.last_minute() == 1
    successor = Quota(clock, Settings(qpm=10, safety=0))
    successor.resume(quota.history())
    assert successor.last_minute() == 1
    assert successor.delay() == pytest.approx(12.0)  # two slots of 6 s were taken


def test_admission_is_made_again_only_when_its_rate_moved() -> None:
    """Another app's 429s lower the rate (and the interval, capacity and lead follow) and
    admission's rate: the scheduler is asked to admit again once, not on later probes that
    leave admission where the last admission put it."""
    clock = ManualClock(0)
    calls: list[float] = []
    quota = Quota(clock, Settings(), on_admission_change=lambda: calls.append(quota.admission))
    quota.admit(40)
    assert (quota.capacity, quota.interval) == (46, pytest.approx(6.06))
    lead = quota.lead(0.0)
    for _ in range(6):
        quota.take()
    quota.refused([])  # the first refusal lately: maybe passing
    quota.accepted()
    clock.advance(30)
    quota.refused([])  # confirmed: another app used about 4 a minute
    assert quota.rate == 7.5
    assert calls == [6.0]
    assert quota.capacity < 46
    assert quota.interval == pytest.approx(60 / 7.5 * 1.01)
    assert quota.lead(0.0) != lead
    quota.admit(30)  # the scheduler admitted again at 6 a minute
    clock.advance(300)
    quota.probe()  # the rate steps up; admission stays until the other app is quiet
    assert quota.rate == 8.0
    assert calls == [6.0]
