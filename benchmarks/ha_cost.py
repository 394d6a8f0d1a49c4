"""What keeping streams alive costs Home Assistant per command, at several camera counts.

    .venv/bin/python -m benchmarks.ha_cost --cameras 45,450 --qpm 10,100

Runs `benchmarks/ha_cost_harness.py` (HA's test harness, freezer time, the in-process emulator)
once per (cameras, qpm) pair in a subprocess and prints ONE JSON line: per run the CPU
milliseconds HA spent per accepted command (the harness's own time steps subtracted) and the
state changes written per command. Keeping streams alive should cost the same per command
whatever the number of cameras: a command changes one camera.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
import time

from .pytest_run import run_harness

HARNESS = Path(__file__).with_name("ha_cost_harness.py")


def main(argv: list[str] | None = None) -> None:
    """Parse options, run the harness per pair, print one JSON line."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ha_cost", description=__doc__)
    parser.add_argument("--cameras", default="45,450", help="camera counts, comma-separated")
    parser.add_argument("--qpm", default="10,100", help="commands per minute, one per count")
    parser.add_argument("--minutes", type=float, default=10, help="measured virtual minutes")
    args = parser.parse_args(argv)
    counts = [int(value) for value in args.cameras.split(",")]
    rates = [float(value) for value in args.qpm.split(",")]
    if len(rates) != len(counts):
        raise SystemExit("--qpm needs one value per --cameras value")
    runs = []
    for cameras, qpm in zip(counts, rates, strict=True):
        started = time.perf_counter()
        try:
            result = run_harness(
                HARNESS, "HACOST", {"cameras": cameras, "qpm": qpm, "minutes": args.minutes}
            )
        except RuntimeError as err:
            raise SystemExit(f"the HA cost benchmark failed: {err}") from err
        result["wall_seconds"] = round(time.perf_counter() - started, 1)
        runs.append(result)
    print(json.dumps({"runs": runs}))


if __name__ == "__main__":
    main()
