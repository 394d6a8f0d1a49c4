"""A camera's stream state machine, driven through the scheduler in virtual time."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
import itertools
from typing import Any

import pytest

from custom_components.nest_streams.core.camera import EARLY_SLOTS
from custom_components.nest_streams.core.errors import (
    AuthFailed,
    CommandFailed,
    StreamGone,
    TransientError,
)
from custom_components.nest_streams.core.models import (
    CameraInfo,
    StreamHandle,
    StreamProtocol,
    StreamState,
)
from custom_components.nest_streams.core.scheduler import StreamScheduler
from custom_components.nest_streams.core.settings import Settings

from .common import EPOCH, FakeClient, clock, make_scheduler, rtsp, running, virtual, webrtc

CONFIG = Settings(extension_lead=15)
EARLY = EARLY_SLOTS * 6.06
"""How much earlier than due an extension goes when the queue is idle."""


async def _scenario(
    cameras: list[CameraInfo],
    script: Callable[[FakeClient], None],
    steps: list[tuple[float, Callable[[StreamScheduler], Any] | None]],
    *,
    config: Settings = CONFIG,
    restored: dict[str, StreamHandle] | None = None,
) -> tuple[FakeClient, StreamScheduler, list[Any]]:
    """Run the scheduler; at each (seconds, action) step wait then act; collect results."""
    clk = clock()
    client = FakeClient(clk)
    script(client)
    scheduler = make_scheduler(client, clk, config)
    async with running(scheduler):
        scheduler.set_cameras(cameras, restored=restored)
        results: list[Any] = []
        for seconds, action in steps:
            await asyncio.sleep(seconds)
            outcome = action(scheduler) if action else None
            if isinstance(outcome, Awaitable):
                outcome = await outcome
            results.append(outcome)
    return client, scheduler, results


def _status(name: str) -> Callable[[StreamScheduler], Any]:
    return lambda scheduler: scheduler.statuses()[f"enterprises/p/devices/{name}"]


def test_starting_then_running_then_extended_before_expiry() -> None:
    client, _, (starting, running, later) = virtual(
        _scenario(
            [rtsp("a")],
            lambda c: c.script("a", "generate", 1.0),
            [(0.5, _status("a")), (1.0, _status("a")), (600, _status("a"))],
        )
    )
    assert starting.state is StreamState.STARTING
    assert running.state is StreamState.RUNNING
    assert running.stream_url.startswith("rtsps://host/a?auth=")
    assert later.state is StreamState.RUNNING
    assert later.last_extension is not None
    ops = client.ops("a")
    assert ops[0] == (0.0, "generate")
    extensions = [at for at, op in ops if op == "extend"]
    # Due at expiry minus the lead: 15 s minimum plus a headroom of 4 command intervals
    # (6.06 s each) while the quota has slack for it; queued EARLY_SLOTS intervals before it
    # is due, and sent at once in a slot nothing due needs (the queue is idle).
    assert extensions[0] == pytest.approx(301 - 15 - 4 * 6.06 - EARLY, abs=0.5)
    assert len(extensions) == 2


def test_failures_back_off_then_degrade_then_recover() -> None:
    failures = [TransientError("HTTP 500")] * 6
    client, _, (after_first, degraded, recovered) = virtual(
        _scenario(
            [rtsp("a")],
            lambda c: c.script("a", "generate", *failures),
            [(1, _status("a")), (160, _status("a")), (620, _status("a"))],
        )
    )
    assert after_first.state is StreamState.FAILED
    assert after_first.consecutive_failures == 1
    assert after_first.last_error == "HTTP 500"
    assert degraded.state is StreamState.DEGRADED
    assert degraded.consecutive_failures == 5
    times = [at for at, op in client.ops("a") if op == "generate"]
    gaps = [round(b - a) for a, b in itertools.pairwise(times)]
    # 10, 20, 40, 80 s backoff, then degraded: every 300 s; the 7th attempt succeeds.
    assert gaps == [10, 20, 40, 80, 300, 300]
    assert recovered.state is StreamState.RUNNING
    assert recovered.consecutive_failures == 0
    assert recovered.last_error is None


def test_the_failure_settings_are_used() -> None:
    """Other retry base, failure count and degraded retry: the schedule follows them."""
    settings = Settings(qpm=60, retry_base=3, max_failures=3, degraded_retry=100)
    client, _, (degraded,) = virtual(
        _scenario(
            [rtsp("a")],
            lambda c: c.script("a", "generate", *[TransientError("HTTP 500")] * 4),
            [(50, _status("a"))],
            config=settings,
        )
    )
    assert degraded.state is StreamState.DEGRADED
    assert degraded.consecutive_failures == 3
    times = [at for at, op in client.ops("a") if op == "generate"]
    assert [round(b - a) for a, b in itertools.pairwise(times)] == [3, 6]
    assert degraded.next_action_at == pytest.approx(EPOCH + times[-1] + 100, abs=1)


def test_the_extension_lead_setting_is_used() -> None:
    """A 60 s lead extends 60 s (plus the headroom of 4 intervals) before expiry (sent early
    as the queue is idle)."""
    client, _, _ = virtual(
        _scenario([rtsp("a")], lambda c: None, [(300, None)], config=Settings(extension_lead=60))
    )
    extensions = [at for at, op in client.ops("a") if op == "extend"]
    assert extensions[0] == pytest.approx(300 - 60 - 4 * 6.06 - EARLY, abs=0.5)


def test_retry_delay_schedule() -> None:
    config = Settings(retry_base=10, retry_cap=160)
    assert [config.retry_delay(n) for n in range(1, 7)] == [10, 20, 40, 80, 160, 160]


def test_refused_extension_regenerates() -> None:
    client, _, (status,) = virtual(
        _scenario(
            [rtsp("a")],
            lambda c: c.script("a", "extend", StreamGone("expired")),
            [(300, _status("a"))],
        )
    )
    ops = [op for _, op in client.ops("a")]
    assert ops == ["generate", "extend", "generate"]
    assert status.state is StreamState.RUNNING
    assert status.consecutive_failures == 0


def test_a_refused_extension_shows_googles_answer_until_replaced() -> None:
    """Between the refusal and the new stream: starting, Google's answer, no stream."""

    def script(client: FakeClient) -> None:
        client.script("a", "extend", StreamGone("expired"))
        client.script("a", "generate", None, 4.0)  # the replacement takes 4 s

    client, _, (during, after) = virtual(
        _scenario([rtsp("a")], script, [(239, _status("a")), (10, _status("a"))])
    )
    (refused_at, _), (replaced_at, _) = client.ops("a")[1:3]
    assert refused_at < 239 < replaced_at + 4
    assert during.state is StreamState.STARTING
    assert during.last_error == "expired"
    assert during.stream_url is None
    assert during.consecutive_failures == 0  # a refusal is not a failure: it is replaced
    assert after.state is StreamState.RUNNING
    assert after.last_error is None


def test_unanswered_rtsp_extension_replaces_the_stream() -> None:
    client, _, (status,) = virtual(
        _scenario(
            [rtsp("a")],
            lambda c: c.script("a", "extend", TransientError("timeout", maybe_executed=True)),
            [(300, _status("a"))],
        )
    )
    # The old stream is not stopped: if Google carried the extension out its tokens rotated
    # (a stop with the old one is refused), else it expires within the lead anyway.
    assert [op for _, op in client.ops("a")] == ["generate", "extend", "generate"]
    assert client.stopped == []
    assert status.state is StreamState.RUNNING
    assert status.stream_url == "rtsps://host/a?auth=t2"


def test_extension_failure_retries_while_the_stream_lives() -> None:
    client, _, (status,) = virtual(
        _scenario(
            [rtsp("a")],
            lambda c: c.script("a", "extend", TransientError("HTTP 503")),
            [(300, _status("a"))],
        )
    )
    ops = client.ops("a")
    assert [op for _, op in ops] == ["generate", "extend", "extend"]
    assert ops[2][0] < 300  # retried before the stream expired
    assert status.state is StreamState.RUNNING


def test_auth_failure_is_reported_once() -> None:
    calls: list[int] = []

    def script(client: FakeClient) -> None:
        client.script("a", "generate", AuthFailed("401"), AuthFailed("401"))
        client.script("b", "generate", AuthFailed("401"))

    async def main() -> Any:
        clk = clock()
        client = FakeClient(clk)
        script(client)
        scheduler = make_scheduler(client, clk, CONFIG, on_auth_failed=lambda: calls.append(1))
        async with running(scheduler, stop_streams=True):
            scheduler.set_cameras([rtsp("a"), rtsp("b")])
            await asyncio.sleep(5)
            status = scheduler.statuses()["enterprises/p/devices/a"]
        return status, scheduler.auth_failed

    status, flagged = virtual(main())
    assert flagged
    assert calls == [1]
    assert status.last_error == "401"


def test_stop_start_and_restart() -> None:
    def stop(scheduler: StreamScheduler) -> None:
        scheduler.stream("enterprises/p/devices/a").stop()

    def start(scheduler: StreamScheduler) -> None:
        scheduler.stream("enterprises/p/devices/a").start()

    def restart(scheduler: StreamScheduler) -> None:
        scheduler.stream("enterprises/p/devices/a").restart()

    client, _, results = virtual(
        _scenario(
            [rtsp("a")],
            lambda c: None,
            [
                (5, stop),
                (10, _status("a")),
                (0, start),
                (10, _status("a")),
                (0, restart),
                (1, _status("a")),
                (20, _status("a")),
            ],
        )
    )
    stopped, started, restarting, restarted = results[1], results[3], results[5], results[6]
    assert stopped.state is StreamState.STOPPED
    assert stopped.expires_at is None
    assert started.state is StreamState.RUNNING
    assert restarting.state is StreamState.STARTING
    assert restarted.state is StreamState.RUNNING
    ops = [op for _, op in client.ops("a")]
    assert ops[:3] == ["generate", "stop", "generate"]
    assert sorted(ops[3:]) == ["generate", "stop"]


def test_restored_stream_is_extended_not_regenerated() -> None:
    async def handle() -> StreamHandle:
        return StreamHandle(
            protocol=StreamProtocol.RTSP,
            expires_at=EPOCH + 200,
            url="rtsps://host/a?auth=old",
            extension_token="old",
        )

    restored = {"enterprises/p/devices/a": virtual(handle())}
    # b has 5 s left (less than the lead): still extended, at once; c is as good as gone.
    nearly = {"enterprises/p/devices/b": StreamHandle(StreamProtocol.RTSP, EPOCH + 5)}
    expired = {"enterprises/p/devices/c": StreamHandle(StreamProtocol.RTSP, EPOCH + 0.5)}
    client, _, (status,) = virtual(
        _scenario(
            [rtsp("a"), rtsp("b"), rtsp("c")],
            lambda c: None,
            [(200, _status("a"))],
            restored=restored | nearly | expired,
        )
    )
    assert [op for _, op in client.ops("a")] == ["extend"]
    assert client.ops("b")[0] == (0.0, "extend")
    assert [op for _, op in client.ops("c")] == ["generate"]
    assert status.state is StreamState.RUNNING


def test_a_saved_stream_about_to_expire_is_neither_shown_nor_saved_again() -> None:
    """Within a second of its expiry a saved stream counts as gone from the start."""

    async def main() -> tuple[str | None, set[str], list[tuple[float, str]]]:
        clk = clock()
        client = FakeClient(clk)
        scheduler = make_scheduler(client, clk)
        async with running(scheduler):
            nearly_gone = StreamHandle(
                StreamProtocol.RTSP, EPOCH + 0.5, url="rtsps://host/c?auth=old"
            )
            scheduler.set_cameras([rtsp("c")], restored={"enterprises/p/devices/c": nearly_gone})
            shown = scheduler.statuses()["enterprises/p/devices/c"].stream_url
            saved = set(scheduler.handles())
            await asyncio.sleep(1)
        return shown, saved, client.ops("c")

    shown, saved, ops = virtual(main())
    assert shown is None
    assert saved == set()
    assert ops == [(0.0, "generate")]


def _nearly_expired(seconds: float) -> dict[str, StreamHandle]:
    """Camera a's saved stream, expiring `seconds` after the start."""
    handle = StreamHandle(StreamProtocol.RTSP, EPOCH + seconds, url="rtsps://host/a?auth=old")
    return {"enterprises/p/devices/a": handle}


def test_a_stream_within_a_second_of_expiry_is_not_shown_running() -> None:
    """Its extension failed with 1.5 s left: retried after a second, when the stream is as
    good as gone: the camera shows it starting anew (a generation), not a dying stream."""
    client, _, (retrying,) = virtual(
        _scenario(
            [rtsp("a")],
            lambda c: c.script("a", "extend", TransientError("503")),
            [(1.25, _status("a"))],
            restored=_nearly_expired(1.5),
        )
    )
    assert client.ops("a") == [(0.0, "extend")]  # the generation waits for the next slot
    assert retrying.state is StreamState.STARTING
    assert retrying.stream_url is None
    assert retrying.last_error == "503"


def test_a_failed_extension_with_under_a_second_left_counts_the_stream_lost() -> None:
    """The extension's 503 comes with 0.95 s left: the camera shows the failure (not running)
    and retries as a camera without stream: a first failure at once (most likely passing)."""
    client, _, (failed, _) = virtual(
        _scenario(
            [rtsp("a")],
            lambda c: c.script("a", "extend", (0.1, TransientError("503"))),
            [(0.5, _status("a")), (30, None)],
            restored=_nearly_expired(1.05),
        )
    )
    assert failed.state is StreamState.FAILED
    assert failed.last_error == "503"
    assert client.ops("a")[:2] == [(0.0, "extend"), (6.06, "generate")]  # the next slot


def test_command_failure_counts_against_the_camera() -> None:
    _client, _, (status,) = virtual(
        _scenario(
            [rtsp("a")],
            lambda c: c.script("a", "generate", CommandFailed("404 device")),
            [(5, _status("a"))],
        )
    )
    assert status.state is StreamState.FAILED
    assert status.consecutive_failures == 1
    assert status.next_action_at == pytest.approx(EPOCH + 10, abs=0.1)


def test_trouble_is_logged_once_and_recovery_once(caplog: pytest.LogCaptureFixture) -> None:
    """Five different errors in a row: one warning; then one line when the stream is back."""
    errors = [TransientError(f"HTTP 50{i}") for i in range(5)]
    virtual(
        _scenario(
            [rtsp("a")],
            lambda c: c.script("a", "generate", *errors),
            [(700, None)],
            config=Settings(qpm=60, max_failures=10),
        )
    )
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert [r.getMessage() for r in warnings] == ["a: stream command failed: HTTP 500"]
    assert sum("stream recovered" in r.getMessage() for r in caplog.records) == 1


def test_a_replacement_goes_ahead_of_new_cameras() -> None:
    """A refused extension's replacement is urgent: it runs before queued first generations."""

    async def main() -> list[str]:
        clk = clock()
        client = FakeClient(clk)
        client.script("a", "extend", StreamGone("expired"))
        scheduler = make_scheduler(client, clk)
        async with running(scheduler):
            cams = [rtsp("a")]
            scheduler.set_cameras(cams)
            await asyncio.sleep(270)  # a's extension falls due around 280 s
            scheduler.set_cameras([*cams, *(rtsp(f"n{i}") for i in range(6))])
            await asyncio.sleep(60)
        return [c.device for c in client.calls if c.at > 1]

    order = virtual(main())
    refused = order.index("a")  # the refused extension
    assert order[refused + 1] == "a"  # its replacement, before the queued new cameras


@pytest.mark.parametrize(
    ("error", "compared"),
    [
        # Refused: nothing else is sent within the 30 s.
        pytest.param(StreamGone("INVALID"), slice(1, None), id="refused"),
        # Unanswered: the old stream is stopped afterwards (not compared here).
        pytest.param(TransientError("timeout", maybe_executed=True), slice(1, 4), id="unanswered"),
    ],
)
def test_a_lost_extensions_replacement_is_due_when_the_old_stream_expires(
    error: Exception, compared: slice
) -> None:
    """Not sooner: the old stream plays on, and a camera without any stream, out now, goes
    first."""

    async def main() -> list[tuple[str, str]]:
        clk = clock()
        client = FakeClient(clk)
        client.script("a", "extend", error)
        scheduler = make_scheduler(client, clk)
        async with running(scheduler):
            scheduler.set_cameras([rtsp("a")])
            await asyncio.sleep(237)  # a's extension (sent early: idle queue) failed at 236.52 s
            scheduler.set_cameras([rtsp("a"), rtsp("n")])
            await asyncio.sleep(30)
        return [(c.device, c.op) for c in client.calls]

    calls = virtual(main())
    assert calls[compared] == [
        ("a", "extend"),
        ("n", "generate"),  # due at 237 s + an interval
        ("a", "generate"),  # due at 301 s, a's old expiry
    ], calls


def test_a_camera_without_stream_goes_ahead_of_extensions_that_can_wait() -> None:
    """Its generation competes by deadline (now + an interval), not after every extension."""

    async def main() -> list[tuple[float, str, str]]:
        clk = clock()
        client = FakeClient(clk)
        scheduler = make_scheduler(client, clk)
        async with running(scheduler):
            cams = [rtsp(f"c{i}") for i in range(4)]
            # Four streams that all expire at 300 s: their extensions queue up at 236.52 s (due
            # at 260.76 s, queued EARLY_SLOTS intervals before; the first goes at once).
            restored = {
                camera.device_id: StreamHandle(
                    StreamProtocol.RTSP, clk.now() + 300, f"rtsps://h/{camera.name}", "e"
                )
                for camera in cams
            }
            scheduler.set_cameras(cams, restored=restored)
            await asyncio.sleep(237)
            scheduler.set_cameras([*cams, rtsp("n")])
            await asyncio.sleep(30)
        return [(round(c.at, 2), c.device, c.op) for c in client.calls if c.at > 230]

    calls = virtual(main())
    order = [(device, op) for _, device, op in calls]
    # n (deadline 237 + 6.06 s) goes right after c0, before the extensions due at 300 s.
    assert order[:2] == [("c0", "extend"), ("n", "generate")], calls


def test_a_camera_without_stream_retries_a_passing_error_soon() -> None:
    """After its stream was lost, a 503 is retried at once the first time (most likely a
    passing one), then within two command intervals (12.1 s), not after the growing back-off
    (10, 20, 40, 80 s), and not held up by its own extensions in the per-device window
    (Google's limit is per device AND command)."""

    def script(client: FakeClient) -> None:
        client.script("a", "extend", StreamGone("expired"))
        client.script("a", "generate", None, *[TransientError("503")] * 6)

    client, _, (status,) = virtual(
        _scenario(
            [rtsp("a")],
            script,
            [(370, _status("a"))],
            config=Settings(extension_lead=15, max_failures=20),
        )
    )
    generations = [at for at, op in client.ops("a") if op == "generate"]
    assert len(generations) == 8  # the first, six failures, then the one that succeeds
    gaps = [round(b - a, 2) for a, b in itertools.pairwise(generations[1:])]
    # The first failure: the next slot; then two intervals; the sixth waits for Google's
    # window (five per device and command per minute): exactly when the oldest leaves it.
    assert gaps[0] == pytest.approx(6.06)
    assert gaps[1:4] == pytest.approx([12.12] * 3)
    assert generations[6] == pytest.approx(generations[1] + 60)
    assert gaps[5] == pytest.approx(12.12)
    assert status.state is StreamState.RUNNING


def test_an_unanswered_extension_shows_the_old_stream_until_replaced() -> None:
    """Google may have run it (the stream plays on): running, old URL, while replacing."""

    def script(client: FakeClient) -> None:
        client.script("a", "extend", TransientError("timeout", maybe_executed=True))
        client.script("a", "generate", None, 4.0)  # the replacement takes 4 s

    client, _, (during, after) = virtual(
        _scenario(
            [rtsp("a")],
            script,
            [(244.5, _status("a")), (60, _status("a"))],
        )
    )
    assert [op for _, op in client.ops("a")][:3] == ["generate", "extend", "generate"]
    replacement_sent = client.ops("a")[2][0]
    assert replacement_sent < 244.5 < replacement_sent + 4  # `during` is sampled meanwhile
    assert during.state is StreamState.RUNNING
    assert during.stream_url == "rtsps://host/a?auth=t1"
    assert during.consecutive_failures == 1
    assert during.last_error == "timeout"
    assert after.state is StreamState.RUNNING
    assert after.stream_url == "rtsps://host/a?auth=t2"
    assert after.consecutive_failures == 0


def test_an_unanswered_extension_after_a_failed_one_counts_both() -> None:
    def script(client: FakeClient) -> None:
        client.script(
            "a", "extend", TransientError("503"), TransientError("timeout", maybe_executed=True)
        )
        client.script("a", "generate", None, 4.0)  # the replacement takes 4 s

    client, _, (during,) = virtual(_scenario([rtsp("a")], script, [(254, _status("a"))]))
    ops = client.ops("a")
    assert [op for _, op in ops][:4] == ["generate", "extend", "extend", "generate"]
    assert ops[3][0] < 254 < ops[3][0] + 4  # sampled while the replacement is generated
    assert during.consecutive_failures == 2
    assert during.last_error == "timeout"


def test_a_refused_replacement_of_an_unanswered_extension_keeps_the_old_stream() -> None:
    """The replacement's generation is refused (404): a failure of the camera, which keeps
    showing the old stream while it lasts (a refusal of the new one says nothing of it)."""

    def script(client: FakeClient) -> None:
        client.script("a", "extend", TransientError("timeout", maybe_executed=True))
        client.script("a", "generate", None, StreamGone("404"))

    client, _, (during,) = virtual(_scenario([rtsp("a")], script, [(244, _status("a"))]))
    assert [op for _, op in client.ops("a")][:3] == ["generate", "extend", "generate"]
    assert client.ops("a")[2][0] < 244
    assert during.stream_url == "rtsps://host/a?auth=t1"
    assert during.state is StreamState.RUNNING
    assert during.consecutive_failures == 2
    assert during.last_error == "404"


def test_a_failed_extension_of_a_live_stream_stays_running_and_retries_in_time() -> None:
    """A long back-off is cut to the stream's last chance (half the lead before expiry); the
    camera shows running meanwhile, since its stream still plays."""
    settings = Settings(retry_base=120)
    client, _, after_failure_and_none = virtual(
        _scenario(
            [rtsp("a")],
            lambda c: c.script("a", "extend", TransientError("HTTP 503")),
            [(270, _status("a")), (30, None)],
            config=settings,
        )
    )
    after_failure = after_failure_and_none[0]
    extends = [at for at, op in client.ops("a") if op == "extend"]
    assert len(extends) >= 2
    assert after_failure.state is StreamState.RUNNING
    assert after_failure.consecutive_failures == 1
    # Expiry at 300 s; the retry is due at the last chance, 300 - lead / 2 (lead 39.24 s).
    assert extends[1] == pytest.approx(300 - 39.24 / 2, abs=1)


def _restart_then_status(scheduler: StreamScheduler) -> Any:
    scheduler.stream("enterprises/p/devices/a").restart()
    return _status("a")(scheduler)


def test_restart_clears_the_failures() -> None:
    failures = [TransientError("HTTP 500")] * 3
    _client, _, (failing, restarted) = virtual(
        _scenario(
            [rtsp("a")],
            lambda c: c.script("a", "generate", *failures),
            [
                (40, _status("a")),
                (0, _restart_then_status),
            ],
        )
    )
    assert failing.consecutive_failures == 3
    assert restarted.consecutive_failures == 0
    assert restarted.state is StreamState.STARTING


def test_a_restarted_camera_backs_off_like_a_new_one_after_a_recovery() -> None:
    """Only a camera that lost its stream retries passing errors within two intervals; one the
    user restarted after its stream had recovered backs off 10 s, then 20 s."""

    def script(client: FakeClient) -> None:
        client.script("a", "extend", StreamGone("INVALID"))  # lost at 260.76 s, then replaced
        client.script("a", "generate", None, None, TransientError("503"), TransientError("503"))

    client, _, _ = virtual(
        _scenario(
            [rtsp("a")],
            script,
            [(400, lambda s: s.stream("enterprises/p/devices/a").restart()), (60, None)],
        )
    )
    generations = [at for at, op in client.ops("a") if op == "generate"]
    first, second, third = generations[2:]  # the first after the restart's stop (at 400 s)
    assert first == 406.06
    assert [round(second - first, 2), round(third - second, 2)] == [10, 20]


def test_the_status_before_the_first_command() -> None:
    """Right after `set_cameras`, before any command: what the entities first show."""

    async def main() -> tuple[dict[str, Any], tuple[str, ...], bool]:
        clk = clock()
        scheduler = make_scheduler(FakeClient(clk), clk)
        scheduler.set_cameras([rtsp("a"), rtsp("b"), webrtc("w")], excluded={rtsp("b").device_id})
        statuses = {d.rsplit("/", 1)[-1]: s for d, s in scheduler.statuses().items()}
        result = statuses, scheduler.over_capacity, scheduler.auth_failed
        await scheduler.stop(stop_streams=False)
        return result

    statuses, over_capacity, auth_failed = virtual(main())
    assert {name: s.state for name, s in statuses.items()} == {
        "a": StreamState.STARTING,
        "b": StreamState.STOPPED,
        "w": StreamState.ON_DEMAND,
    }
    for status in statuses.values():
        assert status.last_attempt is None
        assert status.last_extension is None
        assert status.next_action_at is None
        assert status.last_error is None
        assert status.consecutive_failures == 0
        assert status.can_extend is True
    assert over_capacity == ()
    assert auth_failed is False


def _changes_of_a(
    script: Callable[[FakeClient], None], seconds: float, config: Settings = CONFIG
) -> tuple[FakeClient, list[tuple[float, Any]], list[str | None]]:
    """Every change the scheduler reports for camera a: (time, a's status then)."""

    async def main() -> tuple[FakeClient, list[tuple[float, Any]], list[str | None]]:
        clk = clock()
        client = FakeClient(clk)
        script(client)
        seen: list[tuple[float, Any]] = []
        keys: list[str | None] = []

        def on_change(device_id: str | None) -> None:
            keys.append(device_id)
            if device_id == "enterprises/p/devices/a":
                seen.append((round(clk.now() - EPOCH, 2), _status("a")(scheduler)))

        scheduler = make_scheduler(client, clk, config, on_change=on_change)
        async with running(scheduler):
            scheduler.set_cameras([rtsp("a")])
            await asyncio.sleep(seconds)
        return client, seen, keys

    return virtual(main())


def test_every_outcome_is_reported_when_it_happens() -> None:
    """Each command is reported twice, no more: when queued and with its outcome (a failure
    even when the state stays failed, an extension although the state stays running); the
    queue's own changes are reported without a camera."""
    client, seen, keys = _changes_of_a(
        lambda c: c.script("a", "generate", TransientError("500"), TransientError("500")), 700
    )
    ops = client.ops("a")
    assert [op for _, op in ops] == ["generate"] * 3 + ["extend"] * 2
    assert len(seen) == 2 * len(ops)
    for (at, _op), (queued_at, _), (done_at, outcome) in zip(
        ops, seen[::2], seen[1::2], strict=True
    ):
        assert queued_at <= at == done_at
        assert outcome.last_attempt == EPOCH + queued_at
    outcomes = [status for _, status in seen[1::2]]
    assert [s.consecutive_failures for s in outcomes] == [1, 2, 0, 0, 0]
    assert [s.state for s in outcomes[:2]] == [StreamState.FAILED] * 2
    assert [s.last_error for s in outcomes] == ["500", "500", None, None, None]
    assert [s.last_extension is not None for s in outcomes] == [False] * 3 + [True] * 2
    assert len({s.expires_at for s in outcomes[2:]}) == 3  # each extension pushes its expiry
    assert keys.count(None) > len(ops)  # the queue's statistics changed with each command


def test_a_running_camera_shows_when_its_next_extension_is_due() -> None:
    _, _, (running,) = virtual(
        _scenario([rtsp("a")], lambda c: c.script("a", "generate", 1.0), [(100, _status("a"))])
    )
    assert running.state is StreamState.RUNNING
    # Expiry at 301 s, less the lead: 15 s plus 4 command intervals of 6.06 s.
    assert running.next_action_at is not None
    assert running.next_action_at - EPOCH == pytest.approx(301 - 15 - 4 * 6.06)


def test_a_camera_whose_command_is_under_way_shows_no_next_action() -> None:
    """Once its extension is queued the due time is past: the camera shows none."""
    _, _, (extending,) = virtual(
        _scenario(
            [rtsp("a")],
            lambda c: c.script("a", "extend", 3.0),  # the extension takes 3 s
            [(237.5, _status("a"))],  # sent at 236.52 s (early: the queue is idle)
        )
    )
    assert extending.state is StreamState.RUNNING
    assert extending.next_action_at is None


def test_a_stream_whose_extensions_keep_failing_is_replaced_in_time() -> None:
    """Failed extensions are retried while the stream can be saved; once it has less left
    than a replacement needs (its turn, its answer, a viewer's move to the new URL), the next
    try is a replacement (a generation is another command), made before the old stream
    expires: the camera never shows an expired stream."""

    def script(client: FakeClient) -> None:
        client.script("a", "extend", *[TransientError("503")] * 8)
        client.script("a", "generate", None, 1.0)  # the new stream takes 1 s

    client, _, (during, replacing, after) = virtual(
        _scenario(
            [rtsp("a")],
            script,
            [(288, _status("a")), (5, _status("a")), (4, _status("a"))],
            config=Settings(max_failures=20),
        )
    )
    ops = client.ops("a")
    assert [op for _, op in ops] == ["generate", *["extend"] * 5, "generate"]
    assert ops[-1][0] < 300 - 5  # before the old stream expires, 5 s to spare
    assert during.state is StreamState.RUNNING  # the old stream plays until replaced
    assert during.stream_url == "rtsps://host/a?auth=t1"
    assert ops[-1][0] < 293 < ops[-1][0] + 1  # `replacing` is sampled while it is generated
    assert replacing.stream_url == "rtsps://host/a?auth=t1"
    assert replacing.last_error == "503"
    assert after.state is StreamState.RUNNING
    assert after.stream_url == "rtsps://host/a?auth=t2"
    assert after.expires_at > EPOCH + 300


def test_one_refused_extension_is_retried_not_replaced() -> None:
    """A single refusal is mostly passing: the same stream is extended on the retry, no
    replacement is generated beside it (that would leave two streams at Google)."""

    def script(client: FakeClient) -> None:
        # Refused after 45 s: the retry comes with less left than a replacement needs.
        client.script("a", "extend", (45.0, TransientError("503")))

    client, _, (after,) = virtual(_scenario([rtsp("a")], script, [(300, _status("a"))]))
    ops = [op for _, op in client.ops("a")]
    assert ops[:3] == ["generate", "extend", "extend"]
    assert "generate" not in ops[1:]
    assert after.state is StreamState.RUNNING
    assert after.consecutive_failures == 0


def test_a_restored_stream_of_a_stopped_camera_is_stopped_at_google() -> None:
    """Saved by the last run, but the user stopped the camera: it is not left running."""

    async def main() -> list[StreamHandle]:
        clk = clock()
        client = FakeClient(clk)
        scheduler = make_scheduler(client, clk)
        async with running(scheduler):
            saved = StreamHandle(StreamProtocol.RTSP, clk.now() + 200, "rtsps://h/s", "e")
            scheduler.set_cameras(
                [rtsp("s")],
                excluded={"enterprises/p/devices/s"},
                restored={"enterprises/p/devices/s": saved},
            )
            await asyncio.sleep(30)
        return client.stopped

    assert [stream.url for stream in virtual(main())] == ["rtsps://h/s"]


def test_each_cameras_stop_counts_against_its_own_device() -> None:
    """Google's per-device limit (5 a minute per device and command) is per camera: six
    cameras restarted at once are all stopped within the minute."""

    async def main() -> list[float]:
        clk = clock()
        client = FakeClient(clk)
        scheduler = make_scheduler(client, clk, Settings(qpm=30))
        async with running(scheduler):
            scheduler.set_cameras([rtsp(f"c{i}") for i in range(6)])
            await asyncio.sleep(100)
            for i in range(6):
                scheduler.stream(f"enterprises/p/devices/c{i}").restart()
            await asyncio.sleep(100)
        return [call.at for call in client.calls if call.op == "stop"]

    stops = virtual(main())
    assert len(stops) == 6
    assert max(stops) - 100 < 60


def test_a_refused_extensions_replacement_retries_a_passing_error_soon() -> None:
    """The camera lost its stream: its replacement's 503s are retried after two intervals,
    not after the growing back-off."""

    def script(client: FakeClient) -> None:
        client.script("a", "extend", StreamGone("INVALID"))
        client.script("a", "generate", None, TransientError("503"), TransientError("503"))

    client, _, _ = virtual(_scenario([rtsp("a")], script, [(400, None)]))
    generations = [at for at, op in client.ops("a") if op == "generate"]
    assert len(generations) == 4
    assert generations[3] - generations[2] == pytest.approx(2 * 6.06)  # not 20 s


def test_a_slow_extension_is_an_answer_not_a_failure() -> None:
    """Answered after 20 s (Google's slow answers are real): waited for while a replacement
    could still take over in time, so the extension counts, nothing is generated."""
    client, _, (status,) = virtual(
        _scenario([rtsp("a")], lambda c: c.script("a", "extend", 20.0), [(300, _status("a"))])
    )
    assert [op for _, op in client.ops("a")] == ["generate", "extend"]
    assert status.state is StreamState.RUNNING
    assert status.consecutive_failures == 0
    assert status.stream_url == "rtsps://host/a?auth=t2"


def test_a_late_answer_after_the_replacement_is_stopped_with_its_own_token() -> None:
    """Answered after 60 s: the replacement was made meanwhile; the late answer's stream (its
    new tokens known now) is stopped, not left to live beside the camera's stream."""
    client, _, (status,) = virtual(
        _scenario([rtsp("a")], lambda c: c.script("a", "extend", 60.0), [(340, _status("a"))])
    )
    assert [op for _, op in client.ops("a")] == ["generate", "extend", "generate", "stop"]
    assert [stream.url for stream in client.stopped] == ["rtsps://host/a?auth=t3"]
    assert status.state is StreamState.RUNNING
    assert status.stream_url == "rtsps://host/a?auth=t2"


def test_a_late_answer_before_the_replacement_is_taken() -> None:
    """A generation unanswered in time, answered while its retry waits: the late stream is the
    camera's; the retry is not sent; the failure is forgotten."""
    config = Settings(command_timeout=10, retry_base=30)
    client, _, (status,) = virtual(
        _scenario(
            [rtsp("a")],
            lambda c: c.script("a", "generate", 20.0),
            [(60, _status("a"))],
            config=config,
        )
    )
    assert [op for _, op in client.ops("a")] == ["generate"]
    assert status.state is StreamState.RUNNING
    assert status.consecutive_failures == 0


def test_fast_failures_do_not_degrade_before_the_back_off_has_run() -> None:
    """Five failures within a minute (retries squeezed in before the stream expired) leave the
    camera failing, not degraded: degraded takes the back-off's schedule (150 s by default) as
    well as `max_failures` failures; a later success recovers it."""

    def script(client: FakeClient) -> None:
        client.script("a", "extend", *[TransientError("HTTP 503")] * 20)
        client.script("a", "generate", None, *[TransientError("HTTP 503")] * 4)

    client, _, (failing, later) = virtual(
        _scenario([rtsp("a")], script, [(295, _status("a")), (235, _status("a"))])
    )
    failures = [at for at, _ in client.ops("a")][1:6]
    assert failures[-1] - failures[0] < 60, "five failures within a minute"
    assert failing.consecutive_failures >= 5
    assert failing.state is not StreamState.DEGRADED
    assert later.state is StreamState.RUNNING
