"""Run Home Assistant with Nest Streams against the local SDM emulator, set up as a user would.

The emulator and `hass -c <config>` run as child processes. Everything a user would click
through is done with HA's own mechanisms: onboarding (a documented local user), application
credentials (websocket API), and the real OAuth config flow (REST API), whose authorize step
is answered by the emulator's consent page. A YAML dashboard shows every camera.
"""

from __future__ import annotations

import argparse
import asyncio
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
import contextlib
import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime
import json
import os
from pathlib import Path
import shutil
import signal
import sys
import time
from typing import Any
from urllib.parse import parse_qs, urlparse

import aiohttp

ROOT = Path(__file__).resolve().parents[2]
USERNAME = "dev"
PASSWORD = "nest-streams-dev"
DASHBOARD = "nest-streams"
"""The demo dashboard's URL path."""
CLIENT_SECRET = "emulator-client-secret"
PROJECT_ID = "project-id-1"
DEFAULT_OPTIONS = {
    "qpm": 10,
    "extension_lead": 15,
    "max_failures": 5,
    "degraded_retry": 300,
    "retry_base": 10,
}

CONFIGURATION = f"""\
# Written by scripts/develop: a minimal Home Assistant for Nest Streams and the emulator.
homeassistant:
  name: Nest Streams demo
  time_zone: UTC
  unit_system: metric
  country: US
  currency: USD
frontend:
stream:
application_credentials:
config:
logger:
  default: warning
  logs:
    custom_components.nest_streams: info
    custom_components.nest_streams.media: debug
lovelace:
  dashboards:
    {DASHBOARD}:
      mode: yaml
      title: Nest Streams
      icon: mdi:cctv
      show_in_sidebar: true
      filename: nest_streams_dashboard.yaml
"""


@dataclass(slots=True)
class Options:
    """Command-line options."""

    cameras: int
    webrtc: int
    battery: int
    qpm: int
    lifetime: float
    port: int
    emulator_port: int
    config: Path
    fault_rate: float
    failing: list[str]
    retry_base: int
    max_failures: int
    degraded_retry: int
    keep_config: bool
    rtsp_mode: str = "keep"
    media: bool = True
    video_size: str = "1280x720"
    gop: float = 4.0


def parse_args(argv: list[str] | None = None) -> Options:
    """The command line."""
    parser = argparse.ArgumentParser(prog="scripts/develop", description=__doc__)
    add = parser.add_argument
    add("--cameras", type=int, default=14, help="RTSP cameras (default 14)")
    add("--webrtc", type=int, default=4, help="wired WebRTC cameras (default 4)")
    add("--battery", type=int, default=2, help="battery WebRTC cameras (default 2)")
    add("--qpm", type=int, default=10, help="executeCommand quota per minute, both sides (10)")
    add("--lifetime", type=float, default=300, help="stream lifetime in seconds (300)")
    add("--port", type=int, default=8123, help="Home Assistant's port (8123)")
    add("--emulator-port", type=int, default=8765, help="the emulator's port (8765)")
    add("--config", type=Path, default=ROOT / "config", help="HA config folder (./config)")
    add("--fault-rate", type=float, default=0.0, help="emulator per-call fault rate")
    add("--failing-device", action="append", default=[], help="device id that always fails")
    add("--retry-base", type=int, default=10, help="option: first retry delay (10 s)")
    add("--max-failures", type=int, default=5, help="option: failures before degraded (5)")
    add("--degraded-retry", type=int, default=300, help="option: degraded retry (300 s)")
    add("--keep-config", action="store_true", help="reuse an existing config folder")
    add(
        "--rtsp-mode",
        choices=("keep", "rotate"),
        default="keep",
        help="the emulator's RTSP sessions: keep (survive extensions) or rotate (end with "
        "their token)",
    )
    add("--no-media", action="store_true", help="the emulator serves no video")
    add("--video-size", default="1280x720", help="RTSP cameras' picture size (1280x720)")
    add("--gop", type=float, default=4.0, help="seconds between key frames (4; a guess)")
    args = parser.parse_args(argv)
    return Options(
        cameras=args.cameras,
        webrtc=args.webrtc,
        battery=args.battery,
        qpm=args.qpm,
        lifetime=args.lifetime,
        port=args.port,
        emulator_port=args.emulator_port,
        config=args.config.resolve(),
        fault_rate=args.fault_rate,
        failing=args.failing_device,
        retry_base=args.retry_base,
        max_failures=args.max_failures,
        degraded_retry=args.degraded_retry,
        keep_config=args.keep_config,
        rtsp_mode=args.rtsp_mode,
        media=not args.no_media,
        video_size=args.video_size,
        gop=args.gop,
    )


def say(message: str) -> None:
    """Progress, with the time since start."""
    print(f"[develop {time.monotonic() - START:6.1f}s] {message}", flush=True)


START = time.monotonic()


async def wait_http(session: aiohttp.ClientSession, url: str, seconds: float) -> None:
    """Wait until `url` answers at all."""
    deadline = time.monotonic() + seconds
    while True:
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=5)) as response:
                if response.status < 500:
                    return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not answer within {seconds:.0f} s")
        await asyncio.sleep(0.5)


class HomeAssistantClient:
    """The REST and websocket calls a user's browser would make."""

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        """Talk to HA at `base`."""
        self.session = session
        self.base = base
        self.token = ""
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._id = 0

    @property
    def _headers(self) -> dict[str, str]:
        # The frontend tells HA its own base URL; the OAuth flow builds its redirect URI from it.
        return {"Authorization": f"Bearer {self.token}", "HA-Frontend-Base": self.base}

    async def post(self, path: str, payload: dict[str, Any]) -> Any:
        """POST JSON; return the JSON answer."""
        async with self.session.post(
            f"{self.base}{path}", json=payload, headers=self._headers
        ) as response:
            text = await response.text()
            if response.status >= 400:
                raise RuntimeError(f"POST {path}: {response.status} {text}")
            return json.loads(text)

    async def onboard(self) -> None:
        """Create the owner (or log in as it) and finish onboarding."""
        client_id = f"{self.base}/"
        async with self.session.get(f"{self.base}/api/onboarding") as response:
            steps = {step["step"]: step["done"] for step in await response.json()}
        if not steps.get("user"):
            body = await self.post(
                "/api/onboarding/users",
                {
                    "client_id": client_id,
                    "name": "Developer",
                    "username": USERNAME,
                    "password": PASSWORD,
                    "language": "en",
                },
            )
            code = body["auth_code"]
        else:
            code = await self._login(client_id)
        await self._take_token(code, client_id)
        for step, payload in (
            ("core_config", {}),
            ("analytics", {}),
            (
                "integration",
                {"client_id": client_id, "redirect_uri": f"{self.base}/?auth_callback=1"},
            ),
        ):
            if not steps.get(step):
                with contextlib.suppress(RuntimeError):
                    await self.post(f"/api/onboarding/{step}", payload)

    async def log_in(self) -> None:
        """Log in as the demo's user (onboarding done): the API calls carry its token."""
        client_id = f"{self.base}/"
        await self._take_token(await self._login(client_id), client_id)

    async def _take_token(self, code: str, client_id: str) -> None:
        async with self.session.post(
            f"{self.base}/auth/token",
            data={"grant_type": "authorization_code", "code": code, "client_id": client_id},
        ) as response:
            self.token = (await response.json())["access_token"]

    async def _login(self, client_id: str) -> str:
        flow = await self.post(
            "/auth/login_flow",
            {
                "client_id": client_id,
                "handler": ["homeassistant", None],
                "redirect_uri": f"{self.base}/",
            },
        )
        result = await self.post(
            f"/auth/login_flow/{flow['flow_id']}",
            {"client_id": client_id, "username": USERNAME, "password": PASSWORD},
        )
        return str(result["result"])

    async def ws(self, message: dict[str, Any]) -> Any:
        """One websocket command; its result."""
        if self._ws is None:
            self._ws = await self.session.ws_connect(f"{self.base}/api/websocket")
            await self._ws.receive_json()
            await self._ws.send_json({"type": "auth", "access_token": self.token})
            reply = await self._ws.receive_json()
            if reply["type"] != "auth_ok":
                raise RuntimeError(f"websocket auth failed: {reply}")
        self._id += 1
        await self._ws.send_json({"id": self._id, **message})
        while True:
            reply = await self._ws.receive_json()
            if reply.get("id") == self._id and reply["type"] == "result":
                if not reply["success"]:
                    raise RuntimeError(f"{message['type']}: {reply['error']}")
                return reply["result"]

    async def restream_url(self, camera: str) -> str:
        """The camera entity's restream URL, from `nest_streams.get_restream_url`'s response."""
        result = await self.ws(
            {
                "type": "call_service",
                "domain": "nest_streams",
                "service": "get_restream_url",
                "target": {"entity_id": camera},
                "return_response": True,
            }
        )
        return str(result["response"][camera]["url"])

    async def wait_running(self, seconds: float) -> None:
        """Wait until HA has finished starting (every configured integration is loaded)."""
        deadline = time.monotonic() + seconds
        while (await self.ws({"type": "get_config"}))["state"] != "RUNNING":
            if time.monotonic() > deadline:
                raise TimeoutError(f"Home Assistant did not finish starting in {seconds:.0f} s")
            await asyncio.sleep(0.5)

    async def close(self) -> None:
        """Close the websocket."""
        if self._ws is not None:
            await self._ws.close()


async def configure_integration(ha: HomeAssistantClient, options: Options, emulator: str) -> str:
    """Application credentials, then the real OAuth config flow, then options; the entry id."""
    entries = await ha.ws({"type": "config_entries/get", "domain": "nest_streams"})
    if entries:
        say("Nest Streams is already configured")
        return str(entries[0]["entry_id"])
    credentials = await ha.ws({"type": "application_credentials/list"})
    if not any(item["domain"] == "nest_streams" for item in credentials):
        await ha.ws(
            {
                "type": "application_credentials/create",
                "domain": "nest_streams",
                "client_id": "emulator-client-id",
                "client_secret": CLIENT_SECRET,
                "name": "Emulator",
            }
        )
    flow = await ha.post("/api/config/config_entries/flow", {"handler": "nest_streams"})
    flow = await ha.post(
        f"/api/config/config_entries/flow/{flow['flow_id']}", {"project_id": PROJECT_ID}
    )
    if flow["type"] != "external":
        raise RuntimeError(f"expected the OAuth step, got {flow}")
    # The user's browser opens the authorize URL; the emulator's consent page approves at once.
    async with ha.session.get(flow["url"], allow_redirects=False) as consent:
        location = consent.headers["Location"]
    query = parse_qs(urlparse(location).query)
    callback = f"{ha.base}/auth/external/callback"
    async with ha.session.get(
        callback, params={"code": query["code"][0], "state": query["state"][0]}
    ) as response:
        if response.status != 200:
            raise RuntimeError(f"OAuth callback answered {response.status}")
    result = await ha.post(f"/api/config/config_entries/flow/{flow['flow_id']}", {})
    if result["type"] != "create_entry":
        raise RuntimeError(f"config flow ended with {result}")
    entry_id = str(result["result"]["entry_id"])
    say(f"config entry created through the OAuth flow against {emulator}")
    wanted = {
        "qpm": options.qpm,
        "extension_lead": 15,
        "max_failures": options.max_failures,
        "degraded_retry": options.degraded_retry,
        "retry_base": options.retry_base,
    }
    if wanted == DEFAULT_OPTIONS:
        return entry_id
    options_flow = await ha.post("/api/config/config_entries/options/flow", {"handler": entry_id})
    form = options_flow["data_schema"]
    cameras: list[dict[str, str]] = next(
        (field["selector"]["select"]["options"] for field in form if field["name"] == "cameras"),
        [],
    )
    await ha.post(
        f"/api/config/config_entries/options/flow/{options_flow['flow_id']}",
        {**wanted, "cameras": [item["value"] for item in cameras]},
    )
    say(f"options set through the options flow: {wanted}")
    return entry_id


async def write_dashboard(ha: HomeAssistantClient, options: Options) -> int:
    """A YAML dashboard: the hub's sensors, then one card per camera; returns the camera count."""
    registry = await ha.ws({"type": "config/entity_registry/list"})
    devices = {d["id"]: d for d in await ha.ws({"type": "config/device_registry/list"})}
    by_device: defaultdict[str, dict[str, str]] = defaultdict(dict)
    for entity in registry:
        if entity["platform"] != "nest_streams" or not entity["device_id"]:
            continue
        if entity.get("disabled_by"):  # diagnostic entities that are off by default
            continue
        key = entity["unique_id"].rsplit("-", 1)[-1] if "/devices/" in entity["unique_id"] else ""
        by_device[entity["device_id"]][key or entity["entity_id"]] = entity["entity_id"]
    hub_entities: list[str] = []
    camera_cards: list[dict[str, Any]] = []
    live: dict[str, dict[str, Any]] = {}
    for device_id, entities in sorted(
        by_device.items(), key=lambda item: devices[item[0]]["name"] or ""
    ):
        if "camera" not in entities:
            hub_entities.extend(sorted(entities.values()))
            continue
        # The emulator's device ids start with their kind: rtsp-01, webrtc-01, battery-01.
        kind = devices[device_id]["identifiers"][0][1].rsplit("/", 1)[-1].split("-")[0]
        live.setdefault(
            kind,
            {
                "type": "picture-entity",
                "entity": entities["camera"],
                "camera_view": "live",
                "name": f"{devices[device_id]['name']} (live)",
            },
        )
        camera_cards.append(
            {
                "type": "vertical-stack",
                "cards": [
                    {
                        "type": "picture-entity",
                        "entity": entities["camera"],
                        "camera_view": "auto",
                        "name": devices[device_id]["name"],
                    },
                    {
                        "type": "entities",
                        "entities": [
                            {"entity": entities["stream_state"], "name": "State"},
                            *(  # kept-alive (RTSP) cameras only
                                [
                                    {
                                        "entity": entities["stream_expiry"],
                                        "name": "Expires",
                                        "format": "relative",
                                    }
                                ]
                                if "stream_expiry" in entities
                                else []
                            ),
                            {"entity": entities["degraded"], "name": "Problem"},
                        ],
                    },
                ],
            }
        )
    dashboard = {
        "title": "Nest Streams",
        "views": [
            {
                "title": "Cameras",
                "path": "cameras",
                "type": "masonry",
                "cards": [
                    {"type": "entities", "title": "Quota and queue", "entities": hub_entities},
                    *camera_cards,
                ],
            },
            {
                "title": "Live",
                "path": "live",
                "type": "masonry",
                "cards": [live[kind] for kind in ("rtsp", "webrtc") if kind in live],
            },
        ],
    }
    (options.config / "nest_streams_dashboard.yaml").write_text(json.dumps(dashboard, indent=2))
    return len(camera_cards)


async def report_start_up(ha: HomeAssistantClient, cameras: int) -> None:
    """Say when every camera's stream state first read 'running' or 'on_demand' (WebRTC
    cameras stream only while watched): start-up under the quota."""
    started = time.monotonic()
    while time.monotonic() - started < 600:
        async with ha.session.get(f"{ha.base}/api/states", headers=ha._headers) as response:
            states = await response.json()
        counts = Counter(
            item["state"] for item in states if item["entity_id"].endswith("_stream_state")
        )
        if counts["running"] + counts["on_demand"] >= cameras:
            say(f"{counts['running']} running, {counts['on_demand']} on demand")
            return
        await asyncio.sleep(2)
    say("not every camera is running after 10 minutes; see the stream state sensors")


@contextlib.asynccontextmanager
async def processes(
    options: Options,
) -> AsyncIterator[tuple[str, str, asyncio.subprocess.Process]]:
    """Start the emulator and Home Assistant; stop both (SIGINT, then SIGKILL) on exit."""
    emulator_url = f"http://127.0.0.1:{options.emulator_port}"
    ha_url = f"http://127.0.0.1:{options.port}"
    python = sys.executable
    emulator_args = [
        "-m",
        "sdm_emulator",
        "--port",
        str(options.emulator_port),
        "--project-id",
        PROJECT_ID,
        "--cameras",
        str(options.cameras),
        "--webrtc",
        str(options.webrtc),
        "--battery",
        str(options.battery),
        "--execute-qpm",
        str(options.qpm),
        "--lifetime",
        str(options.lifetime),
        "--fault-rate",
        str(options.fault_rate),
    ]
    for device in options.failing:
        emulator_args += ["--failing-device", device]
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    if options.media:
        emulator_args += ["--rtsp-mode", options.rtsp_mode, "--video-size", options.video_size]
        emulator_args += ["--gop", str(options.gop)]
        # The emulator serves rtsps with a certificate of its own CA; HA trusts that CA the
        # way an install trusts Google's: through the CA bundle HA's HTTP client uses.
        emulator_args += ["--tls-dir", str(options.config / "emulator-tls")]
        environment["REQUESTS_CA_BUNDLE"] = str(trust_emulator(options.config))
    else:
        emulator_args.append("--no-media")
    logs = options.config / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    # Children run in their own sessions: a terminal's Ctrl-C reaches only this script, which
    # then stops them in order (SIGTERM: HA's clean shutdown).
    emulator = await asyncio.create_subprocess_exec(
        python,
        *emulator_args,
        cwd=ROOT,
        start_new_session=True,
        stdout=(logs / "emulator.log").open("w"),
        stderr=asyncio.subprocess.STDOUT,
    )
    # The integration's Google URLs are pointed at the emulator by a dev-only launcher.
    hass = await asyncio.create_subprocess_exec(
        python,
        str(ROOT / "scripts" / "py" / "dev_hass.py"),
        emulator_url,
        "-c",
        str(options.config),
        "--skip-pip",
        cwd=ROOT,
        start_new_session=True,
        env=environment,
        stdout=(logs / "home-assistant.out").open("w"),
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        yield emulator_url, ha_url, hass
    finally:
        for process in (hass, emulator):
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
        for process in (hass, emulator):
            try:
                await asyncio.wait_for(process.wait(), 30)
            except TimeoutError:
                process.kill()
                await process.wait()


def trust_emulator(config: Path) -> Path:
    """The emulator's CA and certificate (made now, in `config`), and a CA bundle of
    certifi's CAs plus the emulator's for HA (`REQUESTS_CA_BUNDLE`)."""
    if str(ROOT) not in sys.path:  # the emulator's package, from the checkout
        sys.path.insert(0, str(ROOT))
    from sdm_emulator.media.live import tls_files
    from sdm_emulator.media.tls import ca_bundle

    files = tls_files(config / "emulator-tls")
    return ca_bundle(files.ca, config / "ca-bundle.pem")


def write_http_settings(options: Options) -> None:
    """HA's stored HTTP settings (what its UI saves): loopback, our port, confirmed.

    No `http:` block in configuration.yaml: HA migrates one into an unconfirmed "pending"
    setting, reverts it (and exits) after 5 minutes unless a person confirms it, and raises a
    deprecation repair. Settings stored as confirmed need neither.
    """
    from homeassistant.components.http.config import HTTP_STORAGE_SCHEMA

    stable = {
        **HTTP_STORAGE_SCHEMA({"server_host": ["127.0.0.1"], "server_port": options.port}),
        "created_at": datetime.now(UTC).isoformat(),
        "error": None,
        "error_message": None,
    }
    storage = options.config / ".storage"
    storage.mkdir(exist_ok=True)
    (storage / "http").write_text(
        json.dumps(
            {
                "version": 2,
                "minor_version": 2,
                "key": "http",
                "data": {"stable": stable, "pending": None, "yaml_migration_done": True},
            }
        )
    )


def write_onboarding(options: Options) -> None:
    """Onboarding's "core_config" step stored as done (HA's storage version 4).

    That step sets up what a new home gets (a weather service, radio browser, text-to-speech),
    whose libraries HA installs at run time; HA runs here with `--skip-pip`, so each logged an
    ERROR at start-up. The demo needs none of them; the other steps run as a user's would.
    """
    storage = options.config / ".storage"
    storage.mkdir(exist_ok=True)
    onboarding = storage / "onboarding"
    if not onboarding.exists():
        onboarding.write_text(
            json.dumps(
                {
                    "version": 4,
                    "minor_version": 1,
                    "key": "onboarding",
                    "data": {"done": ["core_config"]},
                }
            )
        )


def start_up_errors(config: Path) -> list[str]:
    """The ERROR lines of HA's log (its first lines of each, without the traceback)."""
    log = config / "home-assistant.log"
    if not log.exists():
        return []
    return [line for line in log.read_text(errors="replace").splitlines() if " ERROR " in line]


def prepare_config(options: Options) -> None:
    """A fresh config folder with the integration linked in."""
    if options.config.exists() and not options.keep_config:
        shutil.rmtree(options.config)
    options.config.mkdir(parents=True, exist_ok=True)
    (options.config / "configuration.yaml").write_text(CONFIGURATION)
    write_http_settings(options)
    write_onboarding(options)
    (options.config / "nest_streams_dashboard.yaml").write_text(
        json.dumps({"title": "Nest Streams", "views": [{"title": "Cameras", "cards": []}]})
    )
    custom = options.config / "custom_components"
    custom.mkdir(exist_ok=True)
    link = custom / "nest_streams"
    if not link.exists():
        link.symlink_to(ROOT / "custom_components" / "nest_streams")


async def run(options: Options, ready: asyncio.Event | None = None) -> None:
    """Bring everything up, print how to log in, then wait until interrupted."""
    prepare_config(options)
    async with (
        processes(options) as (emulator_url, ha_url, hass),
        aiohttp.ClientSession() as session,
    ):
        await wait_http(session, f"{emulator_url}/emulator/metrics", 30)
        say(f"emulator up at {emulator_url}")
        await wait_http(session, f"{ha_url}/api/onboarding", 180)
        say(f"Home Assistant up at {ha_url}")
        ha = HomeAssistantClient(session, ha_url)
        await ha.onboard()
        await ha.wait_running(120)
        await configure_integration(ha, options, emulator_url)
        await asyncio.sleep(2)
        count = await write_dashboard(ha, options)
        # The demo's dashboard is what everyone sees first (HA's "default dashboard" setting).
        await ha.ws(
            {
                "type": "frontend/set_system_data",
                "key": "core",
                "value": {"default_panel": DASHBOARD},
            }
        )
        await ha.close()
        say(f"dashboard with {count} cameras: {ha_url}/{DASHBOARD}/cameras")
        say(f"log in as '{USERNAME}' with password '{PASSWORD}'; Ctrl-C stops both processes")
        await report_start_up(ha, count)
        if errors := start_up_errors(options.config):
            say(f"HA logged {len(errors)} ERROR lines at start-up, the first: {errors[0]}")
        else:
            say("HA's log has no ERROR line")
        if ready is not None:
            ready.set()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        hass_exit = asyncio.create_task(hass.wait())
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({hass_exit, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if hass_exit.done():
            say(f"Home Assistant exited (code {hass.returncode}); see {options.config}/logs")
            raise SystemExit(1)
        hass_exit.cancel()
        say("stopping")


def check_profile(config: Path, **changes: Any) -> Options:
    """scripts/develop's set-up for scripted checks (e2e, compat): 20 cameras, 60 commands per
    minute on both sides, 1 s first retry, degraded after 3 failures; `changes` override."""
    options = Options(
        cameras=14,
        webrtc=4,
        battery=2,
        qpm=60,
        lifetime=300,
        port=8124,
        emulator_port=8766,
        config=config,
        fault_rate=0.0,
        failing=[],
        retry_base=1,
        max_failures=3,
        degraded_retry=300,
        keep_config=False,
        video_size="640x360",  # 14 encoders at 720p would take both cores
    )
    return dataclasses.replace(options, **changes)


@contextlib.asynccontextmanager
async def running(
    options: Options, start_within: float | None = None
) -> AsyncIterator[tuple[str, str]]:
    """scripts/develop's set-up, up and every camera started; yields (HA URL, emulator URL).

    Raises what went wrong if the set-up ends early, `TimeoutError` when not every camera ran
    within `start_within` seconds.
    """
    ready = asyncio.Event()
    develop = asyncio.create_task(run(options, ready))
    waiter = asyncio.create_task(ready.wait())
    done, _ = await asyncio.wait(
        {develop, waiter}, timeout=start_within, return_when=asyncio.FIRST_COMPLETED
    )
    try:
        if develop in done:
            develop.result()  # raises what went wrong
            raise RuntimeError("scripts/develop ended before it was ready")
        if waiter not in done:
            raise TimeoutError(f"not every camera ran within {start_within} s")
        yield f"http://127.0.0.1:{options.port}", f"http://127.0.0.1:{options.emulator_port}"
    finally:
        waiter.cancel()
        develop.cancel()
        await asyncio.gather(develop, waiter, return_exceptions=True)


def main() -> None:
    """Entry point."""
    asyncio.run(run(parse_args()))


if __name__ == "__main__":
    main()
