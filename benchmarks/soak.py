"""Soak: nest_streams in Home Assistant for a virtual day with every fault of the emulator mixed.

    .venv/bin/python -m benchmarks.soak --cameras 20 --hours 24 --fault-rate 0.01 --seed 1

Runs `benchmarks/soak_harness.py` under pytest (HA's test harness, freezer time) in a
subprocess and prints ONE JSON line: unhandled exceptions (records at ERROR), entities lost,
re-authentication flows, generations beyond the necessary, camera-entity unavailable seconds,
the worst camera's not-running seconds and availability (HA's sensor and the emulator's),
429s, orphan streams left at Google. The fault programme is described in the harness.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import subprocess
import sys
import tempfile
import time

HARNESS = Path(__file__).with_name("soak_harness.py")
ROOT = HARNESS.parent.parent


def main(argv: list[str] | None = None) -> None:
    """Parse options, run the harness, print its JSON line."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__)
    parser.add_argument("--cameras", type=int, default=20, help="cameras (a fifth WebRTC)")
    parser.add_argument("--hours", type=float, default=24, help="virtual hours")
    parser.add_argument("--fault-rate", type=float, default=0.01, help="per-call fault rate")
    parser.add_argument("--seed", type=int, default=1, help="fault injection seed")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        output = Path(folder) / "soak.jsonl"
        environment = {
            **os.environ,
            "SOAK_CAMERAS": str(args.cameras),
            "SOAK_HOURS": str(args.hours),
            "SOAK_FAULT_RATE": str(args.fault_rate),
            "SOAK_SEED": str(args.seed),
            "SOAK_OUTPUT": str(output),
        }
        started = time.perf_counter()
        completed = subprocess.run(
            [sys.executable, "-m", "pytest", str(HARNESS), "-q", "-p", "no:logging", "-x"],
            cwd=ROOT,
            env=environment,
            capture_output=True,
            text=True,
            check=False,
        )
        if completed.returncode != 0 or not output.exists():
            tail = "\n".join(completed.stdout.splitlines()[-40:])
            raise SystemExit(f"the soak failed:\n{tail}")
        result = json.loads(output.read_text().splitlines()[-1])
        result["wall_seconds"] = round(time.perf_counter() - started, 1)
        print(json.dumps(result))


if __name__ == "__main__":
    main()
