"""The WebRTC relay of RTSP cameras, against the emulator's real RTSP server (real time)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Generator
from fractions import Fraction
import itertools
import time
from typing import Any
from unittest.mock import patch

from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError
import av
import pytest

from custom_components.nest_streams.relay import (
    CLOCK,
    RECONNECT_DELAY,
    RelayPeer,
    RelaySource,
    RtspReader,
    ViewerTrack,
    _has_sps,
)
from sdm_emulator import Emulator

from .emulator.common import Caller
from .emulator.test_media import LIFETIME, live_emulator


@pytest.fixture
async def rotate(socket_enabled: None) -> AsyncIterator[tuple[Emulator, Caller]]:
    """A real-time emulator whose RTSP sessions end with the token they were opened with."""
    async for pair in live_emulator("rotate"):
        yield pair


async def collect(track: ViewerTrack, until: float, into: list[tuple[float, int, bool]]) -> None:
    """(arrival, pts, key frame) of each packet until the monotonic time `until`."""
    while (left := until - time.monotonic()) > 0:
        try:
            packet = await asyncio.wait_for(track.recv(), left)
        except TimeoutError:
            return
        assert packet.pts is not None
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
    source = RelaySource(lambda: current[0])
    track = source.subscribe()
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
        source.switch(url)
    await collector
    track.stop()
    assert not source.live, "the last viewer stopped the source"
    assert packets[0][2], "a viewer starts at a key frame"
    assert packets[-1][0] - start > 1.8 * LIFETIME, "played past both earlier tokens' expiry"
    assert longest_gap(packets, end) < 1.0
    assert all(b[1] > a[1] for a, b in itertools.pairwise(packets)), "timestamps rise"
    assert source.switches == 2


async def test_a_session_that_ends_is_reopened_on_the_newest_url(
    rotate: tuple[Emulator, Caller],
) -> None:
    """Without a switch, the session ends with its token; the track reopens on the newest URL
    after RECONNECT_DELAY and plays on."""
    _emulator, caller = rotate
    _, body = await caller.command("rtsp-01", "GenerateRtspStream")
    url = body["results"]["streamUrls"]["rtspUrl"]
    current = [url]
    source = RelaySource(lambda: current[0])
    track = source.subscribe()
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
    assert source.switches == 0


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
    source = RelaySource(lambda: url)
    peer = RelayPeer(source.subscribe(), [])
    answer = await peer.answer(viewer.localDescription.sdp)
    video = answer.split("m=video")[1].split("m=application")[0]
    assert "H264" in video
    assert "VP8" not in video
    await viewer.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    await peer.add_candidate("candidate:not a candidate", "0")  # skipped, not raised
    await peer.close()
    await viewer.close()
    assert peer.track.readyState == "ended"
    assert not source.live


def test_sps_is_found_in_annex_b() -> None:
    """Key frames without parameter sets get them from the stream's extradata."""
    assert _has_sps(b"\x00\x00\x00\x01\x09\x10\x00\x00\x00\x01\x67\x42")
    assert not _has_sps(b"\x00\x00\x00\x01\x09\x10\x00\x00\x01\x65\x88")


KEY = b"\x00\x00\x00\x01\x65\x88"  # an IDR slice, no parameter sets
DELTA = b"\x00\x00\x00\x01\x41\x9a"
SPS_PPS = b"\x00\x00\x00\x01\x67\x42\x00\x00\x00\x01\x68\xce"


def packet(data: bytes, pts: int | None, key: bool = False) -> av.Packet[Any]:
    """A demuxed packet on a 1/1000 clock."""
    made = av.Packet(data)
    made.pts = made.dts = pts
    made.time_base = Fraction(1, 1000)
    made.is_keyframe = key
    return made


@pytest.fixture
def offline() -> Generator[None]:
    """Readers that open nothing: the tests hand the track their packets."""
    with patch.object(RtspReader, "start"):
        yield


async def test_sessions_are_joined_at_key_frames_on_one_clock(offline: None) -> None:
    """A viewer starts at a key frame; a new session is joined at its first key frame (the old
    one plays until then); timestamps continue on the track's clock whatever each session's."""
    urls = ["rtsp://camera?auth=1"]
    source = RelaySource(lambda: urls[-1])
    viewer = source.subscribe()
    first = source._reader
    assert first is not None
    first.extradata = SPS_PPS
    source._deliver(first, packet(DELTA, 0))  # before any key frame: dropped
    source._deliver(first, packet(KEY, 100, key=True))
    source._deliver(first, packet(DELTA, 200))
    source.switch(urls[0])  # the URL it reads: nothing happens
    assert source._next is None
    source.switch("rtsp://camera?auth=2")
    second = source._next
    source.switch("rtsp://camera?auth=3")  # a newer token before the second session was joined
    assert second is not None
    assert second._stopped.is_set()
    third = source._next
    assert third is not None
    assert source.url == "rtsp://camera?auth=3"
    source._deliver(second, packet(KEY, 0, key=True))  # a stopped session: ignored
    source._deliver(third, packet(DELTA, 5_000))  # not a key frame yet: the old one plays on
    source._deliver(first, packet(DELTA, 300))
    late = source.subscribe()  # a second viewer: from the next key frame on
    source._deliver(third, packet(KEY, 5_100, key=True))  # joined here
    assert first._stopped.is_set()
    source._deliver(first, packet(DELTA, 400))  # the old session's late packet: dropped
    source._deliver(third, packet(DELTA, None))  # no timestamp: one frame on
    source._deliver(third, packet(DELTA, 5_000))  # going back: one frame on
    relayed = [viewer._queue.get_nowait() for _ in range(viewer._queue.qsize())]
    ticks = [p.pts for p in relayed]
    step = int(Fraction(100, 1000) / CLOCK)
    assert ticks == [0, step, 2 * step, 3 * step, 4 * step, 5 * step]
    assert all(p.time_base == CLOCK for p in relayed)
    assert bytes(relayed[0]).startswith(SPS_PPS), "a key frame gets the SDP's parameter sets"
    assert bytes(relayed[1]) == DELTA
    assert source.switches == 1
    assert [p.pts for p in [late._queue.get_nowait() for _ in range(late._queue.qsize())]] == [
        3 * step,
        4 * step,
        5 * step,
    ]
    source.stop()
    assert viewer.readyState == "ended"
    assert late.readyState == "ended"
    source._deliver(third, packet(DELTA, 5_300))  # after the end: ignored
    assert viewer._queue.qsize() == 1  # only the end
    with pytest.raises(MediaStreamError):
        await viewer.recv()


async def test_an_ended_session_is_reopened_and_a_switch_between_sessions_opens_at_once(
    offline: None,
) -> None:
    """A session that ends is reopened on the newest URL after RECONNECT_DELAY; a new URL
    that comes in between opens at once (and cancels the wait)."""
    urls = ["rtsp://camera?auth=1"]
    source = RelaySource(lambda: urls[-1])
    viewer = source.subscribe()
    first = source._reader
    assert first is not None
    source.switch("rtsp://camera?auth=2")
    pending = source._next
    assert pending is not None
    source._deliver(pending, None)  # the new session failed: the old one goes on
    assert source._next is None
    assert source._reader is first
    source._deliver(first, None)
    assert source._reader is None
    urls.append("rtsp://camera?auth=3")
    await asyncio.sleep(RECONNECT_DELAY + 0.1)
    assert source.url == "rtsp://camera?auth=3"
    reopened = source._reader
    assert reopened is not None
    source._deliver(first, None)  # a stale end: ignored
    assert source._reader is reopened
    source._deliver(reopened, None)
    source.switch("rtsp://camera?auth=4")  # between sessions: opened now, not in a second
    assert source.url == "rtsp://camera?auth=4"
    assert source._reconnect is None
    viewer.stop()  # the last viewer left: the source stops
    assert not source.live
    assert source.url is None
