"""What the cameras' picture and sound cost Home Assistant: CPU per camera-hour, media on/off.

    .venv/bin/python -m benchmarks.media_cost --cameras 14 --seconds 180 --video-size 640x360
    .venv/bin/python -m benchmarks.media_cost --cameras 4 --seconds 180 --video-size 1280x720

Runs scripts/develop's set-up (HA and the emulator as real processes, the emulator's
Google-shaped stream: rtsps, H.264 at 15 fps with a 4 s GOP, AAC; 14 encoders at 1280x720 would
take more than this machine's 2 cores, so many cameras are measured smaller) and measures HA's own
CPU time (/proc) over `--seconds` in each phase, once every camera runs:

- `media_off`: the emulator serves no video (only keep-alive: the baseline);
- `idle`: media on, nobody looks (no RTSP session is open: the feeds run on demand);
- `stills`: a dashboard's worth of still requests, every camera every 10 s (each camera's one
  RTSP session stays open, its key frames are decoded for the stills);
- `stills_2_viewers`: the same plus 2 live viewers (aiortc peers through HA's WebRTC
  websocket API: relayed H.264 and Opus transcoded from the camera's AAC);
- `mjpeg`: the same stills plus 1 MJPEG client (every frame of one camera decoded).

Prints ONE JSON line: per phase HA's CPU (percent of one core, and seconds per camera-hour),
HA's RSS at the end, and the emulator's session counts (`clients_per_url_max` must stay 1).
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator
import contextlib
import json
import os
from pathlib import Path
import sys
import time
from typing import Any

import aiohttp
import aioice.ice
from aiortc import RTCPeerConnection, RTCSessionDescription

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts" / "py"))

from develop import (  # noqa: E402
    HomeAssistantClient,
    Options,
    check_profile,
    running,
)

TICKS = os.sysconf("SC_CLK_TCK")
_host_addresses = aioice.ice.get_host_addresses
aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: (
    _host_addresses(use_ipv4=use_ipv4, use_ipv6=use_ipv6) or (["127.0.0.1"] if use_ipv4 else [])
)


def ha_pid(config: Path) -> int:
    """The pid of the Home Assistant process run with `config`."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            command = (entry / "cmdline").read_bytes().split(b"\0")
            ours = any(part.endswith(b"dev_hass.py") for part in command)
            if ours and str(config).encode() in command:
                return int(entry.name)
    raise RuntimeError("Home Assistant's process was not found")


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) the process used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_mb(pid: int) -> float:
    """The process's resident memory, MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


async def login(session: aiohttp.ClientSession, ha_url: str) -> HomeAssistantClient:
    """A logged-in client of HA's REST and websocket APIs."""
    ha = HomeAssistantClient(session, ha_url)
    await ha.log_in()
    return ha


async def stills(ha: HomeAssistantClient, entities: list[str], stop: asyncio.Event) -> int:
    """Every camera's still every 10 s (as a dashboard's picture cards ask), until `stop`."""
    fetched = 0
    while not stop.is_set():
        for entity in entities:
            async with ha.session.get(
                f"{ha.base}/api/camera_proxy/{entity}", headers=ha._headers
            ) as response:
                await response.read()
                fetched += response.status == 200
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 10)
    return fetched


@contextlib.asynccontextmanager
async def viewer(ha: HomeAssistantClient, entity: str) -> AsyncIterator[dict[str, int]]:
    """A live viewer of `entity` through HA's WebRTC websocket API; counts what it receives."""
    ws = await ha.session.ws_connect(f"{ha.base}/api/websocket")
    await ws.receive_json()
    await ws.send_json({"type": "auth", "access_token": ha.token})
    await ws.receive_json()
    peer = RTCPeerConnection()
    peer.createDataChannel("dataSendChannel")
    peer.addTransceiver("audio", direction="recvonly")
    peer.addTransceiver("video", direction="recvonly")
    counts = {"audio": 0, "video": 0}
    readers: list[asyncio.Task[None]] = []

    async def read(track: Any) -> None:
        while True:
            await track.recv()
            counts[track.kind] += 1

    peer.on("track", lambda track: readers.append(asyncio.create_task(read(track))))
    await peer.setLocalDescription(await peer.createOffer())
    await ws.send_json(
        {
            "id": 1,
            "type": "camera/webrtc/offer",
            "entity_id": entity,
            "offer": peer.localDescription.sdp,
        }
    )
    while True:
        message = await ws.receive_json()
        event = message.get("event", {})
        if event.get("type") == "answer":
            await peer.setRemoteDescription(RTCSessionDescription(event["answer"], "answer"))
            break
        if event.get("type") == "error" or message.get("success") is False:
            raise RuntimeError(f"the live view was refused: {message}")
    try:
        yield counts
    finally:
        for task in readers:
            task.cancel()
        await peer.close()
        await ws.close()


async def measure(pid: int, seconds: float, cameras: int) -> dict[str, float]:
    """HA's CPU over `seconds` (percent of a core, and CPU seconds per camera-hour)."""
    start, began = cpu_seconds(pid), time.monotonic()
    await asyncio.sleep(seconds)
    used, wall = cpu_seconds(pid) - start, time.monotonic() - began
    return {
        "cpu_percent": round(100 * used / wall, 2),
        "cpu_s_per_camera_hour": round(used / wall * 3600 / cameras, 1),
    }


async def phase(
    options: Options, phases: list[str], seconds: float, results: dict[str, Any]
) -> None:
    """One HA and emulator; the given phases one after the other."""
    async with (
        running(options, start_within=600) as (ha_url, emulator_url),
        aiohttp.ClientSession() as session,
    ):
        pid = ha_pid(options.config)
        ha = await login(session, ha_url)
        entities = [f"camera.room_{i:02d}_camera_{i:02d}" for i in range(1, options.cameras + 1)]
        await asyncio.sleep(30)  # settle after start-up
        for name in phases:
            stop = asyncio.Event()
            load: list[asyncio.Task[Any]] = []
            async with contextlib.AsyncExitStack() as stack:
                if name not in ("media_off", "idle"):
                    load.append(asyncio.create_task(stills(ha, entities, stop)))
                    await asyncio.sleep(15)  # every session open
                received = [
                    await stack.enter_async_context(viewer(ha, entity))
                    for entity in (entities[:2] if name == "stills_2_viewers" else [])
                ]
                if name == "mjpeg":
                    load.append(asyncio.create_task(mjpeg(ha, entities[0], stop)))
                figures: dict[str, Any] = await measure(pid, seconds, options.cameras)
                stop.set()
                done = await asyncio.gather(*load)
                figures["stills_fetched"] = done[0] if done else 0
                if name == "mjpeg":
                    figures["mjpeg_frames"] = done[1]
                figures["viewers_received"] = received
            async with session.get(f"{emulator_url}/emulator/metrics") as response:
                media = (await response.json())["media"]
            figures["rss_mb"] = rss_mb(pid)
            figures["emulator_sessions"] = media["sessions"] if media else None
            results[name] = figures
            print(json.dumps({name: figures}), file=sys.stderr, flush=True)
        await ha.close()


async def mjpeg(ha: HomeAssistantClient, entity: str, stop: asyncio.Event) -> int:
    """An MJPEG client of `entity` until `stop`: the frames it received."""
    frames = 0
    async with ha.session.get(
        f"{ha.base}/api/camera_proxy_stream/{entity}", headers=ha._headers
    ) as response:
        while not stop.is_set():
            chunk = await response.content.readline()
            if not chunk:
                break
            frames += chunk.startswith(b"--frameboundary")
    return frames


async def main_async(cameras: int, seconds: float, video_size: str) -> dict[str, Any]:
    """Both set-ups, every phase."""
    results: dict[str, Any] = {"cameras": cameras, "seconds": seconds, "video_size": video_size}
    config = ROOT / "artifacts" / "media-cost-config"
    common = {
        "cameras": cameras,
        "webrtc": 0,
        "battery": 0,
        "qpm": 60,
        "port": 8126,
        "emulator_port": 8768,
        "video_size": video_size,
        "gop": 4.0,
    }
    await phase(check_profile(config, media=False, **common), ["media_off"], seconds, results)
    await phase(
        check_profile(config, **common),
        ["idle", "stills", "stills_2_viewers", "mjpeg"],
        seconds,
        results,
    )
    return results


def main(argv: list[str] | None = None) -> None:
    """Command line."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.media_cost", description=__doc__)
    parser.add_argument("--cameras", type=int, default=14)
    parser.add_argument("--seconds", type=float, default=180.0, help="measured per phase")
    parser.add_argument("--video-size", default="640x360", help="the cameras' picture size")
    args = parser.parse_args(argv)
    print(json.dumps(asyncio.run(main_async(args.cameras, args.seconds, args.video_size))))


if __name__ == "__main__":
    main()
