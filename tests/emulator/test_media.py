"""The emulator's real media: GStreamer's RTSP server and aiortc peers (real time, loopback)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import itertools
import json
import sys
from typing import Any

import aioice.ice
from aiortc import RTCPeerConnection, RTCSessionDescription
import pytest

from sdm_emulator import Emulator, EmulatorConfig, default_devices
from sdm_emulator.emulator import INVALID_OFFER_MESSAGE, offer_problem
from sdm_emulator.media.live import LiveMedia

from ..common import CHROME_OFFER
from .common import PROJECT, Caller

LIFETIME = 6.0


async def probe(url: str, seconds: float) -> dict[str, Any]:
    """Decode `url` in a child process (PyAV) for up to `seconds`."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sdm_emulator.media.probe",
        url,
        "--seconds",
        str(seconds),
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await process.communicate()
    result: dict[str, Any] = json.loads(out)
    return result


async def live_emulator(mode: str) -> AsyncIterator[tuple[Emulator, Caller]]:
    media = LiveMedia(rtsp_mode=mode)
    await media.start()
    emulator = Emulator(
        EmulatorConfig(
            project_id=PROJECT,
            devices=default_devices(1, webrtc=1),
            stream_lifetime=LIFETIME,
        ),
        media=media,
    )
    yield emulator, Caller(emulator)
    await media.close()


@pytest.fixture
async def keep(socket_enabled: None) -> AsyncIterator[tuple[Emulator, Caller]]:
    """A real-time emulator whose RTSP sessions survive extensions."""
    async for pair in live_emulator("keep"):
        yield pair


@pytest.fixture
async def rotate(socket_enabled: None) -> AsyncIterator[tuple[Emulator, Caller]]:
    """A real-time emulator whose RTSP sessions end with the token they were opened with."""
    async for pair in live_emulator("rotate"):
        yield pair


def gaps(frames: list[float]) -> float:
    """The longest time without a frame."""
    return max(b - a for a, b in itertools.pairwise(frames))


async def test_rtsp_video_needs_the_current_token_and_survives_extensions_in_keep_mode(
    keep: tuple[Emulator, Caller],
) -> None:
    """Real H.264 frames; a wrong token is refused; an extension keeps the session open."""
    _emulator, caller = keep
    status, body = await caller.command("rtsp-01", "GenerateRtspStream")
    assert status == 200
    url = body["results"]["streamUrls"]["rtspUrl"]
    assert url.startswith("rtsp://127.0.0.1:")
    refused = await probe(url.replace("auth=", "auth=x"), 3)
    assert refused["frames"] == []
    assert "401" in refused["ended"]

    session = asyncio.create_task(probe(url, 3 * LIFETIME))
    await asyncio.sleep(LIFETIME / 2)
    extension = body["results"]["streamExtensionToken"]
    status, body = await caller.command(
        "rtsp-01", "ExtendRtspStream", streamExtensionToken=extension
    )
    assert status == 200
    rotated = url.split("auth=")[0] + "auth=" + body["results"]["streamToken"]
    old = await probe(url, 3)
    assert old["frames"] == [], "a superseded token opens no session"
    result = await session
    # The session outlived the first token's expiry (LIFETIME) and ended with the stream.
    assert result["first_frame_s"] < 5
    assert result["frames"][-1] > LIFETIME + 1
    assert result["ended"] == "eof"
    assert gaps(result["frames"]) < 1
    assert (await probe(rotated, 2))["frames"] == [], "the stream expired"


async def test_rtsp_session_ends_with_its_token_in_rotate_mode(
    rotate: tuple[Emulator, Caller],
) -> None:
    """In rotate mode a session opened with token N ends when N would have expired."""
    _emulator, caller = rotate
    _, body = await caller.command("rtsp-01", "GenerateRtspStream")
    url = body["results"]["streamUrls"]["rtspUrl"]
    session = asyncio.create_task(probe(url, 3 * LIFETIME))
    await asyncio.sleep(LIFETIME / 2)
    extension = body["results"]["streamExtensionToken"]
    _, body = await caller.command("rtsp-01", "ExtendRtspStream", streamExtensionToken=extension)
    result = await session
    assert result["frames"], "video played"
    assert result["frames"][-1] < LIFETIME + 0.5
    assert result["ended"] == "eof"
    rotated = url.split("auth=")[0] + "auth=" + body["results"]["streamToken"]
    assert (await probe(rotated, 2))["frames"], "the new token opens a new session"


async def test_stopped_rtsp_stream_ends_its_sessions(keep: tuple[Emulator, Caller]) -> None:
    """StopRtspStream ends the open session at once."""
    _emulator, caller = keep
    _, body = await caller.command("rtsp-01", "GenerateRtspStream")
    url = body["results"]["streamUrls"]["rtspUrl"]
    session = asyncio.create_task(probe(url, 3 * LIFETIME))
    await asyncio.sleep(3)
    extension = body["results"]["streamExtensionToken"]
    await caller.command("rtsp-01", "StopRtspStream", streamExtensionToken=extension)
    result = await session
    assert result["frames"]
    assert result["frames"][-1] < 4


def test_offers_are_checked_as_google_does() -> None:
    """A browser's offer with a data channel passes; anything less is refused."""
    assert offer_problem(CHROME_OFFER) is None
    without_data = CHROME_OFFER.split("m=application")[0]
    assert offer_problem(without_data) == "no application section"
    assert offer_problem(CHROME_OFFER.replace("a=recvonly", "a=sendrecv", 1)) == (
        "the audio section is not recvonly"
    )
    lines = [line for line in CHROME_OFFER.split("\r\n") if not line.startswith("a=fingerprint")]
    assert offer_problem("\r\n".join(lines)) == "fingerprint missing"
    lines = [line for line in CHROME_OFFER.split("\r\n") if not line.startswith("a=ice-pwd")]
    assert offer_problem("\r\n".join(lines)) == "ice-pwd missing"
    assert offer_problem("") == "not an SDP offer"


async def test_webrtc_offer_without_data_channel_is_refused(keep: tuple[Emulator, Caller]) -> None:
    """Google's 400 for an offer without a data channel."""
    _emulator, caller = keep
    offer = CHROME_OFFER.split("m=application")[0]
    status, body = await caller.command("webrtc-01", "GenerateWebRtcStream", offerSdp=offer)
    assert status == 400
    assert body["error"]["status"] == "INVALID_ARGUMENT"
    assert body["error"]["message"] == INVALID_OFFER_MESSAGE


@pytest.fixture
def loopback_ice(monkeypatch: pytest.MonkeyPatch) -> None:
    """ICE on loopback: HA's test plugin replaces the host's network adapters with a fake one."""
    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda **_: ["127.0.0.1"])


@pytest.mark.usefixtures("loopback_ice")
async def test_webrtc_session_streams_video_until_it_expires(keep: tuple[Emulator, Caller]) -> None:
    """A real peer answers; video frames arrive; the session ends at its expiry."""
    _emulator, caller = keep
    viewer = RTCPeerConnection()
    viewer.createDataChannel("dataSendChannel")
    viewer.addTransceiver("audio", direction="recvonly")
    viewer.addTransceiver("video", direction="recvonly")
    tracks: asyncio.Queue[Any] = asyncio.Queue()
    viewer.on("track", tracks.put_nowait)
    await viewer.setLocalDescription(await viewer.createOffer())
    status, body = await caller.command(
        "webrtc-01", "GenerateWebRtcStream", offerSdp=viewer.localDescription.sdp
    )
    assert status == 200, body
    await viewer.setRemoteDescription(RTCSessionDescription(body["results"]["answerSdp"], "answer"))
    track = await asyncio.wait_for(tracks.get(), 10)
    while track.kind != "video":
        track = await asyncio.wait_for(tracks.get(), 10)
    loop = asyncio.get_running_loop()
    start = loop.time()
    frames = []
    try:
        while loop.time() - start < 3 * LIFETIME:
            frame = await asyncio.wait_for(track.recv(), 5)
            frames.append(loop.time() - start)
            assert frame.width == 640
    except Exception:
        pass
    finally:
        await viewer.close()
    assert len(frames) > 20
    assert frames[-1] < LIFETIME + 1, "the session ended at its expiry"
