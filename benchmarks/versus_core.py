"""Side by side: HA core's `nest` and `nest_streams`, same emulator settings, same virtual time.

    .venv/bin/python -m benchmarks.versus_core --cameras 10,20,30,45 --hours 6
    .venv/bin/python -m benchmarks.versus_core --find-max --hours 6

For each camera count and system, `benchmarks/versus_core_harness.py` runs in its own pytest
process (a fresh Home Assistant, a fresh emulator with identical settings, the same seed and
fault rate); its docstring says how each system is driven. Prints one JSON line per system and
camera count; with --find-max, one line per system with the largest camera count that holds
availability >= 99.9 % (overall and for the worst camera).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from .pytest_run import run_harness

HARNESS = Path(__file__).with_name("versus_core_harness.py")
ROOT = HARNESS.parent.parent
SYSTEMS = ("core", "nest_streams")
TARGET = 0.999


def run_one(system: str, cameras: int, args: argparse.Namespace) -> dict[str, Any]:
    """One system with `cameras` cameras; its figures."""
    return run_harness(
        HARNESS,
        "VERSUS",
        {
            "system": system,
            "cameras": cameras,
            "hours": args.hours,
            "qpm": args.qpm,
            "fault_rate": args.fault_rate,
            "seed": args.seed,
        },
    )


def holds(result: dict[str, Any]) -> bool:
    """Whether every camera streamed at >= 99.9 % availability."""
    return (
        result["cameras_ever_streaming"] == result["cameras"]
        and result["availability"] is not None
        and result["availability"] >= TARGET
        and result["min_camera_availability"] >= TARGET
    )


def find_max(system: str, args: argparse.Namespace, high: int) -> dict[str, Any]:
    """Binary search of the largest camera count that holds."""
    best: dict[str, Any] | None = None
    low = 1
    while low <= high:
        middle = (low + high) // 2
        result = run_one(system, middle, args)
        if holds(result):
            best, low = result, middle + 1
        else:
            high = middle - 1
    return {
        "system": system,
        "find_max": best["cameras"] if best else 0,
        "target": TARGET,
        "at_max": best,
    }


def main(argv: list[str] | None = None) -> None:
    """Parse options, run, print JSON lines."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.versus_core", description=__doc__)
    add = parser.add_argument
    add("--cameras", default="10,20,30,45", help="camera counts, comma separated")
    add("--hours", type=float, default=6, help="virtual hours per run (6; 24 for a day)")
    add("--qpm", type=int, default=10, help="the emulator's executeCommand quota per minute")
    add("--fault-rate", type=float, default=0.01, help="per-call fault rate")
    add("--seed", type=int, default=1, help="fault injection seed")
    add("--systems", default=",".join(SYSTEMS), help="core, nest_streams or both")
    add("--find-max", action="store_true", help="largest camera count each system holds")
    args = parser.parse_args(argv)
    systems = [name for name in args.systems.split(",") if name]
    if args.find_max:
        for system in systems:
            print(json.dumps(find_max(system, args, 60)), flush=True)
        return
    for cameras in (int(count) for count in args.cameras.split(",")):
        for system in systems:
            print(json.dumps(run_one(system, cameras, args)), flush=True)


if __name__ == "__main__":
    main()
