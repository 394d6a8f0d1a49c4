"""End-to-end: scripts/develop's setup, checked in a real browser (Debian's chromium).

Starts the emulator (with real media) and HA exactly as scripts/develop does (a faster profile:
60 commands per minute on both sides, 1 s first retry, degraded after 3 failures), opens HA's
address with headless Chromium driven by Playwright and logs in; the first page must be the Nest
Streams dashboard. Checks what a user sees: the 14 RTSP cameras run and the 6 WebRTC cameras are
on demand; no entity of ours reads unknown; HA's log has no ERROR line; an RTSP camera's card
shows frames of its stream that change; the on-demand and a stopped camera's cards show their
state pictures; one camera made to fail at the emulator shows its state and reason in its card
(read back by OCR) within a frontend refresh, then degraded; recovered, the first frame its card
shows is fresh (the emulator's burned-in clock, read by OCR, against now). The pictures the cards
show are the ones the browser received. Then the video checks (`e2e_video.py`): HA's live view
of an RTSP and a WebRTC camera across extensions, in the emulator's `keep` and `rotate` modes;
figures in artifacts/e2e/video.json. Screenshots (one per state: state-*.png) go to
artifacts/e2e/ (git-ignored).
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta
from difflib import SequenceMatcher
import io
import json
from pathlib import Path
import shutil
import sys
import time
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from PIL import Image, ImageChops, ImageStat
from playwright.async_api import (
    Locator,
    Page,
    Response,
    TimeoutError as PlaywrightTimeoutError,
    async_playwright,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))

from clock_ocr import age_of, band_text, clock_of
from develop import (
    ROOT,
    HomeAssistantClient,
    Options,
    check_profile,
    running,
    start_up_errors,
)
from e2e_video import login as log_in_page, repeated_checks, video_checks

sys.path.insert(0, str(ROOT))

from custom_components.nest_streams.media.placeholder import render

ARTIFACTS = ROOT / "artifacts" / "e2e"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]
PLACEHOLDER = ROOT / "custom_components" / "nest_streams" / "placeholder.jpg"
FAILING = "rtsp-05"
FAILING_NAME = "Camera 05"
TIMEOUT_MS = 240_000
STATE_NAMES: dict[str, str] = json.loads(
    (ROOT / "custom_components" / "nest_streams" / "translations" / "en.json").read_text()
)["entity"]["sensor"]["stream_state"]["state"]
WITH_REASON = ("failed", "degraded", "hourly_limit")
SHOWN_WITHIN = 11.0
"""Seconds a card may take to show its camera's failure (state and reason) from the failure:
HA's frontend asks for a camera's picture every 10 s (there is no push of pictures), plus our
0.5 s polling and the fetch."""
READ_ALIKE = 0.9
"""How alike the text read off a state picture must be to the state and reason (OCR slips)."""
MATCH = 12.0
"""Mean pixel difference under which a card's (scaled) picture is the expected state picture."""
FRESH_WITHIN = 10.0
"""Seconds old a still may be after recovery (key frames every 4 s, the card's own fetch)."""


def say(message: str) -> None:
    """Progress."""
    print(f"[e2e {time.monotonic() - START:6.1f}s] {message}", flush=True)


START = time.monotonic()


async def count_exact(page: Page, text: str) -> int:
    """How many elements read exactly `text` (shadow DOM included)."""
    return await page.get_by_text(text, exact=True).count()


async def count_state(page: Page, state: str) -> int:
    """How many entity rows show `state` (a row's light-DOM text is its state)."""
    return await page.locator("hui-generic-entity-row").filter(has_text=state).count()


async def wait_until(page: Page, what: str, check: object, seconds: float) -> None:
    """Poll an async predicate until true, or fail with a screenshot."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await check():  # type: ignore[operator]
            return
        await asyncio.sleep(1)
    await page.screenshot(path=ARTIFACTS / "failure.png", full_page=True)
    raise AssertionError(f"timed out waiting for: {what}")


async def stills_change(page: Page) -> None:
    """An RTSP camera's picture card shows frames of its stream that change, not the logo."""
    cards = page.locator("hui-picture-entity-card").filter(
        has=page.get_by_text("Camera 01", exact=True)
    )
    if await cards.count() != 1:
        raise AssertionError(f"expected one card named Camera 01, found {await cards.count()}")
    image = cards.locator("img").first
    placeholder = PLACEHOLDER.read_bytes()

    async def still() -> bytes:
        source = await image.get_attribute("src") or ""
        if "camera_proxy" not in source:
            return b""
        return await (await page.request.get(source)).body()

    async def frame_shown() -> bool:
        body = await still()
        return body[:2] == b"\xff\xd8" and body != placeholder

    await wait_until(page, "a frame of Camera 01's stream in its card", frame_shown, 60)
    first, first_still = await cards.screenshot(path=ARTIFACTS / "still-1.png"), await still()
    await asyncio.sleep(12)  # the card fetches a new still every 10 s
    second, second_still = await cards.screenshot(path=ARTIFACTS / "still-2.png"), await still()
    if first == second or first_still == second_still:
        raise AssertionError("Camera 01's card shows the same picture 12 s later")
    if placeholder in (first_still, second_still):
        raise AssertionError("Camera 01's card shows the placeholder")
    say("Camera 01's card shows stream frames (not the logo) that change; still-1/2.png")


def card_of(page: Page, name: str) -> Locator:
    """The picture card of the camera named `name`."""
    return page.locator("hui-picture-entity-card").filter(has=page.get_by_text(name, exact=True))


class CardPictures:
    """Each camera's picture as the browser received it (a card shows the last one)."""

    def __init__(self, page: Page) -> None:
        self.last: dict[str, tuple[float, bytes]] = {}
        """Entity id -> (monotonic time it arrived, the JPEG the card asked for)."""
        page.on("response", self._response)

    async def _response(self, response: Response) -> None:
        if "/api/camera_proxy/" not in response.url or response.status != 200:
            return
        with contextlib.suppress(Exception):  # the page may close meanwhile
            body = await response.body()
            self.last[urlsplit(response.url).path.rsplit("/", 1)[-1]] = (time.monotonic(), body)

    def shown(self, entity: str, since: float = 0.0) -> bytes | None:
        """The picture `camera.<entity>`'s card shows, if it arrived after `since`."""
        at, body = self.last.get(f"camera.{entity}", (0.0, b""))
        return body if at > since and body[:2] == b"\xff\xd8" else None


def difference(first: bytes, second: bytes) -> float:
    """Mean absolute difference of two JPEGs' pixels (the second scaled to the first)."""
    one = Image.open(io.BytesIO(first)).convert("RGB")
    two = Image.open(io.BytesIO(second)).convert("RGB").resize(one.size)
    return sum(ImageStat.Stat(ImageChops.difference(one, two)).mean) / 3


def shows_picture(shown: bytes, state: str, reason: str | None) -> bool:
    """Whether `shown` (scaled by HA for the card) is `state`'s picture with `reason`: closer
    to it than to any other state's picture, and close; and its band reads the state's name
    and the reason (OCR, nearly letter for letter)."""
    expected = state_picture(state, reason)
    others = {state_picture(other, why) for other in STATE_NAMES for why in (None, reason)}
    nearest = min(others | {expected}, key=lambda picture: difference(shown, picture))
    if nearest != expected or difference(shown, expected) >= MATCH:
        return False
    words = STATE_NAMES["starting" if state == "running" else state]
    if state in WITH_REASON and reason:
        words += f" {reason}"
    read = band_text(shown)[: len(words)]
    return SequenceMatcher(None, words, read).ratio() >= READ_ALIKE


def state_picture(state: str, reason: str | None) -> bytes:
    """The picture a camera shows in `state` (what `camera.py` renders)."""
    shown = "starting" if state == "running" else state
    return render(STATE_NAMES[shown], reason if shown in WITH_REASON else None)


async def entity_states(ha: HomeAssistantClient) -> dict[str, dict[str, Any]]:
    """Every state HA holds, by entity id."""
    async with ha.session.get(f"{ha.base}/api/states", headers=ha._headers) as response:
        return {item["entity_id"]: item for item in await response.json()}


async def nothing_unknown(ha: HomeAssistantClient) -> None:
    """No entity of ours (shown by default) reads unknown or unavailable while all is well."""
    registry = await ha.ws({"type": "config/entity_registry/list"})
    ours = [
        entry["entity_id"]
        for entry in registry
        if entry["platform"] == "nest_streams" and not entry.get("disabled_by")
    ]
    states = await entity_states(ha)
    bad = {
        entity: states.get(entity, {}).get("state")
        for entity in ours
        if states.get(entity, {}).get("state") in (None, "unknown", "unavailable")
    }
    if bad:
        raise AssertionError(f"entities without a value while all is well: {bad}")
    say(f"none of our {len(ours)} entities reads unknown or unavailable")


async def shows_state(
    page: Page,
    ha: HomeAssistantClient,
    pictures: CardPictures,
    name: str,
    entity: str,
    states: tuple[str, ...],
    seconds: float,
) -> tuple[str, float]:
    """Wait until `name`'s card shows the state picture (state and reason) of one of
    `states`, as HA's sensors tell them; returns the state and the seconds from the sensor's
    first reading one of `states` to the card's showing it."""
    started = time.monotonic()
    first: float | None = None
    while time.monotonic() - started < seconds:
        values = await entity_states(ha)
        state = values[f"sensor.{entity}_stream_state"]["state"]
        reason = values[f"sensor.{entity}_last_error"]["state"]
        if state in states and first is None:
            first = time.monotonic()
        shown = pictures.shown(entity)
        if first is not None and shown is not None and shows_picture(shown, state, reason):
            took = time.monotonic() - first
            await card_of(page, name).screenshot(
                path=ARTIFACTS / f"state-{state.replace('_', '-')}.png"
            )
            return state, took
        await asyncio.sleep(0.5)
    await page.screenshot(path=ARTIFACTS / "failure.png", full_page=True)
    raise AssertionError(f"{name}'s card did not show {states} within {seconds:.0f} s")


async def service(ha: HomeAssistantClient, name: str, entity: str) -> None:
    """Call one of our actions on one camera."""
    await ha.post(f"/api/services/nest_streams/{name}", {"entity_id": f"camera.{entity}"})


async def browser_checks(ha_url: str, emulator_url: str, options: Options) -> None:
    """Log in at HA's address and land on the dashboard; 20 cameras shown right, nothing
    unknown, no ERROR in HA's log; each state's picture; one camera made to fail (its card
    tells why within `SHOWN_WITHIN`), degraded, recovered (its first still is fresh)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as playwright, aiohttp.ClientSession() as session:
        ha = HomeAssistantClient(session, ha_url)
        await ha.log_in()
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        page = await browser.new_page(viewport={"width": 1600, "height": 2400})
        page.set_default_timeout(TIMEOUT_MS)
        pictures = CardPictures(page)
        await log_in_page(page, f"{ha_url}/")  # HA's address, as a user opens it
        await page.get_by_text("Quota and queue", exact=True).wait_for()
        if "/nest-streams/" not in page.url:
            raise AssertionError(f"after log-in HA shows {page.url}, not the demo's dashboard")
        say("logged in at HA's address; the first page is the Nest Streams dashboard")
        # No HTTP settings dialog to confirm: scripts/develop stores them confirmed.
        confirm = page.get_by_role("button", name="Confirm")
        with contextlib.suppress(PlaywrightTimeoutError):
            await confirm.wait_for(timeout=3000)
            raise RuntimeError("HA asks to confirm its HTTP settings; it should not")

        names = (
            [f"Camera {i:02d}" for i in range(1, 15)]
            + [f"WebRTC Camera {i:02d}" for i in range(1, 5)]
            + [f"Battery Camera {i:02d}" for i in range(1, 3)]
        )

        async def all_shown() -> bool:
            return all([await count_exact(page, name) >= 1 for name in names])

        await wait_until(page, "all 20 camera names", all_shown, 60)

        async def all_running() -> bool:
            return (
                await count_state(page, "Running") >= 14
                and await count_state(page, "On demand") >= 6
            )

        await wait_until(page, "14 RTSP cameras running, 6 WebRTC on demand", all_running, 180)
        await page.screenshot(path=ARTIFACTS / "all-running.png", full_page=True)
        say("14 RTSP cameras shown running, 6 WebRTC cameras on demand; all-running.png")
        if errors := start_up_errors(options.config):
            raise AssertionError(f"HA logged {len(errors)} ERROR lines: {errors[:3]}")
        say("HA's log has no ERROR line since the demo started")
        await nothing_unknown(ha)
        if unknown := await count_state(page, "Unknown"):
            raise AssertionError(f"{unknown} rows of the dashboard read Unknown")
        await stills_change(page)
        await card_of(page, "Camera 01").screenshot(path=ARTIFACTS / "state-running.png")

        ids = {
            item["attributes"].get("friendly_name", ""): entity.removeprefix("camera.")
            for entity, item in (await entity_states(ha)).items()
            if entity.startswith("camera.")
        }
        await shows_state(
            page, ha, pictures, "WebRTC Camera 01", ids["WebRTC Camera 01"], ("on_demand",), 30
        )
        await service(ha, "stop_stream", ids["Camera 02"])
        await shows_state(page, ha, pictures, "Camera 02", ids["Camera 02"], ("stopped",), 30)
        await service(ha, "start_stream", ids["Camera 02"])
        say("the on-demand and stopped cameras show their state pictures; state-*.png")

        failing = ids[FAILING_NAME]
        async with session.post(
            f"{emulator_url}/emulator/faults", json={"failing_devices": [FAILING]}
        ) as response:
            response.raise_for_status()
        await service(ha, "restart_stream", failing)
        say(f"{FAILING_NAME} made to fail at the emulator and restarted")
        state, took = await shows_state(
            page, ha, pictures, FAILING_NAME, failing, ("failed", "degraded"), 60
        )
        if took > SHOWN_WITHIN:
            raise AssertionError(f"{FAILING_NAME}'s card showed why after {took:.1f} s")
        say(f"{FAILING_NAME}'s card shows {state} and why after {took:.1f} s")

        async def degraded_shown() -> bool:
            return await count_state(page, "Degraded") >= 1

        failed_at = time.monotonic()
        await wait_until(page, f"{FAILING_NAME} degraded", degraded_shown, 120)
        await shows_state(page, ha, pictures, FAILING_NAME, failing, ("degraded",), 30)
        await page.screenshot(path=ARTIFACTS / "degraded.png", full_page=True)
        say(
            f"{FAILING_NAME} shown degraded with its reason after "
            f"{time.monotonic() - failed_at:.0f} s more; degraded.png, state-degraded.png"
        )
        running = await count_state(page, "Running")
        if running != 14 - 1:
            raise AssertionError(f"expected {14 - 1} cameras still running, saw {running}")
        say(f"the other {running} cameras still run")

        async with session.post(
            f"{emulator_url}/emulator/faults", json={"failing_devices": []}
        ) as response:
            response.raise_for_status()
        recovering = time.monotonic()
        await service(ha, "start_stream", failing)
        age = await first_still_age(ha, pictures, failing, recovering)
        await card_of(page, FAILING_NAME).screenshot(path=ARTIFACTS / "state-recovered.png")
        if age > FRESH_WITHIN:
            raise AssertionError(f"the first still after recovery is {age:.0f} s old")
        say(f"recovered: the card's first picture shows the clock {age:.1f} s before now")
        await browser.close()


async def first_still_age(
    ha: HomeAssistantClient, pictures: CardPictures, entity: str, since: float
) -> float:
    """The first frame the recovered camera's card shows (after `since`; state pictures are
    passed over): how old its burned-in clock was when it arrived."""
    states = {state_picture(state, None) for state in STATE_NAMES}
    started = time.monotonic()
    seen: set[float] = set()
    while time.monotonic() - started < 120:
        at, body = pictures.last.get(f"camera.{entity}", (0.0, b""))
        if at > since and at not in seen:
            seen.add(at)
            if min(difference(body, picture) for picture in states) >= MATCH:
                (ARTIFACTS / "recovered-still.jpg").write_bytes(body)
                if (clock := clock_of(body)) is None:
                    raise AssertionError("the recovered still's clock cannot be read")
                return age_of(clock, datetime.now() - timedelta(seconds=time.monotonic() - at))
        await asyncio.sleep(0.2)
    raise AssertionError(f"{FAILING_NAME}'s card showed no frame within 120 s")


async def video() -> None:
    """The video checks in a browser of their own (`--repeat MODE N`: MODE only, N times)."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            if "--repeat" in sys.argv:
                at = sys.argv.index("--repeat")
                await repeated_checks(browser, sys.argv[at + 1], int(sys.argv[at + 2]))
            else:
                await video_checks(browser)
        finally:
            await browser.close()


async def main() -> None:
    """Bring everything up, run the browser checks, tear down; then the video checks.

    `--video-only` skips the dashboard checks, `--no-video` the video checks;
    `--video-only --repeat rotate 10` measures rotate mode 10 times (a fault that comes now
    and then).
    """
    if "--video-only" not in sys.argv:
        await dashboard()
    if "--no-video" not in sys.argv:
        await video()
    say("passed")


async def dashboard() -> None:
    """The 20-camera dashboard checks."""
    options = check_profile(ROOT / "artifacts" / "e2e-config")
    async with running(options) as (ha, emulator):
        await browser_checks(ha, emulator, options)


if __name__ == "__main__":
    asyncio.run(main())
