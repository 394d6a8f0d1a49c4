"""Soak: nest_streams in Home Assistant for a virtual day with every fault of the emulator mixed.

    .venv/bin/python -m benchmarks.soak --cameras 20 --hours 24 --fault-rate 0.01 --seed 1

Runs `benchmarks/soak_harness.py` under pytest (HA's test harness, freezer time) in a
subprocess and prints ONE JSON line: unhandled exceptions (records at ERROR; the failed
device-list reads that HA's coordinator logs are counted apart), entities lost, re-authentication
flows, generations beyond the necessary, camera-entity unavailable seconds,
the worst camera's not-running seconds and availability (HA's sensor and the emulator's),
429s, orphan streams left at Google at the end and during the run (replaced while they lived,
then left to expire), the seconds cameras held two streams at once, late answers used. The
fault programme is described in the harness.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
import time

from .pytest_run import run_harness

HARNESS = Path(__file__).with_name("soak_harness.py")


def main(argv: list[str] | None = None) -> None:
    """Parse options, run the harness, print its JSON line."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__)
    parser.add_argument("--cameras", type=int, default=20, help="cameras (a fifth WebRTC)")
    parser.add_argument("--hours", type=float, default=24, help="virtual hours")
    parser.add_argument("--fault-rate", type=float, default=0.01, help="per-call fault rate")
    parser.add_argument("--seed", type=int, default=1, help="fault injection seed")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        result = run_harness(
            HARNESS,
            "SOAK",
            {
                "cameras": args.cameras,
                "hours": args.hours,
                "fault_rate": args.fault_rate,
                "seed": args.seed,
            },
        )
    except RuntimeError as err:
        raise SystemExit(f"the soak failed: {err}") from err
    result["wall_seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
