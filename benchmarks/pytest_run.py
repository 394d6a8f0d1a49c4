"""Run a benchmark harness (a pytest file using HA's test harness) in a subprocess."""

from __future__ import annotations

import json
import os
from pathlib import Path
import subprocess
import sys
import tempfile
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def run_harness(harness: Path, prefix: str, parameters: dict[str, Any]) -> dict[str, Any]:
    """Run `harness` with `parameters` as PREFIX_NAME variables; return its JSON line.

    The harness writes one JSON line to the file named by PREFIX_OUTPUT. Raises RuntimeError
    with the tail of pytest's output when it fails.
    """
    with tempfile.TemporaryDirectory() as folder:
        output = Path(folder) / "result.jsonl"
        environment = {
            **os.environ,
            **{f"{prefix}_{name.upper()}": str(value) for name, value in parameters.items()},
            f"{prefix}_OUTPUT": str(output),
        }
        completed = subprocess.run(
            [sys.executable, "-m", "pytest", str(harness), "-q", "-p", "no:logging", "-x"],
            cwd=ROOT,
            env=environment,
            capture_output=True,
            text=True,
            check=False,
        )
        if completed.returncode != 0 or not output.exists():
            tail = "\n".join(completed.stdout.splitlines()[-30:])
            raise RuntimeError(f"{harness.name} {parameters} failed:\n{tail}")
        return dict(json.loads(output.read_text().splitlines()[-1]))
