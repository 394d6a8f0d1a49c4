"""The order of a project's queued commands, and the choice of the next one to send."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
import heapq
import math
from typing import Any

from .clock import Clock
from .errors import StreamGone
from .limiter import DeviceLimits
from .models import CommandKind
from .quota import Quota
from .settings import Settings

STOP_SLACK = 4
"""Intervals beyond its lead an extension must have left to give its slot to a stop."""


@dataclass(order=True, slots=True)
class QueuedCommand:
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
    leaves room (see `CommandOrder.prompt`)."""
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

    @property
    def waiting(self) -> bool:
        """Whether its submitter still waits for it (not withdrawn, not answered)."""
        return not self.future.done()


class CommandOrder:
    """The queued commands in a heap, and which goes next.

    Extensions run before generations, stops last; among extensions the earliest expiry goes
    first, ties and generations in submission order. Commands whose stream expired are
    dropped unsent. Choosing walks the commands in order (`sorted`): O(n log n) per command
    sent, n the commands queued (about one per camera, 50-100 at the quota's capacity),
    against one command every 6 s; taking one out re-heapifies, O(n).
    """

    def __init__(
        self, clock: Clock, settings: Settings, quota: Quota, limits: DeviceLimits
    ) -> None:
        """Order commands under `quota` and the devices' `limits`."""
        self._clock = clock
        self._settings = settings
        self._quota = quota
        self._limits = limits
        self._heap: list[QueuedCommand] = []

    def push(self, command: QueuedCommand) -> None:
        """Queue (or put back) a command."""
        heapq.heappush(self._heap, command)

    def __iter__(self) -> Iterator[QueuedCommand]:
        """The queued commands, in heap order."""
        return iter(self._heap)

    def pending(self) -> bool:
        """Whether any command waits (withdrawn or answered ones are dropped first)."""
        while self._heap and not self._heap[0].waiting:
            heapq.heappop(self._heap)
        return bool(self._heap)

    def depth(self) -> int:
        """How many commands wait."""
        return sum(1 for command in self._heap if command.waiting)

    def urgent_deadlines(self) -> Iterator[float]:
        """The expiries that waiting extensions (and urgent generations) race."""
        return (c.deadline for c in self._heap if c.urgent and c.waiting)

    def _take(self, command: QueuedCommand) -> QueuedCommand:
        self._heap.remove(command)
        heapq.heapify(self._heap)
        return command

    def _ready_at(self, command: QueuedCommand) -> float:
        """When Google's limits of the command's device let it go (monotonic; -inf: now)."""
        return self._limits.ready_at(command.device_id, command.kind.name)

    def prompt(self) -> QueuedCommand | None:
        """A prompt command (a viewer waits) whose device may send now, taken out; the
        caller asks the quota whether it may go before the pacer's next slot."""
        mono = self._clock.monotonic()
        for command in sorted(self._heap):
            if command.prompt and command.waiting and self._ready_at(command) <= mono:
                return self._take(command)
        return None

    def pick(self) -> tuple[QueuedCommand | None, float]:
        """The best due command whose device may send now; else, when no due command may,
        the best one not yet due whose device may (the slot would be lost); else the time
        when one may go. The command is taken out."""
        earliest = math.inf
        now = self._clock.now()
        mono = self._clock.monotonic()
        early: list[tuple[QueuedCommand, float]] = []
        for command in sorted(self._heap):
            if not command.waiting:
                continue
            if command.kind is not CommandKind.GENERATE and command.deadline <= now:
                # Too late: the stream expired while queued (an extension would be refused,
                # a stop is moot). Spend no slot on it.
                self._take(command).future.set_exception(
                    StreamGone("the stream expired before its turn")
                )
                continue
            ready_at = self._ready_at(command)
            if command.kind is CommandKind.EXTEND and ready_at >= mono + command.deadline - now:
                # Its device may not send again before the stream expires (Google's limit
                # per device and command): say so now, so its replacement goes out in time.
                self._take(command).future.set_exception(
                    StreamGone("the stream expires before its camera may be extended again")
                )
                continue
            if command.not_before is not None and command.not_before > now:
                early.append((command, ready_at))  # may go early once its device may send
                earliest = min(earliest, ready_at)
                continue
            if ready_at <= mono:
                if (
                    command.kind is CommandKind.EXTEND
                    and math.isfinite(command.deadline)
                    and command.deadline - now
                    > self._settings.extension_lead + STOP_SLACK * self._quota.interval
                    and (stop := self._ready_stop(now, mono)) is not None
                ):
                    command = stop  # the extension has time for a slot more; the stop has not
                return self._take(command), ready_at
            earliest = min(earliest, ready_at)
        for command, ready_at in early:  # nothing due may send now: the slot is free
            if ready_at <= mono:
                return self._take(command), ready_at
        return None, earliest

    def _ready_stop(self, now: float, mono: float) -> QueuedCommand | None:
        """A stop whose device may send now, of a stream that still lives at Google.

        Near capacity every slot goes to due extensions, and a stop (last in priority) would
        wait until its stream expired: a second stream per camera left at Google for the
        rest of its life. An extension with more than its lead and `STOP_SLACK` intervals left
        gives it the slot: it loses an interval of lead, once per replaced stream. (Measured
        at capacity, 41 cameras at 5 % faults on 64 seeds: 2 intervals cost the worst camera
        0.02 % of its day, under 99.95 %; 4 keep it at 99.954 % and stop 60 % of the streams
        that were left to expire; 6 never give a stop a slot there.)
        """
        for command in self._heap:
            if (
                command.kind is CommandKind.STOP
                and command.waiting
                and command.deadline > now
                and self._ready_at(command) <= mono
            ):
                return command
        return None

    def take_stops(self) -> list[QueuedCommand]:
        """Take out every waiting stop, in order (the queue is about to stop)."""
        stops = sorted(c for c in self._heap if c.kind is CommandKind.STOP and c.waiting)
        for stop in stops:
            self._heap.remove(stop)
        heapq.heapify(self._heap)
        return stops

    def clear(self) -> list[QueuedCommand]:
        """Take out every command; returns those still waiting."""
        waiting = [command for command in self._heap if command.waiting]
        self._heap.clear()
        return waiting
