"""How many cameras the core keeps streaming under one project's quota, measured on the emulator.

    .venv/bin/python -m benchmarks.capacity --cameras 45 --qpm 10 --hours 24 --fault-rate 0.01
    .venv/bin/python -m benchmarks.capacity --find-max --seeds 1-8 --hours 24 --fault-rate 0.01

Runs the real core (queue, limiter, camera state machines) and SDM adapter (google-nest-sdm)
against the in-process emulator on a virtual-time event loop, so 24 hours take seconds. Prints
ONE JSON line.

Availability is counted for every camera from the end of a start-up allowance (one stream
lifetime, 300 s) to the end; a camera that never streamed counts as 0. Two views: the
emulator's (`availability`, `min_camera_availability`: Google holds a valid stream) and the
client's (`client_*`: the scheduler holds a running, unexpired stream, i.e. what the entity
shows). `from_start_min_camera_availability` counts from t=0 (start-up included) and
`all_running_after_s` is the start-up itself. The emulator's project quota follows `--qpm`
unless `--google-qpm` says otherwise.

With several seeds (`--seeds 1-8`) the runs go in parallel and the line holds each run's
figures plus the minimum and median of each availability over the seeds. `--find-max` searches
the largest camera count for which EVERY seed keeps EVERY camera at >= 99.95 % client-held and
emulator-held, with every camera admitted.

`--foreign-qpm 4 --foreign-minutes 60 --hours 3` lets another app spend 4 of the project's
commands a minute for the first hour; `shared` then gives our 429s per hour (after the first
10 minutes, while it runs and after), how many cameras stayed admitted, their worst
availability, and how long after it stopped our rate and admission were whole again.
"""

from __future__ import annotations

import argparse
from concurrent.futures import ProcessPoolExecutor
import json
import logging
import multiprocessing
import os
import statistics
import time
from typing import Any

from sdm_emulator.virtual_time import run_virtual

from .harness import simulate

TARGET = 0.9995
AVAILABILITIES = (
    "availability",
    "min_camera_availability",
    "client_availability",
    "client_min_camera_availability",
    "from_start_min_camera_availability",
)


def _run(args: argparse.Namespace, cameras: int, seed: int) -> dict[str, Any]:
    logging.basicConfig(level=logging.ERROR)
    started = time.perf_counter()
    result = run_virtual(
        simulate(
            cameras=cameras,
            qpm=args.qpm,
            google_qpm=args.google_qpm,
            device_quota_rate=args.device_429_rate,
            hours=args.hours,
            fault_rate=args.fault_rate,
            seed=seed,
            foreign_qpm=args.foreign_qpm,
            foreign_minutes=args.foreign_minutes,
            device_qph=args.device_qph,
            quota_window=args.quota_window,
        )
    )
    result["wall_seconds"] = round(time.perf_counter() - started, 2)
    return result


def seeds(text: str) -> list[int]:
    """`3`, `1-8` or `1,4,6` as a list of seeds."""
    result: list[int] = []
    for part in text.split(","):
        low, _, high = part.partition("-")
        result.extend(range(int(low), int(high or low) + 1))
    if not result:
        raise argparse.ArgumentTypeError("no seed")
    return result


def run_seeds(args: argparse.Namespace, cameras: int) -> dict[str, Any]:
    """One run per seed (in parallel); one run's figures, or a summary of several."""
    if len(args.seeds) == 1:
        return _run(args, cameras, args.seeds[0])
    workers = min(len(args.seeds), os.cpu_count() or 1)
    # spawn: no fork of a process with threads, and no socket (forkserver's) to set up.
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        runs = list(
            pool.map(_run, [args] * len(args.seeds), [cameras] * len(args.seeds), args.seeds)
        )
    summary: dict[str, Any] = {"cameras": cameras, "seeds": args.seeds}
    for key in AVAILABILITIES:
        values = [run[key] if run[key] is not None else 0.0 for run in runs]
        summary[key] = min(values)
        summary[f"{key}_median"] = statistics.median(values)
    summary["client_longest_outage_s"] = max(run["client_longest_outage_s"] or 0 for run in runs)
    summary["not_admitted"] = max(run["not_admitted"] for run in runs)
    summary["quota_rejections"] = max(run["quota_rejections"] for run in runs)
    summary["peak_calls_60s"] = max(run["peak_calls_60s"] for run in runs)
    summary["orphans_per_day_max"] = max(run["orphans_per_day"] or 0 for run in runs)
    summary["orphans_per_day_median"] = statistics.median(
        run["orphans_per_day"] or 0 for run in runs
    )
    avoidable = [
        (run["orphans_per_day"] or 0) - (run["unreadable_orphans_per_day"] or 0) for run in runs
    ]
    summary["avoidable_orphans_per_day_max"] = round(max(avoidable), 1)
    summary["avoidable_orphans_per_day_median"] = round(statistics.median(avoidable), 1)
    summary["avoidable_orphan_overlap_s_max"] = max(
        run["other_orphan_overlap_s_max"] for run in runs
    )
    summary["double_stream_share_max"] = max(run["double_stream_share"] for run in runs)
    summary["late_answers"] = sum(run["late_answers"] for run in runs)
    if args.foreign_qpm:
        shared = [run["shared"] for run in runs]
        summary["shared"] = {
            "worst_our_429s_per_hour_during": max(r["our_429s_per_hour_during"] for r in shared),
            "worst_admitted_throughout_min_availability": min(
                r["admitted_throughout_min_availability"] or 0.0 for r in shared
            ),
            "fewest_admitted": min(r["fewest_admitted"] for r in shared),
            "worst_after_min_availability": min(r["after_min_availability"] or 0.0 for r in shared),
            "slowest_full_rate_after_s": max(
                (r["full_rate_after_s"] for r in shared if r["full_rate_after_s"] is not None),
                default=None,
            ),
        }
    summary["runs"] = runs
    return summary


def holds(result: dict[str, Any]) -> bool:
    """Whether every camera of every seed stayed >= TARGET, all admitted."""
    return (
        result["not_admitted"] == 0
        and (result["min_camera_availability"] or 0.0) >= TARGET
        and (result["client_min_camera_availability"] or 0.0) >= TARGET
    )


def find_max(args: argparse.Namespace) -> dict[str, Any]:
    """The largest camera count that holds on every seed (binary search)."""
    best: dict[str, Any] | None = None
    tried: dict[int, bool] = {}
    low, high = args.lowest, max(2, args.cameras)
    while low <= high:
        middle = (low + high) // 2
        result = run_seeds(args, middle)
        tried[middle] = holds(result)
        if tried[middle]:
            best, low = result, middle + 1
        else:
            high = middle - 1
    return {
        "find_max": best["cameras"] if best else 0,
        "target": TARGET,
        "seeds": args.seeds,
        "tried": tried,
        "at_max": best,
    }


def main(argv: list[str] | None = None) -> None:
    """Parse options, run, print one JSON line."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.capacity",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--cameras", type=int, default=45, help="cameras (upper bound with --find-max)"
    )
    parser.add_argument(
        "--qpm", type=float, default=10, help="commands per minute we allow ourselves"
    )
    parser.add_argument(
        "--google-qpm", type=float, default=None, help="the emulator's quota (default: --qpm)"
    )
    parser.add_argument("--hours", type=float, default=24, help="virtual hours")
    parser.add_argument("--fault-rate", type=float, default=0.01, help="per-call fault rate")
    parser.add_argument(
        "--device-429-rate",
        type=float,
        default=0.0,
        help="share of commands refused by Google's per-device limit (another app on a camera)",
    )
    parser.add_argument(
        "--foreign-qpm",
        type=float,
        default=0.0,
        help="another app spends the project's quota at this rate (e.g. HA's own nest)",
    )
    parser.add_argument(
        "--foreign-minutes", type=float, default=60.0, help="for the first this many minutes"
    )
    parser.add_argument(
        "--device-qph",
        type=int,
        default=None,
        help="Google's hourly limit per device in the emulator (unpublished; e.g. 100)",
    )
    parser.add_argument(
        "--quota-window",
        choices=("fixed", "sliding"),
        default="fixed",
        help="how the emulator counts a minute (fixed: as documented)",
    )
    parser.add_argument("--seed", type=int, default=None, help="one fault injection seed")
    parser.add_argument("--seeds", type=seeds, default=None, help="seeds, e.g. 1-8 or 1,3")
    parser.add_argument("--find-max", action="store_true", help="search the largest camera count")
    parser.add_argument(
        "--lowest", type=int, default=1, help="the smallest count --find-max tries (default 1)"
    )
    args = parser.parse_args(argv)
    args.seeds = args.seeds or [1 if args.seed is None else args.seed]
    logging.basicConfig(level=logging.ERROR)
    if args.find_max:
        args.cameras = max(args.cameras, 60)
        print(json.dumps(find_max(args)))
    else:
        print(json.dumps(run_seeds(args, args.cameras)))


if __name__ == "__main__":
    main()
