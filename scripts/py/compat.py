"""Headless compatibility run (scripts/compat): this interpreter's Home Assistant + the emulator.

scripts/develop's own set-up (emulator, HA through the dev launcher, onboarding, application
credentials, the real OAuth config flow), then: every camera running, no WARNING or ERROR line
from nest_streams in HA's log, the entry unloads cleanly. Exits non-zero on any failure.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
import sys
import tempfile
import time

import aiohttp
from yarl import URL

sys.path.insert(0, str(Path(__file__).resolve().parent))

from develop import HomeAssistantClient, check_profile, running

CAMERAS, WEBRTC, BATTERY = 6, 1, 1


def say(message: str) -> None:
    """Progress."""
    print(f"[compat] {message}", flush=True)


async def check(config: Path, port: int) -> None:
    """Log, states and unload of the running HA."""
    base = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as session:
        ha = HomeAssistantClient(session, base)
        await ha.onboard()
        async with session.get(f"{base}/api/states", headers=ha._headers) as response:
            states = await response.json()
        streams = {
            item["entity_id"]: item["state"]
            for item in states
            if item["entity_id"].endswith("_stream_state")
        }
        say(f"stream states: {sorted(set(streams.values()))} of {len(streams)} cameras")
        # RTSP cameras run; WebRTC-only cameras (wired and battery) are on demand.
        expected = {
            entity_id: "on_demand"
            if "webrtc_camera" in entity_id or "battery_camera" in entity_id
            else "running"
            for entity_id in streams
        }
        if len(streams) != CAMERAS + WEBRTC + BATTERY or streams != expected:
            raise SystemExit(
                f"not every RTSP camera runs, or a WebRTC camera is not on demand: {streams}"
            )
        await check_restream(session, ha, sorted(streams)[0].replace("sensor.", "camera.", 1))
        entries = await ha.ws({"type": "config_entries/get", "domain": "nest_streams"})
        result = await ha.ws(
            {
                "type": "config_entries/disable",
                "entry_id": entries[0]["entry_id"],
                "disabled_by": "user",
            }
        )
        say(f"entry disabled (unloaded): {result}")
        entries = await ha.ws({"type": "config_entries/get", "domain": "nest_streams"})
        if entries[0]["state"] != "not_loaded":
            raise SystemExit(f"the entry did not unload: {entries[0]['state']}")
        await ha.close()
    log = (config / "logs" / "home-assistant.out").read_text()
    ours = [
        line
        for line in log.splitlines()
        if "nest_streams" in line
        and (" WARNING " in line or " ERROR " in line)
        and "has not been tested by Home Assistant" not in line
        and "Refused a recorder" not in line  # check_restream's wrong secret, on purpose
    ]
    if ours:
        raise SystemExit("nest_streams logged warnings or errors:\n" + "\n".join(ours))
    say("no WARNING or ERROR from nest_streams in HA's log")


async def check_restream(
    session: aiohttp.ClientSession, ha: HomeAssistantClient, sensor_camera: str
) -> None:
    """The restream URL's action answers and its view refuses a wrong secret (the right one is
    not tried: the compat set-up has no media, a reader would find no stream server)."""
    camera = sensor_camera.removesuffix("_stream_state")
    url = URL(await ha.restream_url(camera))
    local = URL(ha.base).join(URL(url.path_qs))
    async with session.get(local.update_query(secret="wrong")) as response:
        if response.status != 401:
            raise SystemExit(f"a wrong restream secret got {response.status}, not 401")
    if not url.path.startswith("/api/nest_streams/restream/") or len(url.query["secret"]) < 40:
        raise SystemExit(f"get_restream_url answered {url.path} and a short secret")
    say(f"restream URL of {camera}: given by the action, 401 with a wrong secret")


async def main() -> None:
    """Bring HA and the emulator up, check, stop."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="nest-streams-compat-") as folder:
        options = check_profile(
            Path(folder) / "config",
            cameras=CAMERAS,
            webrtc=WEBRTC,
            battery=BATTERY,
            port=8125,
            emulator_port=8767,
            media=False,  # the compat venv holds HA and its frontend, not the emulator's aiortc
        )
        async with running(options, start_within=600):
            await check(options.config, options.port)
    say(f"done in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    asyncio.run(main())
