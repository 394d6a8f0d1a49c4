"""What live viewers leave behind in Home Assistant, and how fast concurrent offers are answered.

    .venv/bin/python -m benchmarks.viewer_leaks                 # about 10 minutes
    .venv/bin/python -m benchmarks.viewer_leaks --hold 60       # a shorter non-connecting phase

Runs scripts/develop's set-up (HA and the emulator as real processes, Google-shaped rtsps
streams) with 2 RTSP cameras and 1 WebRTC camera, and drives HA's WebRTC websocket API as a
browser would (aiortc peers), measuring HA's process from /proc (RSS, threads, open sockets)
and the emulator's open RTSP sessions and WebRTC streams:

- `early_closes`: 30 viewers of an RTSP camera and 5 of the WebRTC camera that leave right after
  their offer, before the answer; measured 45 s later (after the feed's 30 s idle time);
- `concurrent`: 30 offers to one RTSP camera at once: the time to each answer; then all leave;
- `non_connecting`: 3 viewers that get their answer but never connect (ICE never completes),
  held `--hold` seconds (300 by default), sampled every 30 s; then they leave.

Prints ONE JSON line with every phase's figures against the baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
from pathlib import Path
import statistics
import sys
import time
from typing import Any

import aiohttp
from aiortc import RTCPeerConnection

from benchmarks.media_cost import ROOT, ha_pid, login, rss_mb

sys.path.insert(0, str(ROOT / "scripts" / "py"))

from develop import HomeAssistantClient, check_profile, running

TCP_STATES = {"01": "ESTABLISHED", "06": "TIME_WAIT", "08": "CLOSE_WAIT", "0A": "LISTEN"}
RTSP = "camera.room_01_camera_01"
WEBRTC = "camera.room_03_webrtc_camera_01"


def process(pid: int) -> dict[str, Any]:
    """HA's RSS, threads and open sockets."""
    threads = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            threads = int(line.split()[1])
    inodes: set[str] = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            if (link := os.readlink(fd)).startswith("socket:["):
                inodes.add(link[8:-1])
    sockets = len(inodes)
    kinds: dict[str, int] = {}  # by protocol and state, e.g. "udp", "tcp ESTABLISHED"
    for proto in ("tcp", "tcp6", "udp", "udp6"):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/net/{proto}").read_text().splitlines()[1:]:
                fields = line.split()
                if fields[9] in inodes:
                    kind = proto.rstrip("6")
                    if kind == "tcp":
                        kind += " " + TCP_STATES.get(fields[3], fields[3])
                    kinds[kind] = kinds.get(kind, 0) + 1
    names: dict[str, int] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            name = (task / "comm").read_text().strip()
            names[name] = names.get(name, 0) + 1
    return {
        "rss_mb": rss_mb(pid),
        "threads": threads,
        "thread_names": dict(sorted(names.items())),
        "sockets": sockets,
        "socket_kinds": dict(sorted(kinds.items())),
    }


async def emulator(session: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    """The emulator's open RTSP sessions and the WebRTC streams Google generated so far."""
    async with session.get(f"{url}/emulator/metrics") as response:
        report = await response.json()
    async with session.get(f"{url}/emulator/streams") as response:
        streams = (await response.json())["streams"]
    webrtc = [stream for stream in streams if stream["protocol"] == "WEB_RTC"]
    return {
        "rtsp_sessions_open": (report.get("media") or {}).get("sessions", {}).get("open"),
        "webrtc_generated": len(webrtc),
        "webrtc_extended": sum(stream["extensions"] for stream in webrtc),
        "webrtc_not_stopped": sum(1 for stream in webrtc if stream["stopped_at"] is None),
    }


class Viewer:
    """One browser-like viewer: an aiortc offer through HA's websocket API."""

    def __init__(self, ha: HomeAssistantClient, entity: str) -> None:
        self.ha = ha
        self.entity = entity
        self.peer = RTCPeerConnection()
        self.ws: aiohttp.ClientWebSocketResponse | None = None

    async def offer(self) -> None:
        """Open a websocket and send the offer (subscription id 1)."""
        self.peer.createDataChannel("dataSendChannel")
        self.peer.addTransceiver("audio", direction="recvonly")
        self.peer.addTransceiver("video", direction="recvonly")
        await self.peer.setLocalDescription(await self.peer.createOffer())
        self.ws = await self.ha.session.ws_connect(f"{self.ha.base}/api/websocket")
        await self.ws.receive_json()
        await self.ws.send_json({"type": "auth", "access_token": self.ha.token})
        await self.ws.receive_json()
        await self.ws.send_json(
            {
                "id": 1,
                "type": "camera/webrtc/offer",
                "entity_id": self.entity,
                "offer": self.peer.localDescription.sdp,
            }
        )

    async def answer(self) -> str:
        """Wait for the answer (never applied: this viewer does not connect)."""
        assert self.ws is not None
        while True:
            message = await self.ws.receive_json()
            event = message.get("event", {})
            if event.get("type") == "answer":
                return str(event["answer"])
            if event.get("type") == "error" or message.get("success") is False:
                raise RuntimeError(f"refused: {message}")

    async def leave(self) -> None:
        """Leave as the frontend does: unsubscribe, then close the socket and the peer."""
        if self.ws is not None and not self.ws.closed:
            with contextlib.suppress(Exception):
                await self.ws.send_json({"id": 2, "type": "unsubscribe_events", "subscription": 1})
                await asyncio.sleep(0.05)
            await self.ws.close()
        await self.peer.close()


async def main_async(hold: float) -> dict[str, Any]:
    """Every phase on one HA and emulator."""
    config = ROOT / "artifacts" / "viewer-leaks-config"
    options = check_profile(config, cameras=2, webrtc=1, battery=0, port=8127, emulator_port=8769)
    results: dict[str, Any] = {}
    async with (
        running(options, start_within=600) as (ha_url, emulator_url),
        aiohttp.ClientSession() as session,
    ):
        pid = ha_pid(options.config)
        ha = await login(session, ha_url)
        await asyncio.sleep(20)
        results["baseline"] = process(pid) | await emulator(session, emulator_url)

        # 30 RTSP and 5 WebRTC viewers that leave before their answer; twice (the first
        # round also loads what any first viewer loads).
        for round_ in (1, 2):
            for entity, count in ((RTSP, 30), (WEBRTC, 5)):
                for _ in range(count):
                    viewer = Viewer(ha, entity)
                    await viewer.offer()
                    await viewer.leave()
            results[f"early_closes_{round_}_at_once"] = process(pid) | await emulator(
                session, emulator_url
            )
            await asyncio.sleep(45)
            results[f"early_closes_{round_}_after_45s"] = process(pid) | await emulator(
                session, emulator_url
            )

        # 30 offers to one camera at once (8 live views of a camera are allowed).
        viewers = [Viewer(ha, RTSP) for _ in range(30)]

        async def timed(viewer: Viewer) -> float | str:
            began = time.monotonic()
            await viewer.offer()
            try:
                await viewer.answer()
            except RuntimeError as err:
                return str(err)[:160]
            return round(time.monotonic() - began, 3)

        answers = await asyncio.gather(*(timed(viewer) for viewer in viewers))
        times = [answer for answer in answers if isinstance(answer, float)]
        results["concurrent"] = {
            "offers": len(viewers),
            "answered": len(times),
            "refused": sorted({answer for answer in answers if isinstance(answer, str)}),
            "answer_s_median": round(statistics.median(times), 3) if times else None,
            "answer_s_max": max(times) if times else None,
        }
        await asyncio.gather(*(viewer.leave() for viewer in viewers))
        await asyncio.sleep(45)
        results["concurrent_after_45s"] = process(pid) | await emulator(session, emulator_url)

        # 3 viewers that never connect, held open.
        viewers = [Viewer(ha, entity) for entity in (RTSP, RTSP, WEBRTC)]
        for viewer in viewers:
            await viewer.offer()
            await viewer.answer()
        samples = []
        began = time.monotonic()
        while time.monotonic() - began < hold:
            await asyncio.sleep(min(30, hold))
            samples.append({"t_s": round(time.monotonic() - began)} | process(pid))
        results["non_connecting"] = {"hold_s": hold, "samples": samples}
        results["non_connecting_during"] = await emulator(session, emulator_url)
        await asyncio.gather(*(viewer.leave() for viewer in viewers))
        await asyncio.sleep(45)
        results["non_connecting_after_45s"] = process(pid) | await emulator(session, emulator_url)
        await ha.close()
    return results


def main(argv: list[str] | None = None) -> None:
    """Command line."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.viewer_leaks", description=__doc__)
    parser.add_argument("--hold", type=float, default=300.0, help="non-connecting viewers held (s)")
    args = parser.parse_args(argv)
    print(json.dumps(asyncio.run(main_async(args.hold))))


if __name__ == "__main__":
    main()
