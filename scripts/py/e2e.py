"""End-to-end: scripts/develop's setup, checked in a real browser (Debian's chromium).

Starts the emulator (with real media) and HA exactly as scripts/develop does (a faster profile:
60 commands per minute on both sides, 1 s first retry, degraded after 3 failures), logs in
through HA's login page with headless Chromium driven by Playwright, opens the Nest Streams
dashboard, checks that the 14 RTSP cameras run and the 6 WebRTC cameras are on demand, that an
RTSP camera's card shows frames of its stream that change (not the logo), makes one camera fail
at the emulator and waits for the page to show it degraded. Then the video checks
(`e2e_video.py`): HA's live view of an RTSP and a WebRTC camera across extensions, in the
emulator's `keep` and `rotate` modes; figures in artifacts/e2e/video.json. Screenshots go to
artifacts/e2e/ (git-ignored).
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
import shutil
import sys
import time

import aiohttp
from playwright.async_api import Page, TimeoutError as PlaywrightTimeoutError, async_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent))

from develop import (
    PASSWORD,
    ROOT,
    USERNAME,
    HomeAssistantClient,
    check_profile,
    running,
)
from e2e_video import video_checks

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


async def browser_checks(ha_url: str, emulator_url: str) -> None:
    """Log in, see 20 running cameras, make one fail, see it degraded."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        page = await browser.new_page(viewport={"width": 1600, "height": 2400})
        page.set_default_timeout(TIMEOUT_MS)
        await page.goto(f"{ha_url}/nest-streams/cameras")
        await page.locator("input[name='username']").fill(USERNAME)
        await page.locator("input[name='password']").fill(PASSWORD)
        await page.keyboard.press("Enter")
        await page.get_by_text("Quota and queue", exact=True).wait_for()
        say("logged in; the dashboard is open")
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
        await stills_change(page)

        async with aiohttp.ClientSession() as session:
            async with session.post(
                f"{emulator_url}/emulator/faults", json={"failing_devices": [FAILING]}
            ) as response:
                response.raise_for_status()
            ha = HomeAssistantClient(session, ha_url)
            client_id = f"{ha_url}/"
            code = await ha._login(client_id)
            async with session.post(
                f"{ha_url}/auth/token",
                data={"grant_type": "authorization_code", "code": code, "client_id": client_id},
            ) as response:
                ha.token = (await response.json())["access_token"]
            await ha.post(
                "/api/services/nest_streams/restart_stream",
                {"entity_id": "camera.room_05_camera_05"},
            )
        failed_at = time.monotonic()
        say(f"{FAILING_NAME} made to fail at the emulator and restarted")

        async def degraded_shown() -> bool:
            return await count_state(page, "Degraded") >= 1

        await wait_until(page, f"{FAILING_NAME} degraded", degraded_shown, 120)
        await page.screenshot(path=ARTIFACTS / "degraded.png", full_page=True)
        say(
            f"{FAILING_NAME} shown degraded after {time.monotonic() - failed_at:.0f} s; "
            "screenshot degraded.png"
        )
        running = await count_state(page, "Running")
        if running != 14 - 1:
            raise AssertionError(f"expected {14 - 1} cameras still running, saw {running}")
        say(f"the other {running} cameras still run")
        await browser.close()


async def video() -> None:
    """The video checks in a browser of their own."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            await video_checks(browser)
        finally:
            await browser.close()


async def main() -> None:
    """Bring everything up, run the browser checks, tear down; then the video checks.

    `--video-only` skips the dashboard checks, `--no-video` the video checks.
    """
    if "--video-only" not in sys.argv:
        await dashboard()
    if "--no-video" not in sys.argv:
        await video()
    say("passed")


async def dashboard() -> None:
    """The 20-camera dashboard checks."""
    async with running(check_profile(ROOT / "artifacts" / "e2e-config")) as (ha, emulator):
        await browser_checks(ha, emulator)


if __name__ == "__main__":
    asyncio.run(main())
