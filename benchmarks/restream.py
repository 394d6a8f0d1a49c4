"""What recorders get from the restream URLs: ffmpeg reading them through extensions and an outage.

    .venv/bin/python -m benchmarks.restream --seconds 330
    .venv/bin/python -m benchmarks.restream --modes keep --cameras 1 --seconds 3600 --no-outage

Runs scripts/develop's set-up (HA and the emulator as real processes; the emulator's
Google-shaped stream: rtsps, H.264 at 15 fps with a 4 s GOP, AAC; `--lifetime` s streams, so
an extension every `--lifetime` less the 15 s lead) once per `--modes` (keep: the emulator's
RTSP session survives extensions; rotate: it ends with its token). Each camera's URL comes
from `nest_streams.get_restream_url` and is read by real ffmpeg processes for `--seconds`:

- `plain`: `ffmpeg -i URL -c copy -f framemd5 -` (`-c copy` as a recorder does; framemd5 prints
  each packet's time stamps as it comes), on every camera;
- `frigate-like`: the same with the input arguments the README gives for Frigate (its
  `preset-http-reolink` without the 1000 s probe; `-rw_timeout 10000000`: a read timeout of
  10 s) on the last camera. Frigate's default `preset-rtsp-generic` and `preset-http-reolink`
  are tried once each (does ffmpeg start, how long until the first packet).

Unless `--no-outage`, the last camera's commands fail at the emulator for `--outage` seconds
(long enough for its stream to expire at Google), then it is started again.

A reader that exits is started again at once (a reconnect). Per reader it reports: packets,
the longest wait for the next video packet (wall clock; outside and during the outage), video
time stamps that go back and the largest forward step, reconnects. Per mode: extensions,
HA's CPU with nobody reading and while the readers read (percent of a core, and per reader),
HA's RSS sampled every minute, and the emulator's clients per stream URL. Prints ONE JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from dataclasses import dataclass, field
import json
from pathlib import Path
import re
import sys
import time
from typing import Any

import aiohttp
from yarl import URL

from .media_cost import cpu_seconds, ha_pid, login, rss_mb

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts" / "py"))

from develop import HomeAssistantClient, check_profile, running  # noqa: E402

SECRET = re.compile(r"secret=[^&\s]+")
# Frigate's input arguments (frigate/ffmpeg_presets.py), as ffmpeg gets them.
_FRIGATE_COMMON = (
    "-user_agent FFmpeg_Frigate -avoid_negative_ts make_zero -fflags +genpts+discardcorrupt"
)
FRIGATE_HTTP = (  # preset-http-reolink
    f"{_FRIGATE_COMMON} -flags low_delay -strict experimental -analyzeduration 1000M"
    " -probesize 1000M -rw_timeout 10000000"
).split()
FRIGATE_LIKE = (  # preset-http-reolink without its 1000 s probe (see the README)
    f"{_FRIGATE_COMMON} -flags low_delay -rw_timeout 10000000"
).split()
FRIGATE_RTSP = (  # Frigate's default input arguments, preset-rtsp-generic
    f"{_FRIGATE_COMMON} -rtsp_transport tcp -timeout 10000000 -use_wallclock_as_timestamps 1"
).split()


@dataclass
class Reader:
    """One ffmpeg reading one URL, started again whenever it exits."""

    name: str
    url: str
    input_args: list[str]
    arrivals: list[float] = field(default_factory=list)
    """Wall-clock times of video packets."""
    times: list[float] = field(default_factory=list)
    """Their time stamps (seconds), per process run (a reconnect starts a new list)."""
    back: int = 0
    largest_step: float = 0.0
    starts: int = 0
    errors: list[str] = field(default_factory=list)
    first: asyncio.Event = field(default_factory=asyncio.Event)
    """Set at the first video packet."""

    async def run(self, stop: asyncio.Event) -> None:
        """Read until `stop`."""
        while not stop.is_set():
            self.starts += 1
            process = await asyncio.create_subprocess_exec(
                "ffmpeg",
                "-hide_banner",
                "-nostats",
                "-loglevel",
                "error",
                *self.input_args,
                "-i",
                self.url,
                "-c",
                "copy",
                "-flush_packets",
                "1",
                "-f",
                "framemd5",
                "-",
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            waiting = asyncio.create_task(stop.wait())
            reading = asyncio.create_task(self._read(process))
            await asyncio.wait({waiting, reading}, return_when=asyncio.FIRST_COMPLETED)
            waiting.cancel()
            if process.returncode is None:
                process.terminate()
            await reading
            assert process.stderr is not None
            if error := (await process.stderr.read()).decode(errors="replace").strip():
                self.errors.append(SECRET.sub("secret=…", error.splitlines()[-1])[:200])

    async def _read(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        bases: dict[str, float] = {}
        last: float | None = None
        async for raw in process.stdout:
            line = raw.decode(errors="replace").strip()
            if line.startswith("#tb "):
                index, base = line[4:].split(":")
                num, den = base.strip().split("/")
                bases[index.strip()] = int(num) / int(den)
                continue
            if line.startswith("#") or not line:
                continue
            fields = [part.strip() for part in line.split(",")]
            if fields[0] != "0":  # video is stream 0
                continue
            stamp = int(fields[1]) * bases.get("0", 1 / 90000)
            self.arrivals.append(time.monotonic())
            self.first.set()
            if last is not None:
                step = stamp - last
                if step <= 0:
                    self.back += 1
                self.largest_step = max(self.largest_step, step)
            last = stamp
            self.times.append(stamp)
        await process.wait()

    def report(self, outage: tuple[float, float] | None) -> dict[str, Any]:
        """What the reader saw."""
        gaps = [(b - a, a) for a, b in zip(self.arrivals, self.arrivals[1:], strict=False) if b > a]

        def during(at: float) -> bool:
            return outage is not None and outage[0] - 5 <= at <= outage[1] + 60

        return {
            "packets": len(self.arrivals),
            "longest_gap_s": round(max((g for g, at in gaps if not during(at)), default=0), 2),
            "longest_gap_in_outage_s": round(max((g for g, at in gaps if during(at)), default=0), 1)
            if outage
            else None,
            "time_stamps_back": self.back,
            "largest_time_step_s": round(self.largest_step, 2),
            "reconnects": self.starts - 1,
            "errors": sorted(set(self.errors))[:3],
        }


async def first_packet(url: str, input_args: list[str], within: float) -> float | None:
    """Seconds until ffmpeg with `input_args` gives its first packet of `url` (None: not
    within `within` seconds)."""
    reader = Reader("first", url, input_args)
    stop = asyncio.Event()
    began = time.monotonic()
    task = asyncio.create_task(reader.run(stop))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(reader.first.wait(), within)
    stop.set()
    await task
    return round(reader.arrivals[0] - began, 2) if reader.arrivals else None


async def restream_urls(ha: HomeAssistantClient, cameras: list[str]) -> dict[str, str]:
    """Each camera's URL, from the action's response (with HA's address as we reach it)."""
    urls = {}
    for camera in cameras:
        url = URL(await ha.restream_url(camera))
        urls[camera] = f"{ha.base}{url.path_qs}"
    return urls


async def camera_entities(ha: HomeAssistantClient) -> list[str]:
    """The integration's camera entities."""
    async with ha.session.get(f"{ha.base}/api/states", headers=ha._headers) as response:
        states = await response.json()
    return sorted(s["entity_id"] for s in states if s["entity_id"].startswith("camera."))


async def emulator_report(session: aiohttp.ClientSession, emulator: str) -> dict[str, Any]:
    """The emulator's metrics."""
    async with session.get(f"{emulator}/emulator/metrics") as response:
        report: dict[str, Any] = await response.json()
    return report


async def extensions_by_device(session: aiohttp.ClientSession, emulator: str) -> dict[str, int]:
    """Extensions Google accepted so far, per camera."""
    async with session.get(f"{emulator}/emulator/streams") as response:
        streams = (await response.json())["streams"]
    counts: dict[str, int] = {}
    for stream in streams:
        device = stream["device_id"].rsplit("/", 1)[-1]
        counts[device] = counts.get(device, 0) + int(stream["extensions"])
    return counts


async def faults(session: aiohttp.ClientSession, emulator: str, change: dict[str, Any]) -> None:
    """Change the emulator's standing faults."""
    async with session.post(f"{emulator}/emulator/faults", json=change) as response:
        response.raise_for_status()


async def one_mode(args: argparse.Namespace, mode: str) -> dict[str, Any]:
    """One set-up: readers for `args.seconds`, an outage in the middle."""
    config = ROOT / "artifacts" / f"restream-config-{args.port}"
    profile = check_profile(
        config,
        cameras=args.cameras,
        webrtc=0,
        battery=0,
        lifetime=args.lifetime,
        rtsp_mode=mode,
        port=args.port,
        emulator_port=args.port + 642,
        video_size=args.video_size,
        gop=4.0,
    )
    result: dict[str, Any] = {}
    async with (
        running(profile, start_within=180) as (ha_url, emulator),
        aiohttp.ClientSession() as session,
    ):
        pid = ha_pid(config)
        ha = await login(session, ha_url)
        cameras = await camera_entities(ha)
        urls = await restream_urls(ha, cameras)
        report = await emulator_report(session, emulator)
        device_ids = sorted(report["availability"]["per_camera"])
        start_cpu, began = cpu_seconds(pid), time.monotonic()
        await asyncio.sleep(30)
        idle = cpu_seconds(pid) - start_cpu
        result["cpu_percent_no_reader"] = round(100 * idle / (time.monotonic() - began), 2)

        # Frigate's default input arguments, once (they are for RTSP).
        probe = await asyncio.create_subprocess_exec(
            "ffmpeg",
            "-hide_banner",
            "-loglevel",
            "error",
            *FRIGATE_RTSP,
            "-i",
            urls[cameras[0]],
            "-t",
            "2",
            "-c",
            "copy",
            "-f",
            "null",
            "-",
            stderr=asyncio.subprocess.PIPE,
        )
        _, error = await probe.communicate()
        result["frigate_default_input_args"] = {
            "exit": probe.returncode,
            "error": error.decode(errors="replace").strip().splitlines()[-1:],
        }
        result["frigate_http_preset_first_packet_s"] = await first_packet(
            urls[cameras[0]], FRIGATE_HTTP, 30
        )

        readers = [Reader(f"plain {camera}", urls[camera], []) for camera in cameras]
        # On the camera that has the outage: its read timeout ends it, it reconnects.
        readers.append(Reader(f"frigate-like {cameras[-1]}", urls[cameras[-1]], FRIGATE_LIKE))
        before = await emulator_report(session, emulator)
        extended_before = await extensions_by_device(session, emulator)
        stop = asyncio.Event()
        tasks = [asyncio.create_task(reader.run(stop)) for reader in readers]
        began, start_cpu = time.monotonic(), cpu_seconds(pid)
        rss = [rss_mb(pid)]
        outage: tuple[float, float] | None = None
        failing = device_ids[-1]
        while (elapsed := time.monotonic() - began) < args.seconds:
            if not args.no_outage and outage is None and elapsed > args.seconds / 3:
                await faults(session, emulator, {"failing_devices": [failing]})
                started = time.monotonic()
                await asyncio.sleep(args.outage)
                await faults(session, emulator, {"failing_devices": []})
                await ha.post("/api/services/nest_streams/start_stream", {"entity_id": cameras[-1]})
                outage = (started, time.monotonic())
            await asyncio.sleep(min(60.0, args.seconds - elapsed))
            rss.append(rss_mb(pid))
        used, wall = cpu_seconds(pid) - start_cpu, time.monotonic() - began
        stop.set()
        await asyncio.gather(*tasks)
        after = await emulator_report(session, emulator)
        extended_after = await extensions_by_device(session, emulator)
        calls_before, calls_after = before["calls"], after["calls"]
        result.update(
            {
                "extensions_by_camera": {
                    device: count - extended_before.get(device, 0)
                    for device, count in sorted(extended_after.items())
                },
                "extension_calls": calls_after.get("executeCommand:ExtendRtspStream", 0)
                - calls_before.get("executeCommand:ExtendRtspStream", 0),
                "generations": calls_after.get("executeCommand:GenerateRtspStream", 0)
                - calls_before.get("executeCommand:GenerateRtspStream", 0),
                "readers": {reader.name: reader.report(outage) for reader in readers},
                "outage_s": round(outage[1] - outage[0]) if outage else None,
                "cpu_percent_reading": round(100 * used / wall, 2),
                "cpu_percent_per_reader": round(100 * (used / wall - idle / 30) / len(readers), 2),
                "rss_mb": {"first": rss[0], "last": rss[-1], "max": max(rss)},
                "clients_per_url_max": after["media"]["sessions"]["clients_per_url_max"],
            }
        )
        await ha.close()
    return result


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    """Every mode."""
    results: dict[str, Any] = {
        "seconds": args.seconds,
        "lifetime": args.lifetime,
        "cameras": args.cameras,
        "video_size": args.video_size,
    }
    for mode in args.modes:
        results[mode] = await one_mode(args, mode)
    return results


def main(argv: list[str] | None = None) -> None:
    """Command line."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.restream", description=__doc__)
    parser.add_argument("--modes", nargs="+", default=["keep", "rotate"])
    parser.add_argument("--cameras", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=330.0, help="read per mode")
    parser.add_argument("--lifetime", type=float, default=60.0, help="Google's stream lifetime")
    parser.add_argument("--outage", type=float, default=75.0, help="seconds the commands fail")
    parser.add_argument("--no-outage", action="store_true")
    parser.add_argument("--video-size", default="640x360")
    parser.add_argument("--port", type=int, default=8127, help="HA's (the emulator's: +642)")
    args = parser.parse_args(argv)
    print(json.dumps(asyncio.run(main_async(args))))


if __name__ == "__main__":
    main()
