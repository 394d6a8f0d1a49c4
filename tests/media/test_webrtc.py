"""A viewer's relay peer on its own: what it leaves behind when the viewer goes early."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from pathlib import Path

import aioice.ice
import av
import pytest

from custom_components.nest_streams.media import webrtc as webrtc_module
from custom_components.nest_streams.media.feed import CameraFeed
from custom_components.nest_streams.media.webrtc import AudioTrack, RelayError, RelayPeer

from ..common import CHROME_OFFER


def udp_sockets() -> int:
    """This process's open UDP sockets."""
    inodes: set[str] = set()
    for fd in Path("/proc/self/fd").iterdir():
        with contextlib.suppress(OSError):
            if (link := os.readlink(fd)).startswith("socket:["):
                inodes.add(link[8:-1])
    return sum(
        line.split()[9] in inodes
        for proto in ("udp", "udp6")
        for line in Path(f"/proc/self/net/{proto}").read_text().splitlines()[1:]
    )


@pytest.fixture
def loopback_ice(monkeypatch: pytest.MonkeyPatch) -> None:
    """ICE on loopback only: one host candidate, one socket per peer."""
    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda **_: ["127.0.0.1"])


@pytest.mark.usefixtures("socket_enabled", "loopback_ice")
async def test_a_viewer_that_leaves_while_answered_leaves_no_socket() -> None:
    """Closed at every point of its answer (ICE gathering included, where aiortc binds its
    sockets): no UDP socket stays open, no consumer stays on the feed."""
    feed = CameraFeed("cam", ca_file=None, idle_timeout=None)
    before = udp_sockets()
    closed: list[str | None] = []
    for steps in range(40):
        peer = RelayPeer(feed, lambda: None, [], lambda _, reason: closed.append(reason))
        answer = asyncio.create_task(peer.answer(CHROME_OFFER))
        for _ in range(steps):
            await asyncio.sleep(0)
        await peer.close()
        with contextlib.suppress(RelayError):
            await answer
        assert peer.closed
    for _ in range(50):  # aiortc's own connect tasks end after the close
        if len(asyncio.all_tasks()) == 1:
            break
        await asyncio.sleep(0.01)
    assert udp_sockets() == before
    assert feed.consumers == 0
    assert closed == [None] * 40, "a viewer that left is not told why"


async def test_a_viewer_behind_on_sound_loses_its_oldest_and_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A viewer's sound queue keeps the newest packets; falling behind is logged once."""
    caplog.set_level(logging.DEBUG, logger=webrtc_module.__name__)
    track = AudioTrack()
    packets = [av.Packet(bytes([n])) for n in range(webrtc_module.MAX_QUEUED_AUDIO + 3)]
    for packet in packets:
        track.put(packet)
    assert [m for m in caplog.messages if "behind" in m] == [
        f"a viewer's sound is {webrtc_module.MAX_QUEUED_AUDIO} packets behind"
    ]
    assert await track.recv() is packets[3]
    track.stop()
