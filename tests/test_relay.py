"""The WebRTC relay of RTSP cameras, against the emulator's real RTSP server (real time)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import itertools
import time

from aiortc import RTCPeerConnection, RTCSessionDescription
import pytest

from custom_components.nest_streams.relay import RelayPeer, RelayTrack, _has_sps
from sdm_emulator import Emulator

from .emulator.common import Caller
from .emulator.test_media import LIFETIME, live_emulator


@pytest.fixture
async def rotate(socket_enabled: None) -> AsyncIterator[tuple[Emulator, Caller]]:
    """A real-time emulator whose RTSP sessions end with the token they were opened with."""
    async for pair in live_emulator("rotate"):
        yield pair


async def collect(track: RelayTrack, until: float, into: list[tuple[float, int, bool]]) -> None:
    """(arrival, pts, key frame) of each packet until the monotonic time `until`."""
    while (left := until - time.monotonic()) > 0:
        try:
            packet = await asyncio.wait_for(track.recv(), left)
        except TimeoutError:
            return
        into.append((time.monotonic(), packet.pts, packet.is_keyframe))


def longest_gap(packets: list[tuple[float, int, bool]], end: float) -> float:
    """The longest time without a packet, the time after the last one included."""
    times = [arrival for arrival, _, _ in packets] + [end]
    return max(b - a for a, b in itertools.pairwise(times))


async def extend(caller: Caller, url: str, extension: str) -> tuple[str, str]:
    """Extend; the rotated URL and the next extension token."""
    status, body = await caller.command(
        "rtsp-01", "ExtendRtspStream", streamExtensionToken=extension
    )
    assert status == 200
    url = url.split("auth=")[0] + "auth=" + body["results"]["streamToken"]
    return url, body["results"]["streamExtensionToken"]


async def test_a_rotated_token_is_switched_to_without_a_gap(
    rotate: tuple[Emulator, Caller],
) -> None:
    """Each new token opens a session beside the old one; the track moves at its key frame,
    so playback goes on past the first token's expiry with no gap and rising timestamps."""
    _emulator, caller = rotate
    _, body = await caller.command("rtsp-01", "GenerateRtspStream")
    url = body["results"]["streamUrls"]["rtspUrl"]
    extension = body["results"]["streamExtensionToken"]
    current = [url]
    track = RelayTrack(lambda: current[0])
    packets: list[tuple[float, int, bool]] = []
    start = time.monotonic()
    end = start + 1.9 * LIFETIME
    collector = asyncio.create_task(collect(track, end, packets))
    # Extended half a lifetime before each expiry (the session of a new token needs up to a
    # few seconds for its first key frame; the old one plays until its token expires).
    for at in (LIFETIME / 2, LIFETIME):
        await asyncio.sleep(start + at - time.monotonic())
        url, extension = await extend(caller, url, extension)
        current[0] = url
        track.switch(url)
    await collector
    track.stop()
    assert packets[0][2], "a viewer starts at a key frame"
    assert packets[-1][0] - start > 1.8 * LIFETIME, "played past both earlier tokens' expiry"
    assert longest_gap(packets, end) < 1.0
    assert all(b[1] > a[1] for a, b in itertools.pairwise(packets)), "timestamps rise"
    assert track.switches == 2


async def test_a_session_that_ends_is_reopened_on_the_newest_url(
    rotate: tuple[Emulator, Caller],
) -> None:
    """Without a switch, the session ends with its token; the track reopens on the newest URL
    after RECONNECT_DELAY and plays on."""
    _emulator, caller = rotate
    _, body = await caller.command("rtsp-01", "GenerateRtspStream")
    url = body["results"]["streamUrls"]["rtspUrl"]
    current = [url]
    track = RelayTrack(lambda: current[0])
    packets: list[tuple[float, int, bool]] = []
    start = time.monotonic()
    end = start + 2 * LIFETIME
    collector = asyncio.create_task(collect(track, end, packets))
    await asyncio.sleep(LIFETIME / 2)
    current[0], _ = await extend(caller, url, body["results"]["streamExtensionToken"])
    await collector
    track.stop()
    after = [p for p in packets if p[0] - start > LIFETIME + 0.5]
    assert after, "playback came back after the first token's session ended"
    assert after[0][2], "the new session starts at a key frame"
    assert longest_gap(packets, end) < 4.0
    assert all(b[1] > a[1] for a, b in itertools.pairwise(packets))
    assert track.switches == 0


async def test_the_peer_answers_with_h264_only(rotate: tuple[Emulator, Caller]) -> None:
    """A browser-like offer (VP8 and H.264) is answered with H.264, the camera's codec."""
    _emulator, caller = rotate
    _, body = await caller.command("rtsp-01", "GenerateRtspStream")
    url = body["results"]["streamUrls"]["rtspUrl"]
    viewer = RTCPeerConnection()
    viewer.addTransceiver("video", direction="recvonly")
    viewer.createDataChannel("dataSendChannel")
    await viewer.setLocalDescription(await viewer.createOffer())
    assert "VP8" in viewer.localDescription.sdp
    peer = RelayPeer(lambda: url, [])
    answer = await peer.answer(viewer.localDescription.sdp)
    video = answer.split("m=video")[1].split("m=application")[0]
    assert "H264" in video
    assert "VP8" not in video
    await viewer.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    await peer.add_candidate("candidate:not a candidate", "0")  # skipped, not raised
    await peer.close()
    await viewer.close()
    assert peer.track.readyState == "ended"


def test_sps_is_found_in_annex_b() -> None:
    """Key frames without parameter sets get them from the stream's extradata."""
    assert _has_sps(b"\x00\x00\x00\x01\x09\x10\x00\x00\x00\x01\x67\x42")
    assert not _has_sps(b"\x00\x00\x00\x01\x09\x10\x00\x00\x01\x65\x88")
