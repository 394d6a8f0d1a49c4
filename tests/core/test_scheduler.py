"""The scheduler: start-up without a stagger, admission, camera changes, stop."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest

from custom_components.nest_streams.core.clock import LoopClock
from custom_components.nest_streams.core.errors import (
    CommandFailed,
    ExtendUnsupported,
    OverCapacity,
    QuotaExceeded,
    TransientError,
)
from custom_components.nest_streams.core.models import (
    CameraInfo,
    StreamHandle,
    StreamState,
    StreamStatus,
)
from custom_components.nest_streams.core.scheduler import OVER_CAPACITY, StreamScheduler
from custom_components.nest_streams.core.settings import Settings

from .common import EPOCH, FakeClient, clock, ended, make_scheduler, rtsp, running, virtual, webrtc


def test_capacity() -> None:
    assert Settings(qpm=10, extension_lead=15).capacity == 46
    assert Settings(qpm=5, extension_lead=60).capacity == 19  # 240 * 0.98 / 12.12 = 19.4


def test_twenty_cameras_all_run_within_two_and_a_half_minutes() -> None:
    async def main() -> tuple[float | None, int]:
        clk = clock()
        client = FakeClient(clk)
        first_all: list[float] = []

        def listener(_device_id: str | None) -> None:
            states = [s.state for s in scheduler.statuses().values()]
            if not first_all and states and all(s is StreamState.RUNNING for s in states):
                first_all.append(clk.now())

        scheduler = make_scheduler(client, clk, on_change=listener)
        start = clk.now()
        async with running(scheduler, stop_streams=True, grace=150):
            scheduler.set_cameras([rtsp(f"c{i:02d}") for i in range(20)])
            await asyncio.sleep(3600)
        leftovers = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        stops = sum(1 for call in client.calls if call.op == "stop")
        assert not leftovers
        return (first_all[0] - start) if first_all else None, stops

    all_running_after, stops = virtual(main())
    assert all_running_after is not None
    assert all_running_after <= 150
    assert stops == 20  # given the time (2 minutes at 10 QPM), every stream is stopped


def test_admission_and_camera_changes() -> None:
    async def main() -> list[Any]:
        clk = clock()
        client = FakeClient(clk)
        scheduler = make_scheduler(client, clk, Settings(qpm=1, extension_lead=60))
        assert scheduler.capacity == 3
        async with running(scheduler):
            cams = [rtsp(f"c{i}") for i in range(5)]
            scheduler.set_cameras(cams, excluded={rtsp("c0").device_id})
            await asyncio.sleep(400)
            first = (scheduler.over_capacity, scheduler.statuses())
            # c4 leaves the project, c0 is wanted again: c1..c3 run and keep their places.
            scheduler.set_cameras(cams[:4])
            await asyncio.sleep(400)
            second = (scheduler.over_capacity, scheduler.statuses(), dict(scheduler.cameras))
            handles = scheduler.handles()
            stats = scheduler.stats()
        return [first, second, handles, stats, client.ops("c4")]

    first, second, handles, stats, c4_ops = virtual(main())
    over, statuses = first
    assert over == ("enterprises/p/devices/c4",)
    assert statuses["enterprises/p/devices/c0"].state is StreamState.STOPPED
    assert statuses["enterprises/p/devices/c0"].last_error is None
    assert statuses["enterprises/p/devices/c4"].state is StreamState.STOPPED
    assert statuses["enterprises/p/devices/c4"].last_error == OVER_CAPACITY
    assert statuses["enterprises/p/devices/c1"].state is StreamState.RUNNING
    over, statuses, cameras = second
    assert over == ("enterprises/p/devices/c0",)
    assert "enterprises/p/devices/c4" not in cameras
    assert statuses["enterprises/p/devices/c0"].state is StreamState.STOPPED
    assert statuses["enterprises/p/devices/c3"].state is StreamState.RUNNING
    assert set(handles) == {f"enterprises/p/devices/c{i}" for i in range(1, 4)}
    assert stats.executed > 0
    assert [op for _, op in c4_ops] == []


def test_lead_adapts_to_the_queue_but_keeps_the_quota_feasible() -> None:
    async def main() -> tuple[float, float]:
        clk = clock()
        scheduler = make_scheduler(FakeClient(clk), clk, Settings(extension_lead=15))
        scheduler.set_cameras([rtsp(f"c{i}") for i in range(5)])
        few = scheduler.lead()
        scheduler.set_cameras([rtsp(f"c{i}") for i in range(47)])
        many = scheduler.lead()
        await scheduler.stop(stop_streams=False)
        return few, many

    few, many = virtual(main())
    assert few == pytest.approx(15 + 4 * 6.06)  # the headroom of 4 intervals
    assert 15 <= many < few


def test_lead_grows_with_the_queue_wait() -> None:
    """A busy queue extends earlier: twice the average wait plus one interval, within slack."""

    async def main() -> tuple[float, float, float]:
        clk = clock()
        scheduler = make_scheduler(FakeClient(clk), clk, Settings(extension_lead=15))
        async with running(scheduler):
            scheduler.set_cameras([rtsp(f"c{i}") for i in range(6)])
            await asyncio.sleep(40)  # six generations queued at once: they waited 0-30 s
            lead, wait, interval = (
                scheduler.lead(),
                scheduler.queue.average_wait,
                scheduler.queue.interval,
            )
        return lead, wait, interval

    lead, wait, interval = virtual(main())
    assert wait > 5
    assert lead == pytest.approx(15 + 2 * wait + interval)


def test_admission_keeps_running_cameras() -> None:
    """A new camera that sorts first does not evict one that runs; it waits for room."""

    async def main() -> tuple[tuple[str, ...], tuple[str, ...], dict[str, bool]]:
        clk = clock()
        scheduler = make_scheduler(FakeClient(clk), clk, Settings(qpm=1, extension_lead=60))
        async with running(scheduler):
            cams = [rtsp(f"c{i}") for i in range(1, 4)]
            scheduler.set_cameras(cams)
            await asyncio.sleep(200)
            newcomer = rtsp("A-new")
            scheduler.set_cameras([newcomer, *cams])
            full = scheduler.over_capacity
            # A running camera leaves the project: the newcomer gets its place.
            scheduler.set_cameras([newcomer, *cams[1:]])
            room = scheduler.over_capacity
            enabled = {d: scheduler.stream(d).enabled for d in scheduler.cameras}
        return full, room, enabled

    full, room, enabled = virtual(main())
    assert full == ("enterprises/p/devices/A-new",)
    assert room == ()
    assert all(enabled.values())


def test_viewers_count_against_the_quota() -> None:
    """Kept-alive cameras plus viewers never exceed the capacity: the extra viewer is refused."""

    async def main() -> tuple[str, int, bool]:
        clk = clock()
        client = FakeClient(clk)
        scheduler = make_scheduler(client, clk, Settings(qpm=1, extension_lead=60))
        async with running(scheduler):
            cams = [rtsp("c1"), rtsp("c2"), webrtc("w")]
            scheduler.set_cameras(cams, excluded={webrtc("w").device_id})
            await asyncio.sleep(150)
            key, _ = await scheduler.open_viewer("enterprises/p/devices/w", "v=0\r\n", ended)
            try:
                await scheduler.open_viewer("enterprises/p/devices/w", "v=0\r\n", ended)
            except OverCapacity as err:
                refused = str(err)
            else:
                refused = ""
            scheduler.close_viewer(key)
            key, _ = await scheduler.open_viewer("enterprises/p/devices/w", "v=0\r\n", ended)
            generations = len([c for c in client.calls if c.device == "w" and c.op == "generate"])
        return refused, generations, bool(key)

    refused, generations, reopened = virtual(main())
    assert "2 cameras and 1 viewers" in refused
    assert generations == 2  # the refused viewer cost no command
    assert reopened


def test_a_viewer_goes_ahead_of_background_work_with_its_own_offer() -> None:
    """The viewer's session is generated next, with the viewer's offer; nothing else is ever
    generated for a WebRTC camera (on demand)."""

    async def main() -> tuple[list[str], list[tuple[str, str | None]], StreamState]:
        clk = clock()
        client = FakeClient(clk)
        scheduler = make_scheduler(client, clk)
        async with running(scheduler):
            scheduler.set_cameras([*(rtsp(f"c{i}") for i in range(6)), webrtc("w")])
            await asyncio.sleep(0.5)
            await scheduler.open_viewer("enterprises/p/devices/w", "viewer-offer", ended)
            order = [call.device for call in client.calls if call.op == "generate"]
            await asyncio.sleep(60)
            state = scheduler.statuses()["enterprises/p/devices/w"].state
        return order, client.offers, state

    order, offers, state = virtual(main())
    assert order == ["c0", "w"]  # the first slot was taken; the viewer had the next one
    assert [offer for device, offer in offers if device == "w"] == ["viewer-offer"]
    assert {offer for device, offer in offers if device.startswith("c")} == {None}
    assert state is StreamState.ON_DEMAND


def test_webrtc_cameras_are_on_demand_and_leave_the_quota_to_rtsp_cameras() -> None:
    """With room for 2 cameras, 2 RTSP cameras run beside 3 WebRTC cameras, which make no
    calls until someone watches."""

    async def main() -> tuple[dict[str, StreamState], tuple[str, ...], list[str]]:
        clk = clock()
        client = FakeClient(clk)
        scheduler = make_scheduler(client, clk, Settings(qpm=0.5))
        async with running(scheduler):
            scheduler.set_cameras([webrtc("a1"), webrtc("a2"), webrtc("a3"), rtsp("x"), rtsp("y")])
            await asyncio.sleep(900)
            states = {d.rsplit("/", 1)[1]: s.state for d, s in scheduler.statuses().items()}
        return states, scheduler.over_capacity, sorted({c.device for c in client.calls})

    states, over, called = virtual(main())
    assert states == {
        "a1": StreamState.ON_DEMAND,  # first by name: would take the quota if kept alive
        "a2": StreamState.ON_DEMAND,
        "a3": StreamState.ON_DEMAND,
        "x": StreamState.RUNNING,
        "y": StreamState.RUNNING,
    }
    assert over == ()
    assert called == ["x", "y"]


def test_changes_name_the_camera_that_changed() -> None:
    """`on_change` gets the device id of a camera whose stream changed, None for the queue."""

    async def main() -> list[str | None]:
        clk = clock()
        changes: list[str | None] = []
        scheduler = make_scheduler(FakeClient(clk), clk, on_change=changes.append)
        async with running(scheduler):
            scheduler.set_cameras([rtsp("a"), rtsp("b")])
            await asyncio.sleep(30)
        return changes

    changes = virtual(main())
    assert {"enterprises/p/devices/a", "enterprises/p/devices/b", None} <= set(changes)
    assert set(changes) <= {"enterprises/p/devices/a", "enterprises/p/devices/b", None}


def test_admission_follows_our_share_of_a_quota_another_app_uses() -> None:
    """Another app's 429s shrink admission at once (the cameras that no longer fit are named,
    and left to expire rather than stopped with quota they lack); once it is quiet the
    cameras come back a few at a time."""

    async def main() -> tuple[
        list[tuple[float, int]], list[str], list[StreamStatus], set[str], set[str], float | None
    ]:
        clk = clock()
        client = _QuotaFull(clk, start=540, end=800)
        scheduler = make_scheduler(client, clk, Settings(qpm=10))
        async with running(scheduler):
            cams = [rtsp(f"c{i:02d}") for i in range(1, 27)]
            scheduler.set_cameras(cams)
            await asyncio.sleep(530)
            over: list[tuple[float, int]] = []
            dropped: list[str] = []
            statuses: list[StreamStatus] = []
            held: set[str] = set()
            for _ in range(50 * 6):
                await asyncio.sleep(10)
                if not over or over[-1][1] != len(scheduler.over_capacity):
                    over.append((round(clk.now() - EPOCH), len(scheduler.over_capacity)))
                if len(over) == 2 and not dropped:
                    dropped = [d.rsplit("/", 1)[-1] for d in scheduler.over_capacity]
                    statuses = [scheduler.statuses()[d] for d in scheduler.over_capacity]
                    held = {d.rsplit("/", 1)[-1] for d in scheduler.handles()}
            stopped_at_google = {c.device for c in client.calls if c.op == "stop"}
            effective = scheduler.stats().effective_qpm
        return over, dropped, statuses, held, stopped_at_google, effective

    over, dropped, statuses, held, stopped_at_google, effective = virtual(main())
    assert over[0][1] == 0
    # 429s for 4 minutes between our accepted extensions: two drops (admission 1.5 under our
    # rate: room for 20 of the 26 cameras); the last names leave.
    assert over[1][1] == 6
    assert dropped == ["c21", "c22", "c23", "c24", "c25", "c26"]
    # Each shows why, holds no stream any more (none is saved), and none was stopped at Google.
    assert {(s.state, s.last_error, s.stream_url) for s in statuses} == {
        (StreamState.STOPPED, OVER_CAPACITY, None)
    }
    assert held == {f"c{i:02d}" for i in range(1, 21)}
    assert not stopped_at_google
    # Quiet for 30 minutes: they come back a step (0.5 a minute) at a time, all of them.
    assert all(earlier - later <= 3 for (_, earlier), (_, later) in itertools.pairwise(over[1:]))
    assert over[-1][1] == 0
    assert over[-1][0] - over[1][0] >= 1800  # quiet for 30 minutes first
    assert effective == 10


class _QuotaFull(FakeClient):
    """Another app spends all but `left` of the project's 10 commands a minute from `start` to
    `end`: our extensions beyond `left` in Google's last minute get 429s."""

    def __init__(self, clk: LoopClock, start: float, end: float, left: int = 3) -> None:
        super().__init__(clk)
        self._start, self._end, self._left = start, end, left
        self._ours: list[float] = []

    async def extend(self, camera: CameraInfo, stream: StreamHandle) -> StreamHandle:
        now = self.clock.now()
        self._ours = [at for at in self._ours if at > now - 60]
        if self._start <= now - EPOCH < self._end and len(self._ours) >= self._left:
            raise QuotaExceeded("429")
        self._ours.append(now)
        return await super().extend(camera, stream)


def test_a_camera_stopped_before_its_turn_spends_no_command() -> None:
    """Its queued generation is withdrawn: a slot for nothing is a slot another camera lacks.
    Started again, it runs."""

    async def main() -> tuple[list[tuple[str, str]], list[tuple[str, str]], StreamState]:
        clk = clock()
        client = FakeClient(clk)
        scheduler = make_scheduler(client, clk, Settings(qpm=1, extension_lead=60))
        async with running(scheduler):
            cams = [rtsp(f"c{i}") for i in range(1, 4)]
            scheduler.set_cameras(cams)
            await asyncio.sleep(1)  # c1 generates, c2 and c3 wait a minute each
            scheduler.set_cameras(cams, excluded={rtsp("c3").device_id})
            await asyncio.sleep(200)
            before = [(call.device, call.op) for call in client.calls]
            scheduler.set_cameras(cams)  # started again: its state machine still runs
            await asyncio.sleep(200)
            state = scheduler.statuses()["enterprises/p/devices/c3"].state
        return before, [(call.device, call.op) for call in client.calls], state

    before, calls, state = virtual(main())
    assert ("c3", "generate") not in before
    assert ("c2", "generate") in before
    assert ("c3", "generate") in calls
    assert state is StreamState.RUNNING


def test_a_camera_whose_hourly_budget_is_spent_says_so_and_waits() -> None:
    async def main() -> tuple[list[str], float | None, int]:
        clk = clock()
        client = FakeClient(clk)
        for _ in range(6):
            client.script("c1", "generate", TransientError("503"))
        settings = Settings(device_calls_per_hour=3, max_failures=50, retry_base=1)
        scheduler = make_scheduler(client, clk, settings)
        async with running(scheduler):
            scheduler.set_cameras([rtsp("c1")])
            states = []
            for _ in range(30):
                await asyncio.sleep(10)
                states.append(scheduler.stream("enterprises/p/devices/c1").status.state.value)
            status = scheduler.stream("enterprises/p/devices/c1").status
            sent = len(client.calls)
        next_action = None if status.next_action_at is None else status.next_action_at - EPOCH
        return states, next_action, sent

    states, next_action, sent = virtual(main())
    assert sent == 3  # not hammered: 3 tries, then it waits for the hour
    assert states[-1] == "hourly_limit"
    assert next_action == pytest.approx(3600, abs=1)


def test_a_viewer_gets_its_session_and_closing_it_stops_it() -> None:
    """The viewer gets the generated session; closing it stops it at Google and ends its
    extensions; closing it again, or an unknown key, changes nothing."""

    async def main() -> tuple[StreamHandle, list[tuple[float, str]], list[StreamHandle]]:
        clk = clock()
        client = FakeClient(clk)
        scheduler = make_scheduler(client, clk)
        async with running(scheduler):
            scheduler.set_cameras([webrtc("w")])
            key, handle = await scheduler.open_viewer("enterprises/p/devices/w", "v=0\r\n", ended)
            await asyncio.sleep(400)  # extended once
            scheduler.close_viewer(key)
            scheduler.close_viewer(key)
            scheduler.close_viewer("enterprises/p/devices/w#viewer-99")
            await asyncio.sleep(900)
        return handle, client.ops("w"), client.stopped

    handle, ops, stopped = virtual(main())
    assert handle.session_id == "s1"
    assert handle.expires_at == EPOCH + 300
    assert [op for _, op in ops] == ["generate", "extend", "stop"]
    assert [s.session_id for s in stopped] == ["s1"]  # the extension keeps the session id


def test_a_viewer_whose_session_cannot_be_generated_gets_the_error_and_costs_no_more() -> None:
    """The first generation fails: the viewer gets Google's error, and nothing is retried."""

    async def main() -> tuple[str, int, list[tuple[float, str]]]:
        clk = clock()
        client = FakeClient(clk)
        client.script("w", "generate", CommandFailed("offerSdp contains an invalid value."))
        scheduler = make_scheduler(client, clk)
        async with running(scheduler):
            scheduler.set_cameras([webrtc("w")])
            with pytest.raises(CommandFailed) as err:
                await scheduler.open_viewer("enterprises/p/devices/w", "v=0\r\n", ended)
            await asyncio.sleep(900)
            tasks = len([t for t in asyncio.all_tasks() if "viewer" in t.get_name()])
        return str(err.value), tasks, client.ops("w")

    error, tasks, ops = virtual(main())
    assert error == "offerSdp contains an invalid value."
    assert tasks == 0
    assert ops == [(0.0, "generate")]


def test_stop_closes_the_viewers_and_stops_their_sessions() -> None:
    async def main() -> tuple[list[str], list[asyncio.Task[Any]]]:
        clk = clock()
        client = FakeClient(clk)
        scheduler = make_scheduler(client, clk)
        async with running(scheduler, stop_streams=True):
            scheduler.set_cameras([rtsp("c"), webrtc("w")])
            await scheduler.open_viewer("enterprises/p/devices/w", "v=0\r\n", ended)
            await asyncio.sleep(30)
        left = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        return sorted(str(s.session_id) for s in client.stopped), left

    stopped, left = virtual(main())
    assert stopped == ["s1", "s2"]  # the camera's stream and the viewer's session
    assert left == []


def test_a_drop_of_our_share_keeps_the_cameras_the_user_stopped_stopped() -> None:
    """Admission runs again when another app takes part of the quota: with the same wishes."""

    async def main() -> tuple[float, list[tuple[float, str]], StreamState]:
        clk = clock()
        client = FakeClient(clk)
        # Refused, accepted, refused again at the next extension: another app, not a storm.
        client.script("a", "extend", QuotaExceeded("429"), None, QuotaExceeded("429"))
        scheduler = make_scheduler(client, clk)
        async with running(scheduler):
            scheduler.set_cameras([rtsp("a"), rtsp("b"), rtsp("c")], excluded={rtsp("c").device_id})
            await asyncio.sleep(600)
            state = scheduler.statuses()["enterprises/p/devices/c"].state
        return scheduler.quota.admission, client.ops("c"), state

    admission, calls_of_c, state = virtual(main())
    assert admission < 10  # the share dropped: admission ran again
    assert calls_of_c == []
    assert state is StreamState.STOPPED


def test_commands_and_cameras_run_in_named_tasks() -> None:
    """The tasks carry names (HA lists them by name): given factories are used for them; the
    cameras' factory makes the commands' tasks too when no other is given."""

    async def main() -> tuple[list[str], list[str], list[str], list[str]]:
        clk = clock()
        client = FakeClient(clk)
        spawned: list[str] = []
        commands: list[str] = []
        only: list[str] = []

        def spawn(coro: Any, name: str) -> asyncio.Task[Any]:
            spawned.append(name)
            return asyncio.create_task(coro, name=name)

        def spawn_command(coro: Any, name: str) -> asyncio.Task[Any]:
            commands.append(name)
            return asyncio.create_task(coro, name=name)

        client.script("d", "generate", 1.0)  # its command's task lives for a second
        default_named = StreamScheduler(
            client, clk, Settings(), on_change=lambda _: None, on_auth_failed=lambda: None
        )
        async with running(default_named):
            default_named.set_cameras([rtsp("d")])
            await asyncio.sleep(0.5)
            names = [task.get_name() for task in asyncio.all_tasks()]
        scheduler = StreamScheduler(
            client,
            clk,
            Settings(),
            on_change=lambda _: None,
            on_auth_failed=lambda: None,
            spawn=spawn,
            spawn_command=spawn_command,
        )
        async with running(scheduler):
            scheduler.set_cameras([rtsp("a"), webrtc("w")])
            await scheduler.open_viewer("enterprises/p/devices/w", "v=0\r\n", ended)
            await asyncio.sleep(10)

        def spawn_only(coro: Any, name: str) -> asyncio.Task[Any]:
            only.append(name)
            return asyncio.create_task(coro, name=name)

        one_factory = StreamScheduler(
            client,
            clk,
            Settings(),
            on_change=lambda _: None,
            on_auth_failed=lambda: None,
            spawn=spawn_only,
        )
        async with running(one_factory):
            one_factory.set_cameras([rtsp("b")])
            await asyncio.sleep(10)
        return names, spawned, commands, only

    names, spawned, commands, only = virtual(main())
    assert "nest_streams camera enterprises/p/devices/d" in names
    assert "sdm GENERATE" in names
    assert spawned[:2] == [
        "nest_streams camera enterprises/p/devices/a",
        "nest_streams camera enterprises/p/devices/w",
    ]
    assert spawned[2] == "enterprises/p/devices/w#viewer-1"
    assert commands == ["sdm GENERATE", "sdm GENERATE"]
    assert only == ["nest_streams camera enterprises/p/devices/b", "sdm GENERATE"], (
        "one factory makes the commands' tasks too"
    )


def test_a_full_project_is_logged_once_per_change(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        clk = clock()
        scheduler = make_scheduler(FakeClient(clk), clk, Settings(qpm=1, extension_lead=60))
        cams = [rtsp(f"c{i}") for i in range(4)]
        scheduler.set_cameras(cams[:3])  # room for 3: nothing to say
        scheduler.set_cameras(cams)
        scheduler.set_cameras(cams)  # the same camera left out: said already
        scheduler.set_cameras([*cams, rtsp("c4")])
        await scheduler.stop(stop_streams=False)

    virtual(main())
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == [
        "1 cameras need more commands than 1 per minute allow; not kept alive: "
        "enterprises/p/devices/c3",
        "2 cameras need more commands than 1 per minute allow; not kept alive: "
        "enterprises/p/devices/c3, enterprises/p/devices/c4",
    ]


def test_what_a_viewer_learned_survives_a_new_camera_list() -> None:
    """A battery camera refused an extension of a viewer's session: a re-read device list
    (with the saved set, which does not hold it yet) does not make the scheduler forget it."""

    async def main() -> tuple[set[str], set[str]]:
        clk = clock()
        client = FakeClient(clk)
        client.script("bat", "extend", ExtendUnsupported("Command not supported for camera."))
        scheduler = make_scheduler(client, clk)
        async with running(scheduler):
            cams = [webrtc("bat"), webrtc("w")]
            scheduler.set_cameras(cams, cannot_extend={"enterprises/p/devices/w"})
            key, _ = await scheduler.open_viewer("enterprises/p/devices/bat", "v=0\r\n", ended)
            await asyncio.sleep(300)
            scheduler.close_viewer(key)
            learned = scheduler.cannot_extend()
            scheduler.set_cameras(cams, cannot_extend={"enterprises/p/devices/w"})
            after = scheduler.cannot_extend()
        return learned, after

    learned, after = virtual(main())
    both = {"enterprises/p/devices/bat", "enterprises/p/devices/w"}
    assert learned == both
    assert after == both


def test_a_camera_that_leaves_is_forgotten_by_the_queue() -> None:
    """Its hourly budget goes with it (a camera added again later starts afresh)."""

    async def main() -> tuple[float | None, float | None]:
        clk = clock()
        client = FakeClient(clk)
        for _ in range(3):
            client.script("c1", "generate", TransientError("503"))
        scheduler = make_scheduler(client, clk, Settings(device_calls_per_hour=3, retry_base=1))
        async with running(scheduler):
            scheduler.set_cameras([rtsp("c1"), rtsp("c2")])
            await asyncio.sleep(120)
            spent = scheduler.queue.budget_spent_until("enterprises/p/devices/c1")
            scheduler.set_cameras([rtsp("c2")])
            after = scheduler.queue.budget_spent_until("enterprises/p/devices/c1")
        return spent, after

    spent, after = virtual(main())
    assert spent is not None
    assert after is None
