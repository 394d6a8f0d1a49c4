"""The media against the emulator's real RTSP server (rtsps, H.264 + AAC), in real time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import io
import itertools
import logging
import threading
import time
from typing import Any

import aioice.ice
from aiortc import RTCPeerConnection, RTCSessionDescription
import certifi
from PIL import Image
import pytest

from custom_components.nest_streams.media import webrtc as webrtc_module
from custom_components.nest_streams.media.hub import CameraMedia
from custom_components.nest_streams.media.picture import decode_key_frame
from sdm_emulator import Emulator
from sdm_emulator.media.rtsp import StreamShape

from ..emulator.common import Caller
from ..emulator.test_media import FAST, LIFETIME, ca_of, live_emulator, media_info

RTSP = "rtsp-01"


@pytest.fixture
async def rotate(socket_enabled: None) -> AsyncIterator[tuple[Emulator, Caller]]:
    """A real-time emulator whose RTSP sessions end with the token they were opened with."""
    async for pair in live_emulator("rotate", FAST):
        yield pair


@pytest.fixture
async def long_gop(socket_enabled: None) -> AsyncIterator[tuple[Emulator, Caller]]:
    """A key frame every 4 s (the default's GOP, a cheap picture)."""
    async for pair in live_emulator("keep", StreamShape(size="640x360"), lifetime=60):
        yield pair


@pytest.fixture
def loopback_ice(monkeypatch: pytest.MonkeyPatch) -> None:
    """ICE on loopback: HA's test plugin replaces the host's network adapters with a fake one."""
    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda **_: ["127.0.0.1"])


async def generate(caller: Caller) -> tuple[str, str]:
    """A new RTSP stream: its URL and extension token."""
    _, body = await caller.command(RTSP, "GenerateRtspStream")
    return body["results"]["streamUrls"]["rtspUrl"], body["results"]["streamExtensionToken"]


async def extend(caller: Caller, url: str, extension: str) -> tuple[str, str]:
    """Extend; the rotated URL and the next extension token."""
    status, body = await caller.command(RTSP, "ExtendRtspStream", streamExtensionToken=extension)
    assert status == 200
    url = url.split("auth=")[0] + "auth=" + body["results"]["streamToken"]
    return url, body["results"]["streamExtensionToken"]


class Arrivals:
    """A feed consumer noting when each packet came (monotonic) and its feed time."""

    def __init__(self) -> None:
        self.video: list[tuple[float, int, bool]] = []
        self.audio = 0
        self.ended: list[str] = []

    def on_video(self, packet: Any) -> None:
        self.video.append((time.monotonic(), packet.pts, packet.is_keyframe))

    def on_audio(self, packet: Any) -> None:
        self.audio += 1

    def on_end(self, reason: str) -> None:
        self.ended.append(reason)

    def longest_gap(self, end: float) -> float:
        times = [at for at, _, _ in self.video] + [end]
        return max(b - a for a, b in itertools.pairwise(times))


async def test_the_feed_plays_across_rotated_tokens_with_one_client_per_url(
    rotate: tuple[Emulator, Caller],
) -> None:
    """Each new token's session opens beside the old one and is taken over at its first key
    frame: no gap past each token's expiry, rising timestamps, sound throughout, never two
    clients on one URL."""
    emulator, caller = rotate
    url, extension = await generate(caller)
    media = CameraMedia("cam", ca_file=str(ca_of(emulator)))
    feed = media.feed
    feed.set_url(url)
    arrivals = Arrivals()
    feed.subscribe(arrivals)
    start = time.monotonic()
    end = start + 1.9 * LIFETIME
    for at in (LIFETIME / 2, LIFETIME):
        await asyncio.sleep(start + at - time.monotonic())
        url, extension = await extend(caller, url, extension)
        feed.set_url(url)
    await asyncio.sleep(end - time.monotonic())
    await media.close("done")
    assert arrivals.video[0][2], "a consumer starts at a key frame"
    assert arrivals.video[-1][0] - start > 1.8 * LIFETIME, "played past both expiries"
    assert arrivals.longest_gap(end) < 1.0
    assert all(b[1] > a[1] for a, b in itertools.pairwise(arrivals.video)), "timestamps rise"
    assert feed.switches == 2
    assert arrivals.audio > 1.5 * LIFETIME * 10, "AAC throughout (16 kHz: 15.6 packets a s)"
    assert arrivals.ended == ["done"]
    assert media_info(emulator)["sessions"]["clients_per_url_max"] == 1


async def test_an_untrusted_certificate_is_the_cameras_problem(
    rotate: tuple[Emulator, Caller], caplog: pytest.LogCaptureFixture
) -> None:
    """Verified against the CA bundle given (here certifi's, which does not hold the
    emulator's CA): no picture, and the reason, said once."""
    _emulator, caller = rotate
    url, _ = await generate(caller)
    problems: list[str | None] = []
    media = CameraMedia("Front door", ca_file=certifi.where(), on_problem=problems.append)
    media.feed.set_url(url)
    media.feed.subscribe(Arrivals())
    for _ in range(100):
        if problems:
            break
        await asyncio.sleep(0.1)
    await media.close("done")
    assert problems
    assert problems[0] is not None
    assert problems[0].startswith("the stream server's certificate is not trusted")
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.getMessage() for r in warnings] == [
        f"Front door: no live picture: {problems[0]}; retrying"
    ]
    assert "auth=" not in caplog.text, "the URL (with its token) is never logged"


async def test_stills_and_mjpeg_come_from_the_one_session(
    rotate: tuple[Emulator, Caller],
) -> None:
    """A still decodes the session's key frame (opening it for a while); MJPEG decodes every
    frame of the same session; the emulator saw one session."""
    emulator, caller = rotate
    url, _ = await generate(caller)
    media = CameraMedia("cam", ca_file=str(ca_of(emulator)))
    media.feed.set_url(url)
    jpeg = await media.stills.image(320, None, 6)
    assert jpeg is not None
    assert jpeg.startswith(b"\xff\xd8")
    image = Image.open(io.BytesIO(jpeg))
    assert image.size == (320, 180), "scaled down to the width asked for"
    again = await media.stills.image(None, None, 6)
    assert again is not None
    assert media.stills.decoded <= 2
    decoder = media.mjpeg()
    decoder.add_client()
    frames = set()
    for _ in range(40):
        if (frame := await asyncio.to_thread(decoder.latest)) is not None:
            frames.add(frame)
        await asyncio.sleep(0.05)
    decoder.remove_client()
    await media.close("done")
    assert len(frames) >= 5, "MJPEG frames that change"
    assert media_info(emulator)["sessions"]["opened"] == 1


def test_a_key_frame_without_parameter_sets_does_not_decode() -> None:
    from .common import KEY, packet

    assert decode_key_frame(packet(KEY, 0, key=True)) is None


@pytest.mark.usefixtures("loopback_ice")
async def test_a_viewer_gets_picture_at_once_and_sound(long_gop: tuple[Emulator, Caller]) -> None:
    """A viewer joining a running feed mid-GOP starts from the GOP held (no wait of up to 4 s
    for the next key frame) and hears the camera (AAC as Opus); leaving ends its relay and
    the sound's transcoder."""
    emulator, caller = long_gop
    url, _ = await generate(caller)
    media = CameraMedia("cam", ca_file=str(ca_of(emulator)))
    media.feed.set_url(url)
    assert await media.stills.image(None, None, 6) is not None  # the feed runs
    await asyncio.sleep(1.0)  # mid-GOP: the next key frame is about 3 s away
    viewer = RTCPeerConnection()
    viewer.createDataChannel("dataSendChannel")
    viewer.addTransceiver("audio", direction="recvonly")
    viewer.addTransceiver("video", direction="recvonly")
    tracks: asyncio.Queue[Any] = asyncio.Queue()
    viewer.on("track", tracks.put_nowait)
    await viewer.setLocalDescription(await viewer.createOffer())
    opened = time.monotonic()
    answer = await media.open_viewer("v1", viewer.localDescription.sdp, [], print)
    await viewer.setRemoteDescription(RTCSessionDescription(answer, "answer"))
    received: dict[str, list[float]] = {"audio": [], "video": []}

    async def consume(track: Any) -> None:
        while True:
            await track.recv()
            received[track.kind].append(time.monotonic() - opened)

    consumers = [asyncio.create_task(consume(await tracks.get())) for _ in range(2)]
    await asyncio.sleep(3)
    peer = media.close_viewer("v1")
    assert peer is not None
    await peer.close()
    await viewer.close()
    for task in consumers:
        task.cancel()
    assert received["video"][0] < 0.5, "the first frame from the held GOP"
    assert len(received["video"]) > 30
    assert len(received["audio"]) > 100, "20 ms Opus frames"
    assert media.feed.consumers == 0, "the relay and the transcoder left the feed"
    # The transcoder waits for the next viewer (PyAV frees its FFmpeg workers only at a full
    # garbage collection: one per camera is kept instead); the camera's end stops it.
    assert _audio_threads() == 1
    await media.close("done")
    for _ in range(40):
        if not _audio_threads():
            break
        await asyncio.sleep(0.05)
    assert _audio_threads() == 0


def _audio_threads() -> int:
    return sum(1 for thread in threading.enumerate() if thread.name == "nest_streams_audio")


@pytest.fixture
def connect_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(webrtc_module, "CONNECT_TIMEOUT", 0.5)


@pytest.mark.usefixtures("loopback_ice", "connect_timeout")
async def test_a_viewer_that_does_not_connect_is_closed_and_told(
    rotate: tuple[Emulator, Caller],
) -> None:
    """A peer whose viewer never answers ICE: closed after CONNECT_TIMEOUT, nothing queued
    for it, its end reported (the frontend hears it)."""
    emulator, caller = rotate
    url, _ = await generate(caller)
    media = CameraMedia("cam", ca_file=str(ca_of(emulator)))
    media.feed.set_url(url)
    viewer = RTCPeerConnection()
    viewer.addTransceiver("audio", direction="recvonly")
    viewer.addTransceiver("video", direction="recvonly")
    await viewer.setLocalDescription(await viewer.createOffer())
    ended: list[str] = []
    await media.open_viewer("v1", viewer.localDescription.sdp, [], ended.append)
    peer = media.peer("v1")
    assert peer is not None
    await asyncio.sleep(1.5)  # the viewer never sets the answer: no ICE
    await viewer.close()
    assert ended == ["not connected within 0 s"]
    assert peer.closed
    assert media.viewers == 0
    assert media.feed.consumers == 0
    assert peer.video.queued == 0
    await media.close("done")


def test_a_slow_viewer_skips_to_the_next_key_frame() -> None:
    """A viewer whose queue is full drops what it has and starts again at a key frame."""
    from custom_components.nest_streams.media.webrtc import MAX_QUEUED_FRAMES, VideoTrack

    from .common import DELTA, KEY, packet

    async def main() -> VideoTrack:
        track = VideoTrack()
        track.put(packet(DELTA, 0))  # before any key frame: not taken
        track.put(packet(KEY, 1, key=True))
        for at in range(2, MAX_QUEUED_FRAMES + 5):
            track.put(packet(DELTA, at))
        return track

    track = asyncio.run(main())
    assert track.skipped == 1
    assert track.queued == 0, "waiting for a key frame"
    track.put(packet(KEY, 999, key=True))
    assert track.queued == 1
