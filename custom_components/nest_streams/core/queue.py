"""One rate-limited priority queue of SDM commands per Google project."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
import contextlib
import itertools
import logging
import math
from typing import Any

from .clock import Clock
from .errors import QueueStopped, QuotaExceeded, TransientError
from .limiter import DeviceLimits
from .models import CommandKind, QueueStats
from .ordering import CommandOrder, QueuedCommand
from .quota import Quota
from .settings import Settings

_LOGGER = logging.getLogger(__name__)

type Spawn = Callable[[Coroutine[Any, Any, None], str], asyncio.Task[None]]

EMA_ALPHA = 0.2
LATE_LIMIT = 90.0
"""Seconds an unanswered command's request is kept open for a late answer (Google has been
seen to answer after 30 s: a late answer still says what Google did)."""


def _retrieve(future: asyncio.Future[Any]) -> None:
    """A late answer nobody awaited is not an error to report."""
    if not future.cancelled():
        future.exception()


class CommandQueue:
    """Sends a project's commands: in their order (`CommandOrder`), in the quota's slots
    (`Quota`), within each device's limits (`DeviceLimits`); each with its timeout and a late
    answer kept for its submitter.

    A 429 backs the whole queue off (the quota's back-off) and puts the command back in its
    place: it is never counted against the camera.
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
        self._limits = DeviceLimits(clock, settings)
        self._timeout = settings.command_timeout
        self._order = CommandOrder(clock, settings, self.quota, self._limits)
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
        entry = QueuedCommand(
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
        self._order.push(entry)
        self._enqueued += 1
        self._wakeup.set()
        self._changed()
        return future

    def withdraw(self, future: asyncio.Future[Any]) -> bool:
        """Withdraw the command of `future` if it was not sent yet (its future is cancelled)."""
        for entry in self._order:
            if entry.future is future and not future.done():
                future.cancel()
                self._changed()
                return True
        return False

    def stats(self) -> QueueStats:
        """A snapshot of the statistics."""
        return QueueStats(
            depth=self._order.depth(),
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
            if not self._order.pending():
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            self.quota.probe()
            if (delay := self.quota.delay()) > 0:
                if not self.quota.may_go_early() or (entry := self._order.prompt()) is None:
                    self._wakeup.clear()
                    await self._sleep_or_wakeup(delay)
                    continue
            else:
                entry, ready_at = self._order.pick()
                if entry is None:
                    self._wakeup.clear()
                    await self._sleep_or_wakeup(ready_at - self._clock.monotonic())
                    continue
            entry.sent_at = self.quota.take()
            self._limits.record(entry.device_id, entry.kind.name)
            wait = self._clock.monotonic() - entry.submitted_at
            self._average_wait += EMA_ALPHA * (wait - self._average_wait)
            task = self._spawn(self._execute(entry), f"sdm {entry.kind.name}")
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)
            self._changed()

    async def _sleep_or_wakeup(self, seconds: float) -> None:
        try:
            async with asyncio.timeout(max(0.0, seconds)):
                await self._wakeup.wait()
        except TimeoutError:
            pass

    async def _execute(self, entry: QueuedCommand) -> None:
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
                    self._order.push(entry)
                    self._wakeup.set()
                if err.per_device:
                    # Only this device and command wait; the project's other commands go on.
                    until = self._limits.block(entry.device_id, entry.kind.name)
                    _LOGGER.debug(
                        "429 for %s %s only; it waits %.0f s",
                        entry.device_id,
                        entry.kind.name,
                        until - self._clock.monotonic(),
                    )
                else:
                    self.quota.refused(self._order.urgent_deadlines())
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

    async def _unanswered(
        self, entry: QueuedCommand, call: asyncio.Future[Any], patience: float
    ) -> None:
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

    def _finish_error(self, entry: QueuedCommand, err: Exception) -> None:
        self.quota.accepted()
        self._failed += 1
        if not entry.future.done():
            entry.future.set_exception(err)

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change()

    def forget(self, device_id: str) -> None:
        """Drop what the queue remembers of a device that left the project."""
        self._limits.forget(device_id)

    def budget_spent_until(self, device_id: str) -> float | None:
        """Wall-clock time until which the device's hourly budget is spent, None if it is not."""
        return self._limits.budget_spent_until(device_id)

    async def flush_stops(self, grace: float) -> None:
        """Run the queued stops now, still paced by the limiter, for at most `grace` seconds.

        Used when the queue is about to stop. The quota cannot stop many streams at once (20
        stops take 2 minutes at 10 QPM); a stop that does not fit in `grace` is dropped, and
        its stream expires at Google on its own within its remaining lifetime.
        """
        self._stopped = True  # a 429 must not requeue
        deadline = self._clock.monotonic() + grace
        for entry in self._order.take_stops():
            if self._clock.monotonic() + self.quota.delay() > deadline:
                entry.future.set_exception(QueueStopped("no quota left before unloading"))
                continue
            await self._clock.sleep(self.quota.delay())
            entry.sent_at = self.quota.take()
            # Run in this (the unloading) task: no task of its own that an unload could cancel.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, deadline - self._clock.monotonic())):
                    await self._execute(entry)

    async def stop(self) -> None:
        """Stop: queued commands fail with `QueueStopped`, running ones are cancelled."""
        self._stopped = True
        self._wakeup.set()
        for entry in self._order.clear():
            entry.future.set_exception(QueueStopped("the command queue is stopped"))
        for task in list(self._inflight):
            task.cancel()
        await asyncio.gather(*self._inflight, return_exceptions=True)
        self._changed()
