"""A camera's one RTSP session, fed by hand: token switches, the GOP, failures, idling."""

from __future__ import annotations

import asyncio
from collections.abc import Generator
import itertools
import logging
from unittest.mock import MagicMock, patch

import pytest

from custom_components.nest_streams.media import feed as feed_module
from custom_components.nest_streams.media.feed import (
    CameraFeed,
    has_parameter_sets,
    with_parameter_sets,
)
from custom_components.nest_streams.media.session import RtspSession

from .common import DELTA, KEY, SPS_PPS, Recorder, packet


@pytest.fixture
def opened() -> Generator[MagicMock]:
    """Sessions that open nothing: the tests deliver their packets."""
    with patch.object(RtspSession, "start") as start:
        yield start


def session_of(feed: CameraFeed, *, pending: bool = False) -> RtspSession:
    """The feed's current (or pending) session."""
    session = feed._next if pending else feed._session
    assert session is not None
    return session


def test_parameter_sets_are_found_and_added() -> None:
    assert has_parameter_sets(SPS_PPS + KEY)
    assert not has_parameter_sets(KEY)
    key = packet(KEY, 7, key=True)
    with_sets = with_parameter_sets(key, SPS_PPS)
    assert bytes(with_sets) == SPS_PPS + KEY
    assert (with_sets.pts, with_sets.is_keyframe) == (7, True)
    assert with_parameter_sets(with_sets, SPS_PPS) is with_sets
    assert with_parameter_sets(key, b"") is key


async def test_a_new_url_is_taken_over_at_its_first_key_frame(opened: MagicMock) -> None:
    """The old session plays until the new one has a key frame; timestamps go on; stale
    packets are ignored; the same URL again changes nothing."""
    feed = CameraFeed("cam", ca_file=None)
    viewer = Recorder()
    feed.set_url("rtsps://cam?auth=1")
    assert opened.call_count == 0, "nobody watches: nothing is opened"
    feed.subscribe(viewer)
    first = session_of(feed)
    first.video_extradata = SPS_PPS
    feed._deliver(first, True, packet(DELTA, 0))  # before a key frame: not given out
    feed._deliver(first, True, packet(KEY, 100, key=True))
    feed._deliver(first, True, packet(DELTA, 200))
    feed.set_url("rtsps://cam?auth=1")
    assert opened.call_count == 1
    feed.set_url("rtsps://cam?auth=2")
    second = session_of(feed, pending=True)
    feed.set_url("rtsps://cam?auth=3")  # newer still, before the second was taken over
    assert second.stopped
    third = session_of(feed, pending=True)
    feed._deliver(second, True, packet(KEY, 0, key=True))  # a stopped session: ignored
    feed._deliver(third, True, packet(DELTA, 5_000))  # no key frame yet: the old one plays
    feed._deliver(first, True, packet(DELTA, 300))
    feed._deliver(third, True, packet(KEY, 5_100, key=True))  # taken over here
    assert first.stopped
    assert feed.switches == 1
    feed._deliver(first, True, packet(DELTA, 400))  # the old session's late packet
    feed._deliver(third, True, packet(DELTA, 5_200))
    assert [p.pts for p in viewer.video] == [0, 9_000, 18_000, 27_000, 36_000]
    assert bytes(viewer.video[0]).startswith(SPS_PPS), "a key frame carries the SDP's sets"
    assert [p.pts for p in feed.gop()] == [27_000, 36_000], "from the newest key frame"
    feed.close("unloaded")
    assert viewer.ended == ["unloaded"]
    assert third.stopped
    feed._deliver(third, True, packet(DELTA, 5_300))
    assert len(viewer.video) == 5


async def test_failures_back_off_and_are_said_once(
    opened: MagicMock, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each failed session waits longer for the next (1, 2, 4 ... in the real back-off); the
    camera hears the problem once per change, the log says it once and says the recovery."""
    monkeypatch.setattr(feed_module, "BACKOFF", (0.05, 0.1, 0.2))
    caplog.set_level(logging.DEBUG, logger=feed_module.__name__)
    problems: list[str | None] = []
    feed = CameraFeed("Front door", ca_file=None, on_problem=problems.append)
    feed.set_url("rtsps://cam?auth=1")
    feed.subscribe(Recorder())
    loop = asyncio.get_running_loop()
    opened_again = asyncio.Event()
    opened.side_effect = opened_again.set
    starts = []
    for reason in ("the stream server refused the connection",) * 3:
        starts.append(loop.time())
        opened_again.clear()
        feed._ended(session_of(feed), reason)
        assert feed._session is None
        await asyncio.wait_for(opened_again.wait(), 2)
    waits = [round(b - a, 2) for a, b in itertools.pairwise([*starts, loop.time()])]
    assert waits[0] >= 0.05
    assert waits[1] >= 0.1
    assert waits[2] >= 0.2
    assert problems == ["the stream server refused the connection"]
    feed._deliver(session_of(feed), True, packet(KEY, 0, key=True))
    assert problems[-1] is None
    assert feed.running
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "Front door: no live picture: the stream server refused the connection; retrying"
    ]
    assert "Front door: the live picture is back" in caplog.messages
    feed.close("done")


async def test_a_session_that_ends_after_playing_is_replaced_quietly(
    opened: MagicMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rotated token's session ends on the server: replaced after a second (here less), no
    problem reported; the GOP it left is not kept (a still must not show the old session)."""
    monkeypatch.setattr(feed_module, "RECONNECT_DELAY", 0.05)
    problems: list[str | None] = []
    feed = CameraFeed("cam", ca_file=None, on_problem=problems.append)
    feed.set_url("rtsps://cam?auth=1")
    feed.subscribe(Recorder())
    first = session_of(feed)
    feed._deliver(first, True, packet(KEY, 0, key=True))
    feed._ended(first, None)
    assert feed.gop() == []
    await asyncio.sleep(0.1)
    assert feed._session is not None
    assert feed._session is not first
    assert problems == []
    feed.close("done")


async def test_a_still_opens_the_session_for_a_while(
    opened: MagicMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing is read unwatched; a still opens the session, waits for a key frame and keeps
    the session open for `idle_timeout`, then it closes; without a URL there is no still."""
    feed = CameraFeed("cam", ca_file=None, idle_timeout=0.2)
    assert await feed.key_frame(0.05) is None
    feed.set_url("rtsps://cam?auth=1")
    waiting = asyncio.create_task(feed.key_frame(1.0))
    await asyncio.sleep(0.01)
    session = session_of(feed)
    session.video_extradata = SPS_PPS
    feed._deliver(session, True, packet(KEY, 0, key=True))
    key = await waiting
    assert key is not None
    assert bytes(key).startswith(SPS_PPS)
    assert await feed.key_frame(0.05) is key, "the held key frame, no waiting"
    assert await asyncio.wait_for(feed.key_frame(1.0), 0.01) is key
    await asyncio.sleep(0.35)
    assert session.stopped, "idle: closed"
    assert feed._session is None
    feed.close("done")


async def test_the_end_of_the_stream_closes_the_session_and_clears_its_problem(
    opened: MagicMock,
) -> None:
    problems: list[str | None] = []
    feed = CameraFeed("cam", ca_file=None, on_problem=problems.append)
    feed.set_url("rtsps://cam?auth=1")
    feed.subscribe(Recorder())
    session = session_of(feed)
    feed._ended(session, "no answer from the stream server")
    feed.set_url(None)  # the camera's stream stopped: nothing left to read
    assert problems == ["no answer from the stream server", None]
    assert feed._retry is None
    assert feed.url is None
    late = Recorder()
    feed.close("gone")
    feed.subscribe(late)
    assert late.ended == ["closed"]
    feed.set_url("rtsps://cam?auth=2")
    assert feed.url is None, "a closed feed takes no URL"


async def test_a_picture_without_its_sound_is_logged_once(
    opened: MagicMock, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A session whose sound stops while its picture plays says so once (debug), and again
    when the sound is back."""
    monkeypatch.setattr(feed_module, "SILENCE", 0.05)
    caplog.set_level(logging.DEBUG, logger=feed_module.__name__)
    feed = CameraFeed("Porch", ca_file=None)
    feed.set_url("rtsps://cam?auth=1")
    feed.subscribe(Recorder())
    session = session_of(feed)
    session.audio = MagicMock()
    feed._deliver(session, True, packet(KEY, 0, key=True))
    feed._deliver(session, False, packet(b"a", 0))
    feed._deliver(session, True, packet(DELTA, 100))
    await asyncio.sleep(0.1)
    for at in (200, 300):
        feed._deliver(session, True, packet(DELTA, at))
    silent = [m for m in caplog.messages if "no sound" in m]
    assert silent == [
        "Porch: the picture plays; no sound for 0.05 s (1 sound packets this session, 0 held "
        "back; the latest at 0.00 s, the last given out at 0.00 s, the picture at 0.10 s)"
    ]
    feed._deliver(session, False, packet(b"a", 300))
    assert "Porch: the stream's sound is back" in caplog.messages
    feed.close("done")


async def test_sound_the_timeline_drops_counts_as_no_sound(
    opened: MagicMock, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Sound that arrives but is not given out (its time stands still behind what was given)
    is logged as no sound: what the viewers hear is what counts."""
    monkeypatch.setattr(feed_module, "SILENCE", 0.05)
    caplog.set_level(logging.DEBUG, logger=feed_module.__name__)
    feed = CameraFeed("Porch", ca_file=None)
    feed.set_url("rtsps://cam?auth=1")
    recorder = Recorder()
    feed.subscribe(recorder)
    session = session_of(feed)
    session.audio = MagicMock()
    feed._deliver(session, True, packet(KEY, 0, key=True))
    feed._deliver(session, False, packet(b"a", 0))
    for at in (100, 200, 300):
        await asyncio.sleep(0.03)
        feed._deliver(session, False, packet(b"a", 0))  # the same time again: dropped
        feed._deliver(session, True, packet(DELTA, at))
    assert len(recorder.audio) == 1
    assert [m for m in caplog.messages if "no sound" in m] == [
        "Porch: the picture plays; no sound for 0.05 s (3 sound packets this session, 2 held "
        "back; the latest at 0.00 s, the last given out at 0.00 s, the picture at 0.10 s)"
    ]
    feed.close("done")
