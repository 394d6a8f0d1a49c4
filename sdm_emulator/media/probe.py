"""Read an RTSP URL with PyAV (FFmpeg) and print when each frame arrived, as a viewer would.

`python -m sdm_emulator.media.probe URL --seconds 10` prints one JSON line at the end:
`{"frames": [t, ...], "ended": "eof" | "error: ..." | "timeout", "first_frame_s": ...}` with
seconds since the start. Tests and benchmarks run it as a child process.
"""

from __future__ import annotations

import argparse
import json
import time

import av


def probe(url: str, seconds: float) -> dict[str, object]:
    """Decode `url` for up to `seconds`; the arrival time of every frame."""
    start = time.monotonic()
    frames: list[float] = []
    ended = "timeout"
    try:
        with av.open(url, options={"rtsp_transport": "tcp"}, timeout=5) as container:
            for _frame in container.decode(video=0):
                frames.append(round(time.monotonic() - start, 3))
                if time.monotonic() - start >= seconds:
                    break
            else:
                ended = "eof"
    except av.FFmpegError as err:
        ended = f"error: {err}"
    return {"frames": frames, "ended": ended, "first_frame_s": frames[0] if frames else None}


def main() -> None:
    """Command line."""
    parser = argparse.ArgumentParser(prog="python -m sdm_emulator.media.probe")
    parser.add_argument("url")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    print(json.dumps(probe(args.url, args.seconds)), flush=True)


if __name__ == "__main__":
    main()
