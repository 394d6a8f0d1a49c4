"""Smoke test of the side-by-side harness: both systems, few cameras, a few virtual minutes."""

from __future__ import annotations

import json

import pytest

from benchmarks import versus_core


def test_both_systems_print_their_figures(capsys: pytest.CaptureFixture[str]) -> None:
    versus_core.main(["--cameras", "4", "--hours", "0.1", "--fault-rate", "0", "--seed", "2"])
    lines = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert [line["system"] for line in lines] == ["core", "nest_streams"]
    for line in lines:
        assert line["cameras"] == 4
        assert line["cameras_ever_streaming"] == 4
        assert line["peak_calls_60s"] <= 10
        assert 0.9 < line["availability"] <= 1.0
    ours = lines[1]
    assert ours["quota_rejections_429"] == 0
    assert versus_core.holds(ours)
