"""The emulator's real media: GStreamer's RTSP server and aiortc peers (real time, loopback)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import itertools
import json
from pathlib import Path
import sys
from typing import Any

import aioice.ice
from aiortc import RTCPeerConnection, RTCSessionDescription
import pytest

from sdm_emulator import Emulator, EmulatorConfig, default_devices
from sdm_emulator.emulator import INVALID_OFFER_MESSAGE, offer_problem
from sdm_emulator.media.live import LiveMedia
from sdm_emulator.media.rtsp import StreamShape

from ..common import CHROME_OFFER
from .common import PROJECT, Caller

LIFETIME = 6.0


FAST = StreamShape(size="640x360", gop=1.0)
"""A cheap picture with a key frame every second, for tests of sessions rather than shape."""


async def probe(url: str, seconds: float, ca_file: Path | None = None) -> dict[str, Any]:
    """Decode `url` in a child process (PyAV) for up to `seconds`, trusting `ca_file`."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sdm_emulator.media.probe",
        url,
        "--seconds",
        str(seconds),
        *(["--ca-file", str(ca_file)] if ca_file else []),
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await process.communicate()
    result: dict[str, Any] = json.loads(out)
    return result


async def live_emulator(
    mode: str, shape: StreamShape = FAST, lifetime: float = LIFETIME
) -> AsyncIterator[tuple[Emulator, Caller]]:
    media = LiveMedia(rtsp_mode=mode, shape=shape)
    await media.start()
    emulator = Emulator(
        EmulatorConfig(
            project_id=PROJECT,
            devices=default_devices(1, webrtc=1),
            stream_lifetime=lifetime,
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


def ca_of(emulator: Emulator) -> Path:
    """The CA the emulator's RTSP server certificate is signed with."""
    assert isinstance(emulator.media, LiveMedia)
    assert emulator.media.tls_files is not None
    return emulator.media.tls_files.ca


def media_info(emulator: Emulator) -> dict[str, Any]:
    """The emulator's media metrics."""
    info = emulator.report()["media"]
    assert isinstance(info, dict)
    return info


async def test_rtsp_video_needs_the_current_token_and_survives_extensions_in_keep_mode(
    keep: tuple[Emulator, Caller],
) -> None:
    """Real H.264 frames over TLS; a wrong token is refused; an extension keeps the session."""
    emulator, caller = keep
    ca = ca_of(emulator)
    status, body = await caller.command("rtsp-01", "GenerateRtspStream")
    assert status == 200
    url = body["results"]["streamUrls"]["rtspUrl"]
    assert url.startswith("rtsps://127.0.0.1:")
    refused = await probe(url.replace("auth=", "auth=x"), 3, ca)
    assert refused["frames"] == []
    assert "401" in refused["ended"]

    session = asyncio.create_task(probe(url, 3 * LIFETIME, ca))
    await asyncio.sleep(LIFETIME / 2)
    extension = body["results"]["streamExtensionToken"]
    status, body = await caller.command(
        "rtsp-01", "ExtendRtspStream", streamExtensionToken=extension
    )
    assert status == 200
    rotated = url.split("auth=")[0] + "auth=" + body["results"]["streamToken"]
    old = await probe(url, 3, ca)
    assert old["frames"] == [], "a superseded token opens no session"
    result = await session
    # The session outlived the first token's expiry (LIFETIME) and ended with the stream.
    assert result["first_frame_s"] < 5
    assert result["frames"][-1] > LIFETIME + 1
    assert result["ended"] == "eof"
    assert gaps(result["frames"]) < 1
    assert (await probe(rotated, 2, ca))["frames"] == [], "the stream expired"


async def test_rtsp_session_ends_with_its_token_in_rotate_mode(
    rotate: tuple[Emulator, Caller],
) -> None:
    """In rotate mode a session opened with token N ends when N would have expired."""
    emulator, caller = rotate
    ca = ca_of(emulator)
    _, body = await caller.command("rtsp-01", "GenerateRtspStream")
    url = body["results"]["streamUrls"]["rtspUrl"]
    session = asyncio.create_task(probe(url, 3 * LIFETIME, ca))
    await asyncio.sleep(LIFETIME / 2)
    extension = body["results"]["streamExtensionToken"]
    _, body = await caller.command("rtsp-01", "ExtendRtspStream", streamExtensionToken=extension)
    rotated = url.split("auth=")[0] + "auth=" + body["results"]["streamToken"]
    beside = asyncio.create_task(probe(rotated, LIFETIME, ca))  # well before the stream ends
    result = await session
    assert result["frames"], "video played"
    assert result["frames"][-1] < LIFETIME + 0.5
    assert result["ended"] == "eof"
    new = await beside
    assert new["frames"], f"the new token opens a new session: {new}"


async def test_stopped_rtsp_stream_ends_its_sessions(keep: tuple[Emulator, Caller]) -> None:
    """StopRtspStream ends the open session at once."""
    emulator, caller = keep
    _, body = await caller.command("rtsp-01", "GenerateRtspStream")
    url = body["results"]["streamUrls"]["rtspUrl"]
    session = asyncio.create_task(probe(url, 3 * LIFETIME, ca_of(emulator)))
    await asyncio.sleep(3)
    extension = body["results"]["streamExtensionToken"]
    await caller.command("rtsp-01", "StopRtspStream", streamExtensionToken=extension)
    result = await session
    assert result["frames"]
    assert result["frames"][-1] < 4


@pytest.fixture
async def google_shaped(socket_enabled: None) -> AsyncIterator[tuple[Emulator, Caller]]:
    """A real-time emulator with the default (Google-shaped) stream."""
    async for pair in live_emulator("keep", StreamShape(), lifetime=60):
        yield pair


async def test_the_default_stream_is_shaped_like_googles(
    google_shaped: tuple[Emulator, Caller],
) -> None:
    """rtsps with a certificate only the emulator's CA vouches for; H.264 High at 1280x720 with
    a key frame every 4 s; AAC audio; the device traits say the same."""
    emulator, caller = google_shaped
    _, body = await caller.command("rtsp-01", "GenerateRtspStream")
    url = body["results"]["streamUrls"]["rtspUrl"]
    untrusted = await probe(url, 3)
    assert untrusted["frames"] == []
    assert untrusted["ended"].startswith("error"), "FFmpeg verifies the certificate"
    result = await probe(url, 12, ca_of(emulator))
    assert result["codecs"] == {
        "video": ["h264", "High"],
        "size": [1280, 720],
        "audio": ["aac", 16000],
    }
    keys = result["key_pts"]  # the stream's own times (arrivals bunch up behind FFmpeg's probe)
    assert len(keys) >= 2
    assert all(3.5 < b - a < 4.5 for a, b in itertools.pairwise(keys)), keys
    assert result["audio_packets"] > 50
    info = media_info(emulator)
    assert info["tls"] is True
    assert info["gop_s"] == 4.0
    assert info["audio_codec"] == "AAC"
    _, device = await caller.call("GET", f"/v1/enterprises/{PROJECT}/devices/rtsp-01")
    trait = device["traits"]["sdm.devices.traits.CameraLiveStream"]
    assert trait["maxVideoResolution"] == {"width": 1280, "height": 720}
    assert trait["audioCodecs"] == ["AAC"]


@pytest.fixture
async def keep_long(socket_enabled: None) -> AsyncIterator[tuple[Emulator, Caller]]:
    """As `keep`, with streams that live 60 s: a test of clients, not of expiry, on a busy
    machine (each probe is a child process that takes a second or more to start)."""
    async for pair in live_emulator("keep", lifetime=60):
        yield pair


async def test_one_client_per_stream_url(keep_long: tuple[Emulator, Caller]) -> None:
    """A second client on a URL with an open session is refused and counted; the next token's
    URL opens beside the old one (a token switch)."""
    emulator, caller = keep_long
    ca = ca_of(emulator)
    _, body = await caller.command("rtsp-01", "GenerateRtspStream")
    url = body["results"]["streamUrls"]["rtspUrl"]
    first = asyncio.create_task(probe(url, 4, ca))
    await asyncio.sleep(1.5)
    second = await probe(url, 2, ca)
    assert second["frames"] == []
    assert "403" in second["ended"]
    _, body = await caller.command(
        "rtsp-01", "ExtendRtspStream", streamExtensionToken=body["results"]["streamExtensionToken"]
    )
    rotated = url.split("auth=")[0] + "auth=" + body["results"]["streamToken"]
    beside = await probe(rotated, 5, ca)
    assert beside["frames"], f"another URL of the same stream opens: {beside}"
    assert (await first)["frames"]
    sessions = media_info(emulator)["sessions"]
    assert sessions["refused_in_use"] == 1
    assert sessions["clients_per_url_max"] == 2
    assert sessions["opened"] == 2
    for _ in range(20):  # the server reports each closed session
        if media_info(emulator)["sessions"]["open"] == 0:
            break
        await asyncio.sleep(0.1)
    assert media_info(emulator)["sessions"]["open"] == 0
    for _ in range(50):  # and what each session's media sent, when it ends
        if media_info(emulator)["sessions"]["ended"] == 2:
            break
        await asyncio.sleep(0.1)
    assert media_info(emulator)["sessions"]["ended"] == 2
    assert media_info(emulator)["sessions"]["silent"] == 0  # both sent their sound


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
