"""A viewer's WebRTC session at Google: made once for its offer, extended, never regenerated."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from custom_components.nest_streams.core.errors import (
    AuthFailed,
    CommandFailed,
    ExtendUnsupported,
    StreamGone,
    TransientError,
    ViewerWithdrawn,
)
from custom_components.nest_streams.core.models import StreamHandle
from custom_components.nest_streams.core.scheduler import StreamScheduler
from custom_components.nest_streams.core.settings import Settings
from custom_components.nest_streams.core.viewer import AUTH, CANNOT_EXTEND, REFUSED

from .common import EPOCH, LIFETIME, FakeClient, clock, make_scheduler, running, virtual, webrtc

CAMERA = "enterprises/p/devices/w"


async def watch(
    client: FakeClient,
    seconds: float,
    *,
    cannot_extend: frozenset[str] = frozenset(),
    settings: Settings | None = None,
) -> tuple[list[tuple[float, str]], list[tuple[float, str]], StreamScheduler]:
    """A viewer watches camera `w` for `seconds`: the calls made, when it ended and why."""
    scheduler = make_scheduler(client, client.clock, settings, on_auth_failed=lambda: None)
    ended: list[tuple[float, str]] = []
    async with running(scheduler):
        scheduler.set_cameras([webrtc("w")], cannot_extend=cannot_extend)
        await asyncio.sleep(1)
        await scheduler.open_viewer(
            CAMERA, "offer", lambda why: ended.append((client.clock.now() - EPOCH, why))
        )
        await asyncio.sleep(seconds)
    return client.ops("w"), ended, scheduler


def test_a_battery_viewer_plays_to_its_expiry_and_is_told_it_ended() -> None:
    """A refused extension (battery camera): no regeneration (its answer could not reach the
    viewer); the session plays until it expires, then the viewer hears why; the camera is
    remembered as one that cannot extend."""

    async def main() -> Any:
        client = FakeClient(clock())
        client.script("w", "extend", ExtendUnsupported("Command not supported for camera."))
        return await watch(client, 900)

    ops, ended, scheduler = virtual(main())
    assert [op for _, op in ops] == ["generate", "extend"]
    assert len(ended) == 1
    assert ended[0][0] == pytest.approx(1 + LIFETIME - 1, abs=0.1)  # at expiry (less grace)
    assert ended[0][1] == CANNOT_EXTEND
    assert scheduler.cannot_extend() == {CAMERA}


def test_a_refused_extension_ends_the_view_at_once() -> None:
    """Any other refusal: the session is gone; the viewer hears it now; nothing is spent."""

    async def main() -> Any:
        client = FakeClient(clock())
        client.script("w", "extend", StreamGone("INVALID"))
        return await watch(client, 900)

    ops, ended, scheduler = virtual(main())
    assert [op for _, op in ops] == ["generate", "extend"]
    assert [why for _, why in ended] == [REFUSED]
    assert ended[0][0] < LIFETIME - 10
    assert scheduler.cannot_extend() == set()


def test_a_camera_known_to_refuse_extensions_is_not_extended() -> None:
    """What was learned before a restart is used: no extension is wasted on it."""

    async def main() -> Any:
        return await watch(FakeClient(clock()), 600, cannot_extend=frozenset({CAMERA}))

    ops, ended, _ = virtual(main())
    assert [op for _, op in ops] == ["generate"]
    assert [why for _, why in ended] == [CANNOT_EXTEND]


def test_a_passing_failure_is_retried_while_the_session_lasts() -> None:
    """A 5xx on an extension: tried again (the session id stays); the view goes on."""

    async def main() -> Any:
        client = FakeClient(clock())
        client.script("w", "extend", TransientError("503"), CommandFailed("500"))
        return await watch(client, 900)

    ops, ended, _ = virtual(main())
    assert [op for _, op in ops][:4] == ["generate", "extend", "extend", "extend"]
    assert ended == []
    retries = [at for at, op in ops if op == "extend"]
    assert retries[1] - retries[0] >= 1
    assert retries[2] < 1 + LIFETIME  # saved before it expired


def test_refused_credentials_end_the_view_and_ask_for_them() -> None:
    flagged: list[int] = []

    async def main() -> Any:
        clk = clock()
        client = FakeClient(clk)
        client.script("w", "extend", AuthFailed("invalid_grant"))
        scheduler = make_scheduler(client, clk, on_auth_failed=lambda: flagged.append(1))
        ended: list[str] = []
        async with running(scheduler):
            scheduler.set_cameras([webrtc("w")])
            await scheduler.open_viewer(CAMERA, "offer", ended.append)
            await asyncio.sleep(600)
        return ended

    assert virtual(main()) == [AUTH]
    assert flagged == [1]


def test_a_viewer_that_leaves_before_its_turn_costs_nothing() -> None:
    """Withdrawn before the generation was sent: no command at all."""

    async def main() -> Any:
        clk = clock()
        client = FakeClient(clk)
        client.script("c", "generate", 5.0)
        # 2 a minute: after the camera's command the minute has no room for a viewer's to
        # go before the pacer's next slot.
        scheduler = make_scheduler(client, clk, Settings(qpm=2))
        async with running(scheduler):
            from .common import rtsp

            scheduler.set_cameras([rtsp("c"), webrtc("w")])
            await asyncio.sleep(0.1)  # the camera's generation took the slot
            opening = asyncio.create_task(scheduler.open_viewer(CAMERA, "offer", print, key="v1"))
            await asyncio.sleep(0.1)
            assert not opening.done()  # its generation waits for a slot
            scheduler.withdraw_viewer("v1")
            with pytest.raises(ViewerWithdrawn):
                await opening
            await asyncio.sleep(60)
            assert scheduler.viewer_handle("v1") is None
        return client.ops("w")

    assert virtual(main()) == []


def test_a_viewer_that_leaves_while_its_session_is_made_has_it_stopped() -> None:
    """Withdrawn while Google generates it: the session is stopped, never extended."""

    async def main() -> Any:
        clk = clock()
        client = FakeClient(clk)
        client.script("w", "generate", 3.0)
        scheduler = make_scheduler(client, clk)
        async with running(scheduler):
            scheduler.set_cameras([webrtc("w")])
            opening = asyncio.create_task(scheduler.open_viewer(CAMERA, "offer", print, key="v1"))
            await asyncio.sleep(1)
            scheduler.withdraw_viewer("v1")
            with pytest.raises(ViewerWithdrawn):
                await opening
            await asyncio.sleep(600)
        return client.ops("w"), [s.session_id for s in client.stopped]

    ops, stopped = virtual(main())
    assert [op for _, op in ops] == ["generate", "stop"]
    assert stopped == ["s1"]


def test_a_reload_hands_a_session_over() -> None:
    """Stopping without stopping the streams leaves the viewer's session running; a new
    scheduler adopts it and extends it on; an expired one is not adopted."""

    async def main() -> Any:
        clk = clock()
        client = FakeClient(clk)
        first = make_scheduler(client, clk)
        async with running(first):
            first.set_cameras([webrtc("w")])
            key, _ = await first.open_viewer(CAMERA, "offer", print)
            await asyncio.sleep(10)
            handle = first.viewer_handle(key)
        assert handle is not None
        assert first.viewer_handle(key) is None
        second = make_scheduler(client, clk)
        ended: list[str] = []
        async with running(second):
            second.set_cameras([webrtc("w")])
            adopted = second.adopt_viewer(CAMERA, handle, ended.append)
            expired = second.adopt_viewer(
                CAMERA, StreamHandle(handle.protocol, clk.now() - 1, session_id="x"), print
            )
            unknown = second.adopt_viewer("enterprises/p/devices/nope", handle, print)
            await asyncio.sleep(600)
        return adopted, expired, unknown, client.ops("w"), client.stopped, ended

    adopted, expired, unknown, ops, stopped, ended = virtual(main())
    assert adopted is not None
    assert expired is None
    assert unknown is None
    assert [op for _, op in ops][:3] == ["generate", "extend", "extend"]
    assert stopped == [], "a reload does not stop the viewer's session"
    assert ended == []
