"""Smoke tests of the benchmark scripts (small and short: figures come from real runs)."""

from __future__ import annotations

import json

import pytest

from benchmarks import capacity, ha_cost, soak


def test_capacity_prints_one_json_line(capsys: pytest.CaptureFixture[str]) -> None:
    capacity.main(["--cameras", "6", "--hours", "0.5", "--fault-rate", "0.05", "--seed", "3"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    result = json.loads(lines[0])
    assert result["cameras"] == 6
    assert result["quota_rejections"] == 0
    assert result["peak_calls_60s"] <= 10
    assert 0.9 < result["availability"] <= 1.0
    assert result["all_running_after_s"] < 60
    assert result["calls_per_camera_hour"] > 10


def test_several_seeds_give_the_worst_and_the_median(capsys: pytest.CaptureFixture[str]) -> None:
    assert capacity.seeds("1-3,7") == [1, 2, 3, 7]
    capacity.main(["--cameras", "4", "--hours", "0.2", "--fault-rate", "0", "--seeds", "1-2"])
    result = json.loads(capsys.readouterr().out)
    assert [run["seed"] for run in result["runs"]] == [1, 2]
    worst = min(run["client_min_camera_availability"] for run in result["runs"])
    assert result["client_min_camera_availability"] == worst
    assert 0.9 < worst <= 1.0


def test_find_max_searches_camera_counts(capsys: pytest.CaptureFixture[str]) -> None:
    capacity.main(["--find-max", "--qpm", "1", "--hours", "0.3", "--fault-rate", "0"])
    result = json.loads(capsys.readouterr().out)
    # 1 command per minute holds (300 - 15) / 60.6 = 4 cameras.
    assert result["find_max"] == 4
    assert result["at_max"]["cameras"] == 4


def test_soak_prints_its_figures(capsys: pytest.CaptureFixture[str]) -> None:
    """A short soak (HA in a subprocess): the figures are there and nothing broke."""
    soak.main(["--cameras", "5", "--hours", "0.6", "--fault-rate", "0"])
    result = json.loads(capsys.readouterr().out)
    assert result["cameras"] == 5
    assert result["unhandled_exceptions"] == 0
    assert result["entities_lost"] == 0
    assert result["reauth_flows"] == 0
    assert result["camera_entity_unavailable_s"] == 0
    assert result["orphan_streams_at_google"] == 0
    # The empty device list at 0.5 h was read and cost nothing.
    assert result["generations_beyond_necessary"] == 0


def test_ha_cost_prints_the_cost_per_command(capsys: pytest.CaptureFixture[str]) -> None:
    """A short run (HA in a subprocess): every camera ran and commands were measured.

    The CPU figure of so short a run is mostly noise around a few milliseconds (its sign is the
    machine's, not ours), so only its presence is checked; the state writes are exact.
    """
    ha_cost.main(["--cameras", "3", "--qpm", "10", "--minutes", "5"])
    (run,) = json.loads(capsys.readouterr().out)["runs"]
    assert run["running"] == 3
    assert run["commands"] >= 1
    assert isinstance(run["cpu_ms_per_command"], float)
    assert run["step_cost_ms"] > 0
    # Each accepted command moves at least a camera's expiry (and its state on the first).
    assert run["state_changes_per_command"] >= 1
