"""One rate-limited priority queue of SDM commands per Google project."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
import contextlib
from dataclasses import dataclass, field
import heapq
import itertools
import logging
import math
from typing import Any

from .clock import Clock
from .errors import QueueStopped, QuotaExceeded, StreamGone, TransientError
from .limiter import DeviceWindow
from .models import CommandKind, QueueStats
from .quota import Quota
from .settings import Settings

_LOGGER = logging.getLogger(__name__)

type Spawn = Callable[[Coroutine[Any, Any, None], str], asyncio.Task[None]]

EMA_ALPHA = 0.2
LATE_LIMIT = 90.0
"""Seconds an unanswered command's request is kept open for a late answer (Google has been
seen to answer after 30 s: a late answer still says what Google did)."""
STOP_SLACK = 4
"""Intervals beyond its lead an extension must have left to give its slot to a stop."""


@dataclass(order=True, slots=True)
class _Entry:
    """A queued command. Ordered by priority, then deadline, then submission order."""

    priority: int
    deadline: float
    seq: int
    kind: CommandKind = field(compare=False)
    device_id: str = field(compare=False)
    run: Callable[[], Awaitable[Any]] = field(compare=False)
    future: asyncio.Future[Any] = field(compare=False)
    submitted_at: float = field(compare=False)
    prompt: bool = field(default=False, compare=False)
    """A viewer waits for it: it may go before the pacer's next slot while the last minute
    leaves room (see `CommandQueue._prompt`)."""
    not_before: float | None = field(default=None, compare=False)
    """Wall-clock time the command is due; before it, it goes only in a slot nothing due
    needs (an extension sent early keeps its stream's lead when the queue gets busy)."""
    answer_by: float | None = field(default=None, compare=False)
    """Wall-clock time by which its submitter must know the outcome (else `command_timeout`
    after sending): it then hears "unanswered" while the request waits on for a late answer."""
    sent_at: float | None = field(default=None, compare=False)

    @property
    def urgent(self) -> bool:
        """Whether the command competes with extensions (an extension, or an urgent generation)."""
        return self.priority == CommandKind.EXTEND


def _retrieve(future: asyncio.Future[Any]) -> None:
    """A late answer nobody awaited is not an error to report."""
    if not future.cancelled():
        future.exception()


class CommandQueue:
    """Priority heap in front of the project's quota (its pacer) and per-device windows.

    Extensions run before generations, stops last; among extensions the earliest expiry goes
    first, ties and generations in submission order. A 429 backs the whole queue off (the
    quota's back-off) and puts the command back in its place: it is never counted against
    the camera.

    Picking a command sorts the heap (`_pick`): O(n log n) per command sent, n the commands
    queued (at most a few per camera: about 50-100 at the quota's capacity), against one
    command every 6 s.
    """

    def __init__(
        self,
        clock: Clock,
        settings: Settings,
        *,
        quota: Quota | None = None,
        on_change: Callable[[], None] | None = None,
        spawn: Spawn | None = None,
    ) -> None:
        """Create a queue; `run()` is its worker.

        `quota` is the project's quota (a whole one of `settings.qpm` by default);
        `on_change` is called after every change of the queue; `spawn` starts the task of
        each command (default `asyncio.create_task`).
        """
        self._spawn: Spawn = spawn or (lambda coro, name: asyncio.create_task(coro, name=name))
        self._clock = clock
        self._settings = settings
        self.quota = quota or Quota(clock, settings)
        self._devices = DeviceWindow(clock, settings.per_device_qpm)
        self._budget = DeviceWindow(clock, settings.device_calls_per_hour, window=3600.0)
        self._timeout = settings.command_timeout
        self._heap: list[_Entry] = []
        self._seq = itertools.count()
        self._wakeup = asyncio.Event()
        self._inflight: set[asyncio.Task[None]] = set()
        self._stopped = False
        self._enqueued = 0
        self._executed = 0
        self._failed = 0
        self._counts = dict.fromkeys(CommandKind, 0)
        self._quota_rejections = 0
        self._average_wait = 0.0
        self._late = 0
        """Commands answered after their submitter heard "unanswered"."""
        self._on_change = on_change

    @property
    def interval(self) -> float:
        """Seconds between two commands (the quota's)."""
        return self.quota.interval

    @property
    def average_wait(self) -> float:
        """EMA of the time commands wait in the queue, in seconds."""
        return self._average_wait

    def submit[T](
        self,
        kind: CommandKind,
        device_id: str,
        run: Callable[[], Awaitable[T]],
        deadline: float | None = None,
        *,
        urgent: bool = False,
        answer_by: float | None = None,
        not_before: float | None = None,
        prompt: bool = False,
    ) -> asyncio.Future[T]:
        """Queue a command; the future resolves with its result or error.

        `urgent` gives a command the extensions' priority: a generation that replaces a
        stream about to expire competes with extensions by deadline. A command that is not
        answered in time (`command_timeout` after it was sent, or later up to `answer_by`)
        fails with `TransientError(maybe_executed=True)` whose `late` future still takes
        Google's answer if it comes (within `LATE_LIMIT`). A command with `not_before` is due
        then; before, it takes only a slot no due command needs now. Commands go by `deadline`
        (earliest first); an extension or stop whose stream expired (its deadline) before its
        turn is dropped unsent. Cancelling the future withdraws a command that has not
        started.
        """
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        if self._stopped:
            future.set_exception(QueueStopped("the command queue is stopped"))
            return future
        entry = _Entry(
            priority=CommandKind.EXTEND if urgent else kind,
            kind=kind,
            deadline=math.inf if deadline is None else deadline,
            seq=next(self._seq),
            device_id=device_id,
            run=run,
            future=future,
            submitted_at=self._clock.monotonic(),
            answer_by=answer_by,
            not_before=not_before,
            prompt=prompt,
        )
        heapq.heappush(self._heap, entry)
        self._enqueued += 1
        self._wakeup.set()
        self._changed()
        return future

    def withdraw(self, future: asyncio.Future[Any]) -> bool:
        """Withdraw the command of `future` if it was not sent yet (its future is cancelled)."""
        for entry in self._heap:
            if entry.future is future and not future.done():
                future.cancel()
                self._changed()
                return True
        return False

    def stats(self) -> QueueStats:
        """A snapshot of the statistics."""
        return QueueStats(
            depth=sum(1 for entry in self._heap if not entry.future.done()),
            enqueued=self._enqueued,
            executed=self._executed,
            failed=self._failed,
            extends=self._counts[CommandKind.EXTEND],
            generates=self._counts[CommandKind.GENERATE],
            stops=self._counts[CommandKind.STOP],
            quota_rejections=self._quota_rejections,
            average_wait=self._average_wait,
            commands_last_minute=self.quota.last_minute(),
            backoff_until=self.quota.backoff_until,
            effective_qpm=self.quota.rate,
            late_answers=self._late,
        )

    async def run(self) -> None:
        """The worker: take a slot, pick the most urgent ready command, start it."""
        while not self._stopped:
            if not self._pending():
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            self.quota.probe()
            if (delay := self.quota.delay()) > 0:
                if (entry := self._prompt()) is None:
                    self._wakeup.clear()
                    await self._sleep_or_wakeup(delay)
                    continue
            else:
                entry, ready_at = self._pick()
                if entry is None:
                    self._wakeup.clear()
                    await self._sleep_or_wakeup(ready_at - self._clock.monotonic())
                    continue
            entry.sent_at = self.quota.take()
            self._devices.record(entry.device_id, entry.kind.name)
            self._budget.record(entry.device_id, DeviceWindow.ANY)
            wait = self._clock.monotonic() - entry.submitted_at
            self._average_wait += EMA_ALPHA * (wait - self._average_wait)
            task = self._spawn(self._execute(entry), f"sdm {entry.kind.name}")
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)
            self._changed()

    def _pending(self) -> bool:
        while self._heap and self._heap[0].future.done():
            heapq.heappop(self._heap)
        return bool(self._heap)

    def _prompt(self) -> _Entry | None:
        """A prompt command (a viewer waits) that may go before the pacer's next slot: its
        device may send, and the quota lets it go early (`Quota.may_go_early`)."""
        if not self.quota.may_go_early():
            return None
        mono = self._clock.monotonic()
        for entry in sorted(self._heap):
            if not entry.prompt or entry.future.done():
                continue
            ready_at = max(
                self._devices.ready_at(entry.device_id, entry.kind.name),
                self._budget.ready_at(entry.device_id, DeviceWindow.ANY),
            )
            if ready_at <= mono:
                self._heap.remove(entry)
                heapq.heapify(self._heap)
                return entry
        return None

    def _pick(self) -> tuple[_Entry | None, float]:
        """The best due command whose device may send now; else, when no due command may,
        the best one not yet due whose device may (the slot would be lost); else the time
        when one may go."""
        earliest = math.inf
        now = self._clock.now()
        mono = self._clock.monotonic()
        early: list[tuple[_Entry, float]] = []
        for entry in sorted(self._heap):
            if entry.future.done():
                continue
            if entry.kind is not CommandKind.GENERATE and entry.deadline <= now:
                # Too late: the stream expired while queued (an extension would be refused,
                # a stop is moot). Spend no slot on it.
                self._heap.remove(entry)
                heapq.heapify(self._heap)
                entry.future.set_exception(StreamGone("the stream expired before its turn"))
                continue
            ready_at = self._ready_at(entry)
            if entry.kind is CommandKind.EXTEND and ready_at >= mono + entry.deadline - now:
                # Its device may not send again before the stream expires (Google's limit
                # per device and command): say so now, so its replacement goes out in time.
                self._heap.remove(entry)
                heapq.heapify(self._heap)
                entry.future.set_exception(
                    StreamGone("the stream expires before its camera may be extended again")
                )
                continue
            if entry.not_before is not None and entry.not_before > now:
                early.append((entry, ready_at))  # may go early once its device may send
                earliest = min(earliest, ready_at)
                continue
            if ready_at <= mono:
                if (
                    entry.kind is CommandKind.EXTEND
                    and math.isfinite(entry.deadline)
                    and entry.deadline - now
                    > self._settings.extension_lead + STOP_SLACK * self.interval
                    and (stop := self._ready_stop(now, mono)) is not None
                ):
                    entry = stop  # the extension has time for a slot more; the stop has not
                self._heap.remove(entry)
                heapq.heapify(self._heap)
                return entry, ready_at
            earliest = min(earliest, ready_at)
        for entry, ready_at in early:  # nothing due may send now: the slot is free
            if ready_at <= mono:
                self._heap.remove(entry)
                heapq.heapify(self._heap)
                return entry, ready_at
        return None, earliest

    def _ready_stop(self, now: float, mono: float) -> _Entry | None:
        """A stop whose device may send now, of a stream that still lives at Google.

        Near capacity every slot goes to due extensions, and a stop (last in priority) would
        wait until its stream expired: a second stream per camera left at Google for the
        rest of its life. An extension with more than its lead and `STOP_SLACK` intervals left
        gives it the slot: it loses an interval of lead, once per replaced stream. (Measured
        at capacity, 41 cameras at 5 % faults on 64 seeds: 2 intervals cost the worst camera
        0.02 % of its day, under 99.95 %; 4 keep it at 99.954 % and stop 60 % of the streams
        that were left to expire; 6 never give a stop a slot there.)
        """
        for entry in self._heap:
            if (
                entry.kind is CommandKind.STOP
                and not entry.future.done()
                and entry.deadline > now
                and self._ready_at(entry) <= mono
            ):
                return entry
        return None

    def _ready_at(self, entry: _Entry) -> float:
        """When Google's limits of the entry's device let it go (monotonic; -inf: now)."""
        return max(
            self._devices.ready_at(entry.device_id, entry.kind.name),
            self._budget.ready_at(entry.device_id, DeviceWindow.ANY),
        )

    async def _sleep_or_wakeup(self, seconds: float) -> None:
        try:
            async with asyncio.timeout(max(0.0, seconds)):
                await self._wakeup.wait()
        except TimeoutError:
            pass

    async def _execute(self, entry: _Entry) -> None:
        call = asyncio.ensure_future(entry.run())
        try:
            patience = self._timeout
            if entry.answer_by is not None:
                patience = min(LATE_LIMIT, max(patience, entry.answer_by - self._clock.now()))
            done, _ = await asyncio.wait({call}, timeout=patience)
            if not done:
                await self._unanswered(entry, call, patience)
                return
            result = call.result()
        except QuotaExceeded as err:
            self._quota_rejections += 1
            if entry.sent_at is not None:
                self.quota.uncount(entry.sent_at)  # Google counts no refused command
            if self._stopped:
                self._finish_error(entry, QueueStopped("refused for quota while stopping"))
            else:
                if not entry.future.done():
                    heapq.heappush(self._heap, entry)
                    self._wakeup.set()
                if err.per_device:
                    # Only this device and command wait; the project's other commands go on.
                    until = self._devices.block(entry.device_id, entry.kind.name)
                    _LOGGER.debug(
                        "429 for %s %s only; it waits %.0f s",
                        entry.device_id,
                        entry.kind.name,
                        until - self._clock.monotonic(),
                    )
                else:
                    self.quota.refused(
                        e.deadline for e in self._heap if e.urgent and not e.future.done()
                    )
        except asyncio.CancelledError:
            call.cancel()
            if not entry.future.done():
                entry.future.set_exception(QueueStopped("the command queue is stopped"))
            raise
        except Exception as err:
            self._finish_error(entry, err)
        else:
            self.quota.accepted()
            self._executed += 1
            self._counts[entry.kind] += 1
            if not entry.future.done():
                entry.future.set_result(result)
        self._changed()

    async def _unanswered(self, entry: _Entry, call: asyncio.Future[Any], patience: float) -> None:
        """No answer in time: the submitter hears so now; a late answer is kept for it."""
        late: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        late.add_done_callback(_retrieve)
        self._finish_error(
            entry,
            TransientError(f"no answer within {patience:.0f} s", maybe_executed=True, late=late),
        )
        self._changed()
        try:
            async with asyncio.timeout(max(0.0, LATE_LIMIT - patience)):
                result = await call
        except asyncio.CancelledError:
            late.cancel()
            raise
        except Exception as err:  # any outcome is the late answer (a timeout: none came)
            late.set_exception(err)
            return
        finally:
            call.cancel()
        self._late += 1
        late.set_result(result)

    def _finish_error(self, entry: _Entry, err: Exception) -> None:
        self.quota.accepted()
        self._failed += 1
        if not entry.future.done():
            entry.future.set_exception(err)

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change()

    def forget(self, device_id: str) -> None:
        """Drop what the queue remembers of a device that left the project."""
        self._devices.forget(device_id)
        self._budget.forget(device_id)

    def budget_spent_until(self, device_id: str) -> float | None:
        """Wall-clock time until which the device's hourly budget is spent, None if it is not."""
        ready_at = self._budget.ready_at(device_id, DeviceWindow.ANY)
        mono = self._clock.monotonic()
        return None if ready_at <= mono else self._clock.now() + ready_at - mono

    async def flush_stops(self, grace: float) -> None:
        """Run the queued stops now, still paced by the limiter, for at most `grace` seconds.

        Used when the queue is about to stop. The quota cannot stop many streams at once (20
        stops take 2 minutes at 10 QPM); a stop that does not fit in `grace` is dropped, and
        its stream expires at Google on its own within its remaining lifetime.
        """
        self._stopped = True  # a 429 must not requeue
        deadline = self._clock.monotonic() + grace
        stops = sorted(e for e in self._heap if e.kind is CommandKind.STOP and not e.future.done())
        for entry in stops:
            self._heap.remove(entry)
            if self._clock.monotonic() + self.quota.delay() > deadline:
                entry.future.set_exception(QueueStopped("no quota left before unloading"))
                continue
            await self._clock.sleep(self.quota.delay())
            entry.sent_at = self.quota.take()
            # Run in this (the unloading) task: no task of its own that an unload could cancel.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, deadline - self._clock.monotonic())):
                    await self._execute(entry)
        heapq.heapify(self._heap)

    async def stop(self) -> None:
        """Stop: queued commands fail with `QueueStopped`, running ones are cancelled."""
        self._stopped = True
        self._wakeup.set()
        for entry in self._heap:
            if not entry.future.done():
                entry.future.set_exception(QueueStopped("the command queue is stopped"))
        self._heap.clear()
        for task in list(self._inflight):
            task.cancel()
        await asyncio.gather(*self._inflight, return_exceptions=True)
        self._changed()
