"""How many cameras the core keeps streaming under one project's quota, measured on the emulator.

    .venv/bin/python -m benchmarks.capacity --cameras 45 --qpm 10 --hours 24 --fault-rate 0.01

Runs the real core (queue, limiter, camera state machines) and SDM adapter (google-nest-sdm)
against the in-process emulator on a virtual-time event loop, so 24 hours take seconds. Every
figure comes from the emulator's side of the wire. Prints ONE JSON line.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from typing import Any

from sdm_emulator.virtual_time import run_virtual

from .harness import simulate

TARGET = 0.9995


def _run(args: argparse.Namespace, cameras: int) -> dict[str, Any]:
    started = time.perf_counter()
    result = run_virtual(
        simulate(
            cameras=cameras,
            qpm=args.qpm,
            hours=args.hours,
            fault_rate=args.fault_rate,
            seed=args.seed,
        )
    )
    result["wall_seconds"] = round(time.perf_counter() - started, 2)
    return result


def find_max(args: argparse.Namespace) -> dict[str, Any]:
    """The largest camera count whose availability stays >= 99.95 % (and all are admitted)."""
    best: dict[str, Any] | None = None
    low, high = 1, max(2, args.cameras)
    while low <= high:
        middle = (low + high) // 2
        result = _run(args, middle)
        holds = (
            result["not_admitted"] == 0
            and result["availability"] is not None
            and result["availability"] >= TARGET
            and result["min_camera_availability"] >= TARGET
        )
        if holds:
            best, low = result, middle + 1
        else:
            high = middle - 1
    return {"find_max": best["cameras"] if best else 0, "target": TARGET, "at_max": best}


def main(argv: list[str] | None = None) -> None:
    """Parse options, run, print one JSON line."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.capacity", description=__doc__)
    parser.add_argument(
        "--cameras", type=int, default=45, help="cameras (upper bound with --find-max)"
    )
    parser.add_argument(
        "--qpm", type=float, default=10, help="commands per minute we allow ourselves"
    )
    parser.add_argument("--hours", type=float, default=24, help="virtual hours")
    parser.add_argument("--fault-rate", type=float, default=0.01, help="per-call fault rate")
    parser.add_argument("--seed", type=int, default=1, help="fault injection seed")
    parser.add_argument("--find-max", action="store_true", help="search the largest camera count")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    if args.find_max:
        args.cameras = max(args.cameras, 60)
        print(json.dumps(find_max(args)))
    else:
        print(json.dumps(_run(args, args.cameras)))


if __name__ == "__main__":
    main()
