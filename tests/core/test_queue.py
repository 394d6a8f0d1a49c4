"""The command queue: order, pacing, per-device limit, quota back-off, timeouts, stop."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
import itertools
from typing import Any

import pytest

from custom_components.nest_streams.core.clock import LoopClock
from custom_components.nest_streams.core.errors import (
    QueueStopped,
    QuotaExceeded,
    StreamGone,
    TransientError,
)
from custom_components.nest_streams.core.models import CommandKind
from custom_components.nest_streams.core.queue import CommandQueue
from custom_components.nest_streams.core.settings import Settings

from .common import EPOCH, clock, virtual


def _recorder(
    log: list[tuple[str, float]], clk: LoopClock, name: str, outcome: Any = None
) -> Callable[[], Awaitable[str]]:
    async def run() -> str:
        log.append((name, round(clk.now() - EPOCH, 2)))
        if isinstance(outcome, BaseException):
            raise outcome
        if isinstance(outcome, (int, float)):
            await asyncio.sleep(outcome)
        return name

    return run


async def _with_worker[T](queue: CommandQueue, body: Awaitable[T]) -> T:
    worker = asyncio.create_task(queue.run())
    try:
        return await body
    finally:
        await queue.stop()
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)


def test_priority_and_deadline_order() -> None:
    async def main() -> list[str]:
        clk = clock()
        queue = CommandQueue(clk, Settings(qpm=60))
        log: list[tuple[str, float]] = []
        futures = [
            queue.submit(CommandKind.STOP, "s", _recorder(log, clk, "stop")),
            queue.submit(CommandKind.GENERATE, "g1", _recorder(log, clk, "gen1")),
            queue.submit(CommandKind.EXTEND, "e1", _recorder(log, clk, "ext-late"), EPOCH + 90),
            queue.submit(CommandKind.GENERATE, "g2", _recorder(log, clk, "gen2")),
            queue.submit(CommandKind.EXTEND, "e2", _recorder(log, clk, "ext-early"), EPOCH + 30),
            queue.submit(CommandKind.EXTEND, "e3", _recorder(log, clk, "ext-tie"), EPOCH + 90),
            queue.submit(
                CommandKind.GENERATE,
                "g3",
                _recorder(log, clk, "urgent-gen"),
                EPOCH + 60,
                urgent=True,
            ),
        ]
        await _with_worker(queue, asyncio.gather(*futures))
        return [name for name, _ in log]

    assert virtual(main()) == [
        "stop",  # the stream it stops lives on; ext-early has 30 s, more than 15 + 4 intervals
        "ext-early",
        "urgent-gen",
        "ext-late",
        "ext-tie",
        "gen1",
        "gen2",
    ]


def test_a_stop_takes_the_slot_of_an_extension_that_has_time_not_of_one_that_has_none() -> None:
    """A busy queue: a stop of a stream that lives 60 s more goes before extensions with more
    than their lead and `STOP_SLACK` intervals left, after those with less; a stop whose stream
    expired is dropped unsent."""

    async def main() -> tuple[list[str], bool]:
        clk = clock()
        queue = CommandQueue(clk, Settings(qpm=10))  # an interval of 6.06 s
        log: list[tuple[str, float]] = []
        urgent = queue.submit(CommandKind.EXTEND, "u", _recorder(log, clk, "urgent"), EPOCH + 20)
        stop = queue.submit(CommandKind.STOP, "s", _recorder(log, clk, "stop"), EPOCH + 60)
        late_stop = queue.submit(CommandKind.STOP, "x", _recorder(log, clk, "moot"), EPOCH + 5)
        slack = [
            queue.submit(CommandKind.EXTEND, f"e{i}", _recorder(log, clk, f"ext{i}"), EPOCH + 200)
            for i in range(3)
        ]
        outcomes = await _with_worker(
            queue, asyncio.gather(urgent, stop, late_stop, *slack, return_exceptions=True)
        )
        return [name for name, _ in log], isinstance(outcomes[2], StreamGone)

    order, dropped = virtual(main())
    assert order == ["urgent", "stop", "ext0", "ext1", "ext2"]
    assert dropped


def test_pacing_keeps_every_minute_at_or_under_qpm() -> None:
    async def main() -> tuple[list[float], Any]:
        clk = clock()
        queue = CommandQueue(clk, Settings(qpm=10))
        log: list[tuple[str, float]] = []
        futures = [
            queue.submit(CommandKind.GENERATE, f"d{i}", _recorder(log, clk, f"c{i}"))
            for i in range(25)
        ]
        await _with_worker(queue, asyncio.gather(*futures))
        return [at for _, at in log], queue.stats()

    times, stats = virtual(main())
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 6.0
    assert all(sum(1 for t in times if start - 60 < t <= start) <= 10 for start in times)
    assert stats.executed == 25
    assert stats.generates == 25
    assert stats.depth == 0


def test_per_device_limit() -> None:
    async def main() -> list[float]:
        clk = clock()
        queue = CommandQueue(clk, Settings(qpm=60, per_device_qpm=5))
        log: list[tuple[str, float]] = []
        futures = [
            queue.submit(CommandKind.GENERATE, "same", _recorder(log, clk, f"c{i}"))
            for i in range(6)
        ]
        futures.append(queue.submit(CommandKind.GENERATE, "other", _recorder(log, clk, "o")))
        await _with_worker(queue, asyncio.gather(*futures))
        return [at for name, at in log]

    times = virtual(main())
    # Five for "same" at 1 s spacing, then "other" is not held up, the sixth waits for the window.
    assert times[:6] == pytest.approx([0, 1.01, 2.02, 3.03, 4.04, 5.05])
    assert times[6] == pytest.approx(60.0)


def test_quota_backs_off_the_project_and_retries_the_command() -> None:
    async def main() -> tuple[list[tuple[str, float]], str, Any]:
        clk = clock()
        queue = CommandQueue(clk, Settings(qpm=10))
        log: list[tuple[str, float]] = []
        attempts = iter([QuotaExceeded("429"), QuotaExceeded("429"), None])

        async def flaky() -> str:
            log.append(("flaky", round(clk.now() - EPOCH, 2)))
            if (outcome := next(attempts)) is not None:
                raise outcome
            return "ok"

        first = queue.submit(CommandKind.EXTEND, "a", flaky, EPOCH + 200)
        second = queue.submit(CommandKind.GENERATE, "b", _recorder(log, clk, "other"))
        result = await _with_worker(queue, asyncio.gather(first, second))
        return log, result[0], queue.stats()

    log, result, stats = virtual(main())
    assert result == "ok"
    assert [name for name, _ in log] == ["flaky", "flaky", "flaky", "other"]
    times = [at for _, at in log]
    assert times[1] - times[0] == pytest.approx(12.12)  # back-off: 2 intervals
    assert times[2] - times[1] == pytest.approx(24.24)  # doubled
    assert stats.quota_rejections == 2
    assert stats.failed == 0
    assert stats.executed == 2


def test_a_per_device_429_holds_up_only_that_device_and_command() -> None:
    """Google's per-device limit refused a's extension: a's extension waits 12 s (a slot of the
    device's window), while b and a's other commands go on at the project's pace."""

    async def main() -> tuple[list[tuple[str, float]], Any]:
        clk = clock()
        queue = CommandQueue(clk, Settings(qpm=10))
        log: list[tuple[str, float]] = []
        attempts = iter([QuotaExceeded("429", per_device=True), None])

        async def limited() -> str:
            log.append(("a extend", round(clk.now() - EPOCH, 2)))
            if (outcome := next(attempts)) is not None:
                raise outcome
            return "ok"

        futures = [
            queue.submit(CommandKind.EXTEND, "a", limited, EPOCH + 200),
            queue.submit(CommandKind.EXTEND, "b", _recorder(log, clk, "b extend"), EPOCH + 210),
            queue.submit(CommandKind.GENERATE, "a", _recorder(log, clk, "a generate")),
        ]
        await _with_worker(queue, asyncio.gather(*futures))
        return log, queue.stats()

    log, stats = virtual(main())
    # No project back-off: b and a's generation keep the 6.06 s pace; a's extension comes back
    # when its device's slot opens (12 s after the refusal).
    assert log == [
        ("a extend", 0.0),
        ("b extend", 6.06),
        ("a extend", 12.12),
        ("a generate", 18.18),
    ]
    assert stats.quota_rejections == 1
    assert stats.backoff_until is None


def test_timeout_and_errors_reach_the_submitter() -> None:
    async def main() -> tuple[BaseException | None, BaseException | None, Any]:
        clk = clock()
        queue = CommandQueue(clk, Settings(qpm=60, command_timeout=5))
        log: list[tuple[str, float]] = []
        slow = queue.submit(CommandKind.EXTEND, "a", _recorder(log, clk, "slow", 30), EPOCH + 99)
        bad = queue.submit(CommandKind.GENERATE, "b", _recorder(log, clk, "bad", ValueError("x")))
        await _with_worker(queue, asyncio.wait([slow, bad]))
        return slow.exception(), bad.exception(), queue.stats()

    slow, bad, stats = virtual(main())
    assert isinstance(slow, TransientError)
    assert slow.maybe_executed
    assert str(slow) == "no answer within 5 s"  # the camera's last error
    assert isinstance(bad, ValueError)
    assert stats.failed == 2


def test_expired_extension_spends_no_slot() -> None:
    async def main() -> tuple[BaseException | None, list[tuple[str, float]]]:
        clk = clock()
        queue = CommandQueue(clk, Settings(qpm=10))
        log: list[tuple[str, float]] = []
        first = queue.submit(CommandKind.EXTEND, "a", _recorder(log, clk, "a"), EPOCH + 2)
        late = queue.submit(CommandKind.EXTEND, "b", _recorder(log, clk, "b"), EPOCH + 3)
        await _with_worker(queue, asyncio.wait([first, late]))
        return late.exception(), log

    error, log = virtual(main())
    # "b" would get the next slot at 6.06 s, after its stream expired at 3 s: refused locally.
    assert [name for name, _ in log] == ["a"]
    assert isinstance(error, StreamGone)
    assert str(error) == "the stream expired before its turn"  # the camera's last error


def test_cancelled_submission_is_withdrawn() -> None:
    async def main() -> list[str]:
        clk = clock()
        queue = CommandQueue(clk, Settings(qpm=10))
        log: list[tuple[str, float]] = []
        keep = queue.submit(CommandKind.GENERATE, "a", _recorder(log, clk, "a"))
        drop = queue.submit(CommandKind.GENERATE, "b", _recorder(log, clk, "b"))
        last = queue.submit(CommandKind.GENERATE, "c", _recorder(log, clk, "c"))
        drop.cancel()
        await _with_worker(queue, asyncio.gather(keep, last))
        return [name for name, _ in log]

    assert virtual(main()) == ["a", "c"]


def test_stop_fails_pending_and_leaves_no_task() -> None:
    async def main() -> tuple[BaseException | None, BaseException | None, BaseException | None]:
        clk = clock()
        queue = CommandQueue(clk, Settings(qpm=1))
        log: list[tuple[str, float]] = []
        worker = asyncio.create_task(queue.run())
        running = queue.submit(CommandKind.GENERATE, "a", _recorder(log, clk, "a", 30))
        waiting = queue.submit(CommandKind.GENERATE, "b", _recorder(log, clk, "b"))
        await asyncio.sleep(1)
        await queue.stop()
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)
        late = queue.submit(CommandKind.GENERATE, "c", _recorder(log, clk, "c"))
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        assert not others
        return running.exception(), waiting.exception(), late.exception()

    results = virtual(main())
    assert all(isinstance(result, QueueStopped) for result in results)
    assert {str(result) for result in results} == {"the command queue is stopped"}


def test_flush_stops_runs_stops_paced_within_the_grace() -> None:
    async def main() -> tuple[list[tuple[str, float]], list[BaseException | None], Any]:
        clk = clock()
        queue = CommandQueue(clk, Settings(qpm=10))
        log: list[tuple[str, float]] = []
        stops = [
            queue.submit(CommandKind.STOP, f"d{i}", _recorder(log, clk, f"stop{i}"))
            for i in range(4)
        ]
        generate = queue.submit(CommandKind.GENERATE, "g", _recorder(log, clk, "gen"))
        await queue.flush_stops(10)
        await queue.flush_stops(10)  # nothing left: returns at once
        await queue.stop()
        results = [f.exception() for f in [*stops, generate]]
        return log, results, queue.stats()

    log, results, stats = virtual(main())
    # 10 s of grace at one command per 6.06 s: two stops go out, the others are dropped.
    assert log == [("stop0", 0.0), ("stop1", 6.06)]
    assert results[:2] == [None, None]
    assert all(isinstance(error, QueueStopped) for error in results[2:])
    assert str(results[2]) == "no quota left before unloading"
    assert stats.stops == 2


def test_flush_stops_gives_up_on_a_hung_stop_when_its_grace_ends() -> None:
    """Late in the queue's life (its clock far from zero): the first stop goes, the second one
    hangs and is given up exactly when the grace ends, not a moment later."""

    async def main() -> tuple[list[tuple[str, float]], float, list[BaseException | None]]:
        clk = clock()
        queue = CommandQueue(clk, Settings(qpm=10, command_timeout=60))
        log: list[tuple[str, float]] = []
        await asyncio.sleep(100)
        stops = [
            queue.submit(CommandKind.STOP, "a", _recorder(log, clk, "a")),
            queue.submit(CommandKind.STOP, "h", _recorder(log, clk, "hung", 30)),
        ]
        await queue.flush_stops(6.5)
        flushed_at = clk.now() - EPOCH
        await queue.stop()
        return log, flushed_at, [f.exception() for f in stops]

    log, flushed_at, (first, hung) = virtual(main())
    assert log == [("a", 100.0), ("hung", 106.06)]
    assert round(flushed_at, 2) == 106.5
    assert first is None
    assert isinstance(hung, QueueStopped)


def test_stats_count_kinds_and_last_minute() -> None:
    async def main() -> Any:
        clk = clock()
        changes: list[int] = []
        queue = CommandQueue(clk, Settings(qpm=30), on_change=lambda: changes.append(1))
        log: list[tuple[str, float]] = []
        futures = [
            queue.submit(CommandKind.EXTEND, "a", _recorder(log, clk, "e"), EPOCH + 100),
            queue.submit(CommandKind.GENERATE, "b", _recorder(log, clk, "g")),
            queue.submit(CommandKind.STOP, "c", _recorder(log, clk, "s")),
        ]
        await _with_worker(queue, asyncio.gather(*futures))
        stats = queue.stats()
        assert changes
        await asyncio.sleep(61)
        return stats, queue.stats()

    stats, later = virtual(main())
    assert (stats.extends, stats.generates, stats.stops) == (1, 1, 1)
    assert stats.enqueued == 3
    assert stats.commands_last_minute == 3
    assert stats.average_wait > 0
    assert later.commands_last_minute == 0


def test_a_backward_wall_clock_jump_does_not_freeze_the_queue() -> None:
    """Pacing is monotonic: an hour back on the wall clock, commands still go every interval."""

    async def main() -> list[float]:
        clk = clock()
        queue = CommandQueue(clk, Settings(qpm=10))
        sent: list[float] = []

        async def record() -> None:
            sent.append(clk.monotonic())

        worker = asyncio.create_task(queue.run())
        await queue.submit(CommandKind.GENERATE, "a", record)
        clk.jump(-3600)
        await asyncio.wait_for(
            asyncio.gather(*(queue.submit(CommandKind.GENERATE, d, record) for d in "bcd")), 60
        )
        await queue.stop()
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)
        return sent

    sent = virtual(main())
    gaps = [round(b - a, 2) for a, b in itertools.pairwise(sent)]
    assert gaps == [6.06, 6.06, 6.06]


def test_the_quota_back_off_ends_in_time_for_an_urgent_extension() -> None:
    """The doubling pause is cut so that an extension is tried once more before it expires."""

    async def main() -> tuple[str, list[float]]:
        clk = clock()
        queue = CommandQueue(clk, Settings(qpm=10))
        tries: list[float] = []

        async def extend() -> str:
            tries.append(round(clk.now() - EPOCH, 2))
            if len(tries) <= 2:
                raise QuotaExceeded("429")
            return "extended"

        future = queue.submit(CommandKind.EXTEND, "a", extend, EPOCH + 30)
        return await _with_worker(queue, future), tries

    result, tries = virtual(main())
    assert result == "extended"
    # 429 at 0 s: pause 12.12 s; 429 at 12.12 s: the doubled pause (24.24 s) would pass the
    # 30 s expiry, so it is cut to end one interval before it.
    assert tries == [0.0, 12.12, pytest.approx(23.94, abs=0.05)]


def test_another_apps_use_of_the_quota_slows_us_down() -> None:
    """Project 429s while Google counted few of ours, twice: we send at the share left to us
    (and say so in the statistics); a per-device 429 does not count."""

    async def main() -> tuple[list[float], list[float | None]]:
        clk = clock()
        queue = CommandQueue(clk, Settings(qpm=10))
        log: list[tuple[str, float]] = []
        rates: list[float | None] = []

        async def body() -> None:
            # Three commands a minute of ours, then the project's quota is full: another app.
            for index in range(3):
                await queue.submit(CommandKind.EXTEND, f"d{index}", _recorder(log, clk, "ok"))
                await asyncio.sleep(20)
            device_429 = QuotaExceeded("429", per_device=True)
            for name in ("x1", "x2"):
                await queue.submit(CommandKind.EXTEND, name, _refused(1, device_429))
            rates.append(queue.stats().effective_qpm)
            await queue.submit(CommandKind.EXTEND, "y", _refused(1, QuotaExceeded("429")))
            rates.append(queue.stats().effective_qpm)  # one refusal may be a passing one
            # Refused again after one of ours went through: not a storm, another app.
            await queue.submit(CommandKind.EXTEND, "w", _refused(1, QuotaExceeded("429")))
            rates.append(queue.stats().effective_qpm)
            await asyncio.gather(
                *(
                    queue.submit(CommandKind.EXTEND, f"z{index}", _recorder(log, clk, "after"))
                    for index in range(3)
                )
            )

        await _with_worker(queue, body())
        return [at for name, at in log if name == "after"], rates

    after, rates = virtual(main())
    # Google counted 3 or 4 of ours at the second refusal: another app used 6 or more, and one
    # drop takes at most a quarter: 7.5 a minute.
    assert rates == [10, 10, 7.5]
    interval = 60 / 7.5 * 1.01
    assert after[1] - after[0] == pytest.approx(interval)
    assert after[2] - after[1] == pytest.approx(interval)


def _refused(times: int, err: QuotaExceeded) -> Callable[[], Awaitable[str]]:
    """A command refused `times` times with `err`, then accepted."""
    left = times

    async def run() -> str:
        nonlocal left
        if left:
            left -= 1
            raise err
        return "ok"

    return run


def test_a_command_withdrawn_before_its_turn_is_never_sent() -> None:
    async def main() -> tuple[list[tuple[str, float]], bool, bool, bool]:
        clk = clock()
        queue = CommandQueue(clk, Settings(qpm=10))
        log: list[tuple[str, float]] = []
        first = queue.submit(CommandKind.GENERATE, "a", _recorder(log, clk, "a", 1.0))
        second = queue.submit(CommandKind.GENERATE, "b", _recorder(log, clk, "b"))

        async def body() -> tuple[bool, bool]:
            await asyncio.sleep(0.5)  # a runs, b waits for its slot
            running = queue.withdraw(first)
            waiting = queue.withdraw(second)
            await asyncio.sleep(30)
            return running, waiting

        running, waiting = await _with_worker(queue, body())
        return log, running, waiting, second.cancelled()

    log, running, waiting, cancelled = virtual(main())
    assert log == [("a", 0.0)]
    assert (running, waiting, cancelled) == (False, True, True)


def test_a_device_never_spends_more_than_its_hourly_budget() -> None:
    """Google limits each device per hour too: the fourth command of a device with a budget of
    3 waits until the first is an hour old, while other devices go on."""

    async def main() -> tuple[list[tuple[str, float]], float | None]:
        clk = clock()
        queue = CommandQueue(clk, Settings(qpm=60, device_calls_per_hour=3))
        log: list[tuple[str, float]] = []
        kinds = [CommandKind.GENERATE, CommandKind.EXTEND, CommandKind.STOP, CommandKind.GENERATE]

        async def body() -> float | None:
            futures = [
                queue.submit(kind, "a", _recorder(log, clk, f"a{index}"))
                for index, kind in enumerate(kinds)
            ]
            await asyncio.sleep(10)
            other = queue.submit(CommandKind.GENERATE, "b", _recorder(log, clk, "b"))
            await other
            spent = queue.budget_spent_until("a")
            await asyncio.gather(*futures)
            return None if spent is None else spent - EPOCH

        spent = await _with_worker(queue, body())
        return log, spent

    log, spent = virtual(main())
    # Priority order (extension, generations, then the stop), one a second: the stop is the
    # fourth command of "a" and waits for the hour.
    assert log == [("a1", 0.0), ("a0", 1.01), ("a3", 2.02), ("b", 10.0), ("a2", 3600.0)]
    assert spent == pytest.approx(3600)


def test_a_429_storm_is_logged_once_and_shown_in_the_statistics(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The first 429 of a storm is a warning, the rest debug, the end one info; while it lasts
    the statistics say until when commands pause and how many wait."""

    async def main() -> tuple[Any, Any]:
        clk = clock()
        queue = CommandQueue(clk, Settings(qpm=10))
        during: list[Any] = []

        async def body() -> Any:
            await queue.submit(CommandKind.GENERATE, "z", _refused(0, QuotaExceeded("429")))
            await asyncio.sleep(30)
            first = queue.submit(CommandKind.GENERATE, "a", _refused(3, QuotaExceeded("429")))
            second = queue.submit(CommandKind.GENERATE, "b", _refused(0, QuotaExceeded("429")))
            await asyncio.sleep(1)
            during.append(queue.stats())
            await first
            after = queue.stats()
            await second
            return after

        after = await _with_worker(queue, body())
        return during[0], after

    with caplog.at_level("DEBUG", logger="custom_components.nest_streams.core.quota"):
        during, after = virtual(main())
    assert during.backoff_until - EPOCH == pytest.approx(30 + 12.12)
    assert during.depth == 2
    assert after.backoff_until is None
    assert after.depth == 1
    queue_log = [r for r in caplog.records if r.name.endswith("core.quota")]
    assert queue_log[0].levelname == "WARNING"  # the storm's first refusal
    assert "quota was exceeded" in queue_log[0].getMessage()
    assert caplog.text.count("quota was exceeded") == 1
    assert caplog.text.count("429 again") == 2
    assert caplog.text.count("accepts commands again") == 1  # not after every command
    assert "accepts commands again after 3 refusals" in caplog.text


def test_another_apps_use_is_logged_once_and_its_end_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A drop of our share is a warning once per episode; the whole quota back is info once."""

    async def main() -> list[float | None]:
        clk = clock()
        queue = CommandQueue(clk, Settings(qpm=10))
        rates: list[float | None] = []

        async def body() -> None:
            await queue.submit(CommandKind.EXTEND, "d", _refused(0, QuotaExceeded("429")))
            # The first two refusals come in a row (a storm?); each later one follows an
            # accepted command: three confirmed drops, one episode.
            for _ in range(4):
                await queue.submit(CommandKind.EXTEND, "y", _refused(2, QuotaExceeded("429")))
                rates.append(queue.stats().effective_qpm)
                await asyncio.sleep(70)
            for _ in range(120):  # an hour and more without a 429
                await queue.submit(CommandKind.EXTEND, "z", _refused(0, QuotaExceeded("429")))
                await asyncio.sleep(30)
            rates.append(queue.stats().effective_qpm)

        await _with_worker(queue, body())
        return rates

    with caplog.at_level("INFO", logger="custom_components.nest_streams.core.quota"):
        rates = virtual(main())
    assert rates[0] == 10
    assert rates[1] is not None
    assert rates[1] < 10
    assert rates[2] is not None
    assert rates[2] < rates[1]
    assert rates[-1] == 10
    assert caplog.text.count("Another app uses this project's quota") == 1
    assert caplog.text.count("The project's whole quota is ours again") == 1


def test_a_command_submitted_just_before_its_slot_waits_for_it() -> None:
    async def main() -> list[float]:
        clk = clock()
        queue = CommandQueue(clk, Settings(qpm=10))
        log: list[tuple[str, float]] = []

        async def body() -> None:
            await queue.submit(CommandKind.EXTEND, "a", _recorder(log, clk, "a"))
            await asyncio.sleep(5.5)  # the next slot is at 6.06 s
            await queue.submit(CommandKind.EXTEND, "b", _recorder(log, clk, "b"))

        await _with_worker(queue, body())
        return [at for _, at in log]

    assert virtual(main()) == [0, 6.06]


def test_a_withdrawn_command_does_not_hold_up_the_ones_behind_it() -> None:
    """The most urgent command's device must wait (its per-device window is full); behind it a
    withdrawn one, behind that one another device's command, which goes at once."""

    async def main() -> list[tuple[str, float]]:
        clk = clock()
        queue = CommandQueue(clk, Settings(qpm=60, per_device_qpm=5))
        log: list[tuple[str, float]] = []
        for i in range(5):
            queue.submit(CommandKind.EXTEND, "full", _recorder(log, clk, f"f{i}"), EPOCH + 500)

        async def body() -> None:
            await asyncio.sleep(10)  # five of "full" went out
            waiting = queue.submit(
                CommandKind.EXTEND, "full", _recorder(log, clk, "f5"), EPOCH + 100
            )
            withdrawn = queue.submit(
                CommandKind.EXTEND, "gone", _recorder(log, clk, "gone"), EPOCH + 101
            )
            other = queue.submit(
                CommandKind.EXTEND, "other", _recorder(log, clk, "other"), EPOCH + 102
            )
            queue.withdraw(withdrawn)
            await asyncio.gather(waiting, other)

        await _with_worker(queue, body())
        return log[5:]

    assert virtual(main()) == [("other", 10.0), ("f5", 60.0)]


def test_a_stop_refused_for_quota_while_unloading_is_not_retried() -> None:
    """Flushing the stops, a 429 ends that stop (its stream expires at Google anyway): no
    back-off holds up the unload, and a submission after the stop is refused."""

    async def main() -> tuple[list[str], BaseException | None, BaseException | None, Any]:
        clk = clock()
        queue = CommandQueue(clk, Settings(qpm=10))
        log: list[tuple[str, float]] = []
        refused = queue.submit(CommandKind.STOP, "a", _refused(5, QuotaExceeded("429")), None)
        queue.submit(CommandKind.STOP, "b", _recorder(log, clk, "b"))
        await queue.flush_stops(30)
        await queue.stop()
        late = queue.submit(CommandKind.STOP, "c", _recorder(log, clk, "c"))
        return [name for name, _ in log], refused.exception(), late.exception(), queue.stats()

    names, refused, late, stats = virtual(main())
    assert isinstance(refused, QueueStopped)
    assert str(refused) == "refused for quota while stopping"
    assert isinstance(late, QueueStopped)
    assert str(late) == "the command queue is stopped"
    assert names == ["b"]
    assert stats.quota_rejections == 1


def test_a_command_behind_an_expired_extension_still_goes() -> None:
    async def main() -> list[tuple[str, float]]:
        clk = clock()
        queue = CommandQueue(clk, Settings(qpm=10))
        log: list[tuple[str, float]] = []
        first = queue.submit(CommandKind.EXTEND, "a", _recorder(log, clk, "a"), EPOCH + 2)
        late = queue.submit(CommandKind.EXTEND, "b", _recorder(log, clk, "b"), EPOCH + 3)
        after = queue.submit(CommandKind.GENERATE, "c", _recorder(log, clk, "c"))
        await _with_worker(queue, asyncio.wait([first, late, after]))
        return log

    assert virtual(main()) == [("a", 0.0), ("c", 6.06)]


def test_a_command_behind_an_extension_its_device_may_not_send_in_time_still_goes() -> None:
    """The most urgent extension's device may send again only after the stream expires: it
    fails at once, and another device's command behind it goes in the same slot."""

    async def main() -> tuple[list[tuple[str, float]], float, BaseException | None]:
        clk = clock()
        queue = CommandQueue(clk, Settings(qpm=60, per_device_qpm=5))
        log: list[tuple[str, float]] = []
        for i in range(5):
            queue.submit(CommandKind.EXTEND, "full", _recorder(log, clk, f"f{i}"), EPOCH + 500)

        async def body() -> tuple[float, BaseException | None]:
            await asyncio.sleep(10)  # five of "full" went out; its next one may go at 60 s
            doomed = queue.submit(CommandKind.EXTEND, "full", _recorder(log, clk, "f5"), EPOCH + 30)
            other = queue.submit(CommandKind.GENERATE, "other", _recorder(log, clk, "other"))
            await asyncio.wait([doomed])
            failed_at = clk.now() - EPOCH
            await other
            return failed_at, doomed.exception()

        failed_at, error = await _with_worker(queue, body())
        return log[5:], failed_at, error

    log, failed_at, error = virtual(main())
    assert log == [("other", 10.0)]
    assert failed_at == 10.0
    assert isinstance(error, StreamGone)


def test_a_command_refused_after_its_minute_passed_is_retried() -> None:
    """Google's 429 for a slow command arrives after the command left the last minute's count
    (pruned by a statistics read meanwhile): it is put back and goes through."""

    async def main() -> tuple[str, float]:
        clk = clock()
        queue = CommandQueue(clk, Settings(qpm=10, command_timeout=120))
        refusals = 1

        async def slow_then_refused() -> str:
            nonlocal refusals
            if refusals:
                refusals -= 1
                await asyncio.sleep(70)
                raise QuotaExceeded("429")
            return "ok"

        async def body() -> str:
            future = queue.submit(CommandKind.EXTEND, "a", slow_then_refused, EPOCH + 600)
            await asyncio.sleep(65)
            assert queue.stats().commands_last_minute == 0  # its send time is pruned
            return await asyncio.wait_for(future, 120)

        result = await _with_worker(queue, body())
        return result, clk.now() - EPOCH

    result, done_at = virtual(main())
    assert result == "ok"
    assert 70 < done_at < 90


def test_a_command_goes_the_moment_its_device_may_send_again() -> None:
    """The queue sleeps until the device's window opens, however short the wait."""

    async def main() -> list[tuple[str, float]]:
        clk = clock()
        queue = CommandQueue(clk, Settings(qpm=600, per_device_qpm=1))
        log: list[tuple[str, float]] = []

        async def body() -> None:
            await queue.submit(CommandKind.EXTEND, "a", _recorder(log, clk, "first"))
            await asyncio.sleep(59.5)  # its device may send again at 60 s
            await queue.submit(CommandKind.EXTEND, "a", _recorder(log, clk, "second"))

        await _with_worker(queue, body())
        return log

    assert virtual(main()) == [("first", 0.0), ("second", 60.0)]


def test_a_new_queue_shows_no_wait_and_no_back_off() -> None:
    async def main() -> Any:
        return CommandQueue(clock(), Settings()).stats()

    stats = virtual(main())
    assert (stats.depth, stats.average_wait, stats.backoff_until) == (0, 0.0, None)
    assert (stats.enqueued, stats.executed, stats.quota_rejections) == (0, 0, 0)


def test_the_first_quota_back_off_is_two_intervals_at_a_fast_quota_too() -> None:
    """At 600 a minute a slot is 0.1 s: a storm's first back-off is 0.2 s, not a fixed second;
    the next storm, after a command went through, starts from 0.2 s again."""

    async def main() -> list[float]:
        clk = clock()
        queue = CommandQueue(clk, Settings(qpm=600))
        log: list[tuple[str, float]] = []

        def once_refused(name: str) -> Callable[[], Awaitable[str]]:
            refused = _refused(1, QuotaExceeded("429"))

            async def run() -> str:
                log.append((name, clk.now() - EPOCH))
                return await refused()

            return run

        async def body() -> None:
            await queue.submit(CommandKind.EXTEND, "a", once_refused("a"), EPOCH + 60)
            await asyncio.sleep(5)
            await queue.submit(CommandKind.EXTEND, "b", once_refused("b"), EPOCH + 60)

        await _with_worker(queue, body())
        return [at for _, at in log]

    first, retry, later, later_retry = virtual(main())
    assert retry - first == pytest.approx(2 * 0.101)
    assert later_retry - later == pytest.approx(2 * 0.101)


def test_a_withdrawn_extension_does_not_shorten_a_quota_back_off() -> None:
    """The back-off ends early for a queued extension about to expire, not for one withdrawn
    (its camera stopped) that still sits in the queue."""

    async def main() -> list[float]:
        clk = clock()
        queue = CommandQueue(clk, Settings(qpm=10))
        log: list[tuple[str, float]] = []
        refused = _refused(1, QuotaExceeded("429"))

        async def slow_then_refused_once() -> str:
            log.append(("a", round(clk.now() - EPOCH, 2)))
            await asyncio.sleep(1)
            return await refused()

        async def body() -> None:
            first = queue.submit(CommandKind.EXTEND, "a", slow_then_refused_once, EPOCH + 200)
            await asyncio.sleep(0.5)
            withdrawn = queue.submit(CommandKind.EXTEND, "w", _recorder(log, clk, "w"), EPOCH + 10)
            await asyncio.sleep(0.1)  # the worker waits for the next slot meanwhile
            queue.withdraw(withdrawn)
            await first

        await _with_worker(queue, body())
        return [at for _, at in log]

    # Refused at 1 s: two intervals of back-off, the retry at 13.12 s (not 1 + 6.06).
    assert virtual(main()) == [0.0, 13.12]


def test_an_unanswered_command_still_takes_its_late_answer() -> None:
    """Not answered in time: the submitter hears so (maybe executed) and gets a future that
    takes the answer when it comes; a command may be waited for until its `answer_by`."""

    async def main() -> tuple[Any, ...]:
        clk = clock()
        queue = CommandQueue(clk, Settings(qpm=60, command_timeout=10))
        log: list[tuple[str, float]] = []
        slow = queue.submit(CommandKind.EXTEND, "a", _recorder(log, clk, "slow", 30), EPOCH + 99)
        patient = queue.submit(
            CommandKind.EXTEND,
            "b",
            _recorder(log, clk, "patient", 25),
            EPOCH + 99,
            answer_by=EPOCH + 40,
        )
        never = queue.submit(CommandKind.GENERATE, "c", _recorder(log, clk, "never", 600))
        worker = asyncio.create_task(queue.run())
        await asyncio.wait([slow, patient, never])
        unanswered = slow.exception()
        assert isinstance(unanswered, TransientError)
        assert unanswered.late is not None
        late_answer = await unanswered.late
        answered_at = clk.now() - EPOCH
        never_error = never.exception()
        assert isinstance(never_error, TransientError)
        assert never_error.late is not None
        with pytest.raises(TimeoutError):
            await never_error.late
        given_up_at = clk.now() - EPOCH
        stats = queue.stats()
        await queue.stop()
        worker.cancel()
        return str(unanswered), late_answer, answered_at, patient.result(), given_up_at, stats

    unanswered, late_answer, answered_at, patient, given_up_at, stats = virtual(main())
    assert unanswered == "no answer within 10 s"
    assert (late_answer, answered_at) == ("slow", 30.0)
    assert patient == "patient", "answered within its answer_by: a plain answer"
    assert given_up_at == pytest.approx(2.02 + 90, abs=0.1), "kept open LATE_LIMIT seconds"
    assert stats.late_answers == 1


def test_an_expired_stop_is_dropped_unsent() -> None:
    """A stop whose stream expired while it waited (stops go last) spends no slot."""

    async def main() -> tuple[BaseException | None, list[tuple[str, float]]]:
        clk = clock()
        queue = CommandQueue(clk, Settings(qpm=10))
        log: list[tuple[str, float]] = []
        first = queue.submit(CommandKind.EXTEND, "a", _recorder(log, clk, "a"), EPOCH + 2)
        stop = queue.submit(CommandKind.STOP, "b", _recorder(log, clk, "b"), EPOCH + 3)
        await _with_worker(queue, asyncio.wait([first, stop]))
        return stop.exception(), log

    error, log = virtual(main())
    assert [name for name, _ in log] == ["a"]
    assert isinstance(error, StreamGone)


def test_a_command_not_yet_due_takes_only_a_free_slot() -> None:
    """An extension queued before it is due goes early in a slot nothing due needs, but a due
    command always goes first."""

    async def main() -> list[tuple[str, float]]:
        clk = clock()
        queue = CommandQueue(clk, Settings(qpm=6))  # a slot every 10 s
        log: list[tuple[str, float]] = []
        early = queue.submit(
            CommandKind.EXTEND,
            "a",
            _recorder(log, clk, "early"),
            EPOCH + 300,
            not_before=EPOCH + 100,
        )
        due = queue.submit(CommandKind.GENERATE, "b", _recorder(log, clk, "due"), EPOCH + 60)
        later = queue.submit(
            CommandKind.EXTEND,
            "c",
            _recorder(log, clk, "later"),
            EPOCH + 200,
            not_before=EPOCH + 150,
        )
        await _with_worker(queue, asyncio.gather(early, due, later))
        return log

    # The due generation first; the two early ones in the next free slots, by deadline.
    log = virtual(main())
    assert [name for name, _ in log] == ["due", "later", "early"]
    assert [at for _, at in log] == pytest.approx([0.0, 10.1, 20.2], abs=0.2)  # long before due


def test_a_command_not_yet_due_waits_for_its_device() -> None:
    """Early or not, a command waits until its device may send (5 per minute each)."""

    async def main() -> list[tuple[str, float]]:
        clk = clock()
        queue = CommandQueue(clk, Settings(qpm=60))
        log: list[tuple[str, float]] = []
        futures = [
            queue.submit(CommandKind.EXTEND, "a", _recorder(log, clk, f"x{n}"), EPOCH + 900)
            for n in range(5)
        ]
        futures.append(
            queue.submit(
                CommandKind.EXTEND,
                "a",
                _recorder(log, clk, "early"),
                EPOCH + 900,
                not_before=EPOCH + 500,
            )
        )
        await _with_worker(queue, asyncio.gather(*futures))
        return log

    log = virtual(main())
    assert [name for name, _ in log][-1] == "early"
    assert log[-1][1] == pytest.approx(60.0, abs=1.0)  # when the device's minute allows


def test_a_prompt_command_goes_before_the_pacers_slot_while_the_minute_has_room() -> None:
    """A viewer's command need not wait for the pacer's next slot (up to an interval) while
    the last minute holds at most the quota less 2: it goes at once; a plain command waits;
    with the minute nearly full the prompt one waits too."""

    async def main() -> list[tuple[str, float]]:
        clk = clock()
        queue = CommandQueue(clk, Settings(qpm=10))
        log: list[tuple[str, float]] = []

        async def body() -> None:
            await queue.submit(CommandKind.EXTEND, "a", _recorder(log, clk, "first"), EPOCH + 900)
            await asyncio.sleep(1)
            plain = queue.submit(CommandKind.GENERATE, "b", _recorder(log, clk, "plain"))
            prompt = queue.submit(
                CommandKind.GENERATE, "c", _recorder(log, clk, "viewer"), urgent=True, prompt=True
            )
            await asyncio.gather(plain, prompt)
            # Fill the minute: 8 more at the pacer's pace (10 in all within 60 s).
            await asyncio.gather(
                *(
                    queue.submit(CommandKind.EXTEND, f"x{i}", _recorder(log, clk, "x"), EPOCH + 900)
                    for i in range(7)
                )
            )
            await asyncio.sleep(1)
            await queue.submit(
                CommandKind.GENERATE, "d", _recorder(log, clk, "late viewer"), prompt=True
            )

        await _with_worker(queue, body())
        return log

    log = {name: at for name, at in virtual(main()) if name != "x"}
    assert log["viewer"] == pytest.approx(1.0, abs=0.01)  # at once, not at 6.06 s
    assert log["plain"] == pytest.approx(12.12, abs=0.1)  # after the viewer's, paced
    # 10 sent within the last minute: the late viewer waits for the pacer like anyone.
    assert log["late viewer"] > 60


def test_a_queue_that_takes_over_goes_on_from_the_last_ones_minute() -> None:
    """An entry reload makes a new queue: it starts from the old one's minute (Google still
    counts those commands) and its pacer's next slot, not from an empty minute."""

    async def main() -> tuple[list[tuple[str, float]], int]:
        clk = clock()
        settings = Settings(qpm=10)
        old = CommandQueue(clk, settings)
        log: list[tuple[str, float]] = []

        async def three() -> None:
            await asyncio.gather(
                *(
                    old.submit(CommandKind.EXTEND, f"a{i}", _recorder(log, clk, "old"), EPOCH + 900)
                    for i in range(3)
                )
            )

        await _with_worker(old, three())
        new = CommandQueue(clk, settings)
        new.quota.resume(old.quota.history())
        counted = new.stats().commands_last_minute
        await _with_worker(new, new.submit(CommandKind.GENERATE, "b", _recorder(log, clk, "new")))
        return log, counted

    log, counted = virtual(main())
    assert counted == 3
    olds = [at for name, at in log if name == "old"]
    (new_at,) = [at for name, at in log if name == "new"]
    # Paced after the old queue's last command, not at once.
    assert new_at == pytest.approx(olds[-1] + 6.06, abs=0.05)
