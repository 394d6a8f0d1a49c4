"""The settings: one name and default each, options parsed safely, the quota arithmetic."""

from __future__ import annotations

import logging
import math

import pytest

from custom_components.nest_streams.core.settings import (
    USER_OPTIONS,
    Settings,
    quota_interval,
)


def test_quota_arithmetic() -> None:
    assert quota_interval(10, 0.01) == pytest.approx(6.06)
    assert Settings().interval == pytest.approx(6.06)
    assert Settings().capacity == 46  # (300 - 15) * 0.98 / 6.06 = 46.09
    assert Settings(quota_reserve=0).capacity == 47  # 47.03
    assert Settings(qpm=20).capacity == 92  # 92.2
    assert Settings(qpm=1, extension_lead=295).capacity == 0


def test_lead_slack_keeps_the_reserve() -> None:
    """The adaptive lead may only grow while the cameras' commands fit in 98 % of the quota."""
    assert Settings().lead_slack(0) == pytest.approx(285)
    assert Settings().lead_slack(45) == pytest.approx(285 - 45 * 6.06 / 0.98)  # 6.73 s
    assert Settings(quota_reserve=0).lead_slack(45) == pytest.approx(285 - 45 * 6.06)
    assert Settings().lead_slack(47) == 0


def test_options_parse_into_settings() -> None:
    settings = Settings.from_options(
        {"qpm": 7.5, "extension_lead": 30.0, "max_failures": "4", "unrelated": 1}
    )
    assert settings == Settings(qpm=7.5, extension_lead=30, max_failures=4)
    assert isinstance(settings.max_failures, int)
    assert isinstance(settings.extension_lead, float)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("qpm", math.nan),
        ("qpm", math.inf),
        ("qpm", 0),
        ("qpm", 1.25),
        ("qpm", "ten"),
        ("qpm", None),
        ("qpm", True),
        ("max_failures", 2.5),
        ("extension_lead", 1000),
        ("retry_base", -1),
    ],
)
def test_invalid_options_keep_the_default(
    name: str, value: object, caplog: pytest.LogCaptureFixture
) -> None:
    """A hand-edited or broken option never breaks the entry: default, and one warning."""
    with caplog.at_level(logging.WARNING):
        settings = Settings.from_options({name: value})
    assert getattr(settings, name) == getattr(Settings(), name)
    assert caplog.text.count("Ignoring the invalid option") == 1


def test_user_options_are_settings() -> None:
    names = {option.name for option in USER_OPTIONS}
    assert names <= set(Settings.__dataclass_fields__)
    for option in USER_OPTIONS:
        assert option.minimum <= option.default <= option.maximum


def test_an_option_alone_is_taken_and_its_range_is_inclusive() -> None:
    """Each option is read by its own name whatever else is set; both ends of a range are
    valid values."""
    last = USER_OPTIONS[-1]
    assert getattr(Settings.from_options({last.name: last.maximum}), last.name) == last.maximum
    for option in USER_OPTIONS:
        assert option.parse(option.minimum) == option.minimum
        assert option.parse(option.maximum) == option.maximum


def test_an_invalid_option_does_not_hide_the_ones_after_it() -> None:
    first, last = USER_OPTIONS[0], USER_OPTIONS[-1]
    settings = Settings.from_options({first.name: "not a number", last.name: last.maximum})
    assert getattr(settings, first.name) == first.default
    assert getattr(settings, last.name) == last.maximum
