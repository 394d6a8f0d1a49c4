"""One camera's stream state machine."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import logging

from .client import StreamClient
from .clock import Clock
from .errors import (
    AuthFailed,
    ExtendUnsupported,
    QueueStopped,
    StreamError,
    StreamGone,
    TransientError,
)
from .models import (
    CameraInfo,
    CommandKind,
    StreamHandle,
    StreamProtocol,
    StreamState,
    StreamStatus,
)
from .queue import CommandQueue
from .settings import Settings

_LOGGER = logging.getLogger(__name__)

EXPIRY_GRACE = 1.0
"""A stream this close to its expiry is treated as gone."""
SWITCH_TIME = 5.0
"""Seconds a viewer's session needs to move to a new stream URL (a key frame: up to a GOP)."""
EARLY_SLOTS = 4
"""An extension is queued this many command intervals before it is due: a slot nothing due
needs may send it early (the queue's idle slots become lead for the busy ones)."""
REPLACE_AFTER = 2
"""Failed extensions in a row after which a stream short of time is replaced, not extended."""


class CameraStream:
    """Keeps one camera's stream alive through the shared command queue."""

    def __init__(
        self,
        camera: CameraInfo,
        *,
        client: StreamClient,
        queue: CommandQueue,
        clock: Clock,
        settings: Settings,
        lead: Callable[[], float],
        on_change: Callable[[CameraStream], None],
        on_auth_failed: Callable[[], None],
        restored: StreamHandle | None = None,
        enabled: bool = True,
        can_extend: bool = True,
    ) -> None:
        """Create the state machine; `run()` drives it."""
        self.camera = camera
        self._client = client
        self._queue = queue
        self._clock = clock
        self.settings = settings
        self._lead = lead
        self._on_change = on_change
        self._on_auth_failed = on_auth_failed
        self._handle = restored
        self._enabled = enabled
        self._wake = asyncio.Event()
        self._state = StreamState.STARTING if enabled else self._idle_state()
        self._failures = 0
        self._last_error: str | None = None
        self._last_attempt: float | None = None
        self._last_extension: float | None = None
        self._retry_at: float | None = None
        """Monotonic time of the next retry after a failure."""
        self._next_action: float | None = None
        self._can_extend = can_extend
        self._replacing_until: float | None = None
        """Expiry of a stream being replaced (refused extension): its successor is urgent."""
        self._lapsed = False
        """The camera's stream was lost (expired, refused, unanswered): its successor is urgent."""
        self._queued: asyncio.Future[StreamHandle] | None = None
        """The command queued last (withdrawn when the camera is stopped before its turn)."""
        self._stop_at_google = True
        """Whether stopping the camera stops its stream at Google (else it is left to expire);
        set by every `stop`, read only while stopped."""
        self._orphan: StreamHandle | None = None
        """A stream whose extension went unanswered: replaced (while it lasts it is still the
        camera's stream; its tokens may have rotated, so it is never stopped: it expires)."""
        self._spare: StreamHandle | None = None
        """A stream a late answer brought while another command was under way: used if that
        command fails, stopped (its tokens are known) if it succeeds."""
        self._failing_since: float | None = None
        """Monotonic time of the first failure in a row."""

    def _idle_state(self) -> StreamState:
        """Stopped, or on demand for a WebRTC camera (its viewers have sessions of their own)."""
        if self.camera.protocol is StreamProtocol.WEB_RTC:
            return StreamState.ON_DEMAND
        return StreamState.STOPPED

    @property
    def handle(self) -> StreamHandle | None:
        """The current stream, if any."""
        return self._handle

    @property
    def enabled(self) -> bool:
        """Whether the camera is to be kept alive."""
        return self._enabled

    @property
    def status(self) -> StreamStatus:
        """An immutable snapshot of the camera's stream."""
        handle = self._handle
        state, next_action = self._state, self._next_action
        if self._retry_at is not None:
            next_action = self._clock.now() + self._retry_at - self._clock.monotonic()
        if state in (StreamState.STARTING, StreamState.FAILED) and (
            spent_until := self._queue.budget_spent_until(self.camera.device_id)
        ):
            state, next_action = StreamState.HOURLY_LIMIT, spent_until
        return StreamStatus(
            device_id=self.camera.device_id,
            state=state,
            consecutive_failures=self._failures,
            last_error=self._last_error,
            last_attempt=self._last_attempt,
            last_extension=self._last_extension,
            expires_at=handle.expires_at if handle else None,
            stream_url=handle.url if handle else None,
            session_id=handle.session_id if handle else None,
            can_extend=self._can_extend,
            next_action_at=next_action,
        )

    def start(self) -> None:
        """Keep the stream alive (again); a degraded camera is retried now."""
        self._enabled = True
        self._retry_at = None
        self._wake.set()

    def stop(self, last_error: str | None = None, *, at_google: bool = True) -> None:
        """Stop keeping the stream alive; the stream is stopped at Google (or left to expire)."""
        self._enabled = False
        self._stop_at_google = at_google
        self._last_error = last_error
        if self._queued is not None:
            self._queue.withdraw(self._queued)  # its turn would spend quota for nothing
        self._wake.set()

    def restart(self) -> None:
        """Drop the current stream and generate a new one now."""
        self.queue_stop()
        self._failures = 0
        self._retry_at = None
        self._enabled = True
        self._set_state(StreamState.STARTING)
        self._wake.set()

    def update_camera(self, camera: CameraInfo) -> None:
        """Take a newer description of the same camera (name, protocols)."""
        self.camera = camera

    async def run(self) -> None:
        """Drive the state machine until cancelled."""
        while True:
            await self._step()

    async def _step(self) -> None:
        if not self._enabled:
            if self._stop_at_google:
                self.queue_stop()
            else:
                self._handle = None  # it expires at Google within its lifetime
            self._retry_at = self._next_action = None
            self._set_state(self._idle_state())
            await self._wait(None)
            return
        mono = self._clock.monotonic()
        if self._retry_at is not None and mono < self._retry_at:
            await self._wait(self._retry_at - mono)
            return
        now = self._clock.now()
        handle = self._handle
        if handle is None or handle.expires_at <= now + EXPIRY_GRACE:
            self._lapsed = self._lapsed or handle is not None
            self._handle = None
            if self._state is StreamState.RUNNING:
                self._set_state(StreamState.STARTING)
            await self._attempt(CommandKind.GENERATE, None)
            return
        due = handle.expires_at - self._lead()
        # An extension of it went unanswered, or failed again with less time left than a
        # replacement needs: a new stream is the surer way. (After one refusal the extension
        # is retried: a replacement would leave the old stream alive beside the new one
        # unless a stop gets a slot before it expires, and one failure is mostly passing.)
        replace = self._orphan is handle or (
            self._failures >= REPLACE_AFTER and handle.expires_at - now < self._replace_time()
        )
        kind = CommandKind.EXTEND if self._can_extend and not replace else CommandKind.GENERATE
        queue_at = due - EARLY_SLOTS * self._queue.interval if kind is CommandKind.EXTEND else due
        if now < queue_at and not replace:
            self._next_action = due
            self._set_state(StreamState.RUNNING)
            await self._wait(queue_at - now)
            return
        await self._attempt(kind, handle, due)

    async def _wait(self, seconds: float | None) -> None:
        """Sleep for `seconds` (forever when None) or until woken."""
        self._wake.clear()
        waiter = asyncio.ensure_future(self._wake.wait())
        if seconds is None:
            await waiter
            return
        sleeper = asyncio.ensure_future(self._clock.sleep(seconds))
        try:
            await asyncio.wait((waiter, sleeper), return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            sleeper.cancel()

    async def _attempt(
        self, kind: CommandKind, handle: StreamHandle | None, due: float | None = None
    ) -> None:
        """Queue one command (`due`: when an extension is due; queued before, it may go early
        in a slot nothing due needs) and take its outcome."""
        camera = self.camera
        now = self._clock.now()
        self._last_attempt = now
        self._next_action = None
        if handle is not None and kind is CommandKind.EXTEND:
            # Waited for as long as a replacement could still take over in time: a slow answer
            # (seen after 30 s) is an answer, not a failure.
            future = self._queue.submit(
                kind,
                camera.device_id,
                lambda: self._client.extend(camera, handle),
                deadline=handle.expires_at,
                answer_by=handle.expires_at - self._replace_time(),
                not_before=due,
            )
        else:
            # Every generation is urgent. A replacement is due when the stream it replaces
            # expires; a camera without stream (lost, or not started yet) is out now: it goes
            # ahead of extensions with slack, after those about to expire (losing them costs
            # more).
            deadline = handle.expires_at if handle else self._replacing_until
            if deadline is None or deadline <= now:
                deadline = now + self._queue.interval
            future = self._queue.submit(
                kind,
                camera.device_id,
                lambda: self._client.generate(camera),
                deadline=deadline,
                urgent=True,
            )
        self._on_change(self)
        self._queued = future
        try:
            new_handle = await future
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if future.cancelled() and task is not None and not task.cancelling():
                return  # withdrawn before it was sent: the camera was stopped
            raise
        except QueueStopped:
            await self._wait(None)
            return
        except StreamError as err:
            self._failed(kind, handle, err)
            return
        self._success(kind, new_handle)

    def _failed(self, kind: CommandKind, handle: StreamHandle | None, err: StreamError) -> None:
        """What a failed command means, by its outcome (the first row that matches):

        | outcome                                | what follows                            |
        | -------------------------------------- | --------------------------------------- |
        | extension refused (`StreamGone`)       | a new stream now (`_stream_gone`)       |
        | credentials refused (`AuthFailed`)     | re-authentication asked; a failure      |
        | RTSP extension unanswered (maybe done) | replaced; the old stream left to expire |
        | anything else (5xx, unanswered, ...)   | a failure: back-off, then degraded      |

        An unanswered command's late answer, if one comes, is taken by `_late_answer`.
        """
        is_extension = kind is CommandKind.EXTEND and handle is not None
        if isinstance(err, TransientError) and err.late is not None:
            err.late.add_done_callback(lambda answer: self._late_answer(kind, answer))
        if isinstance(err, StreamGone) and is_extension and handle is not None:
            self._stream_gone(handle, err)
        elif isinstance(err, AuthFailed):
            self._on_auth_failed()
            self._failure(err)
        elif (
            isinstance(err, TransientError)
            and err.maybe_executed
            and is_extension
            and handle is not None
            and handle.protocol is StreamProtocol.RTSP
        ):
            # Google may have rotated the tokens: retrying the old one would only be
            # refused. Replace the stream instead (as urgently as an extension), showing
            # the old one while it lasts (it plays on at Google either way; it is not
            # stopped: with unknown tokens a stop is refused, and it expires soon).
            _LOGGER.debug("%s: extension unanswered (%s); replacing", self.camera.name, err)
            self._count_failure()
            self._last_error = str(err)
            self._orphan = handle  # the next step queues its replacement (and reports)
        else:
            self._failure(err)

    def _stream_gone(self, handle: StreamHandle, err: StreamGone) -> None:
        """An extension was refused: generate a new stream right away."""
        if isinstance(err, ExtendUnsupported):
            # Google's answer for cameras that cannot extend (battery): regenerate from now on.
            _LOGGER.info("%s cannot extend WebRTC sessions; regenerating instead", self.camera.name)
            self._can_extend = False
        else:
            _LOGGER.debug("%s: stream gone (%s); generating a new one", self.camera.name, err)
        self._last_error = str(err)
        self._replacing_until = handle.expires_at
        self._lapsed = True
        self._handle = None
        self._on_change(self)

    def _replace_time(self) -> float:
        """Seconds before a stream's expiry by which a replacement must be under way: its turn
        in the queue, its answer, and a viewer's move to the new URL."""
        return EXPIRY_GRACE + 2 * self._queue.interval + SWITCH_TIME

    def _late_answer(self, kind: CommandKind, answer: asyncio.Future[StreamHandle]) -> None:
        """Google answered a command after it counted as unanswered: what it made is used.

        The stream is the camera's if nothing replaced it yet (the replacement, not sent yet,
        is withdrawn; the failure is forgotten), a spare while the replacement is under way,
        or stopped (its tokens are known) when the camera has another stream or was stopped.
        """
        if answer.cancelled() or answer.exception() is not None:
            return
        late = answer.result()
        _LOGGER.debug("%s: a late answer to %s came", self.camera.name, kind.name)
        current = self._handle
        live = current is not None and current.expires_at > self._clock.now() + EXPIRY_GRACE
        if not self._enabled or (live and current is not self._orphan):
            self._queue_stop(late)
            return
        queued = self._queued
        if queued is not None and not queued.done() and not self._queue.withdraw(queued):
            self._spare = late  # the replacement is on its way to Google
            return
        self._success(kind, late)
        self._wake.set()

    def _count_failure(self) -> None:
        self._failures += 1
        if self._failing_since is None:
            self._failing_since = self._clock.monotonic()

    def _failure(self, err: StreamError) -> None:
        now, mono = self._clock.now(), self._clock.monotonic()
        spare, self._spare = self._spare, None
        if spare is not None and spare.expires_at > now + EXPIRY_GRACE:
            self._success(CommandKind.GENERATE, spare)  # a late answer's stream takes over
            return
        self._count_failure()
        if self._failures == 1:
            # Logged once when the camera's stream is in trouble, once when it recovers.
            _LOGGER.warning("%s: stream command failed: %s", self.camera.name, err)
        else:
            _LOGGER.debug("%s: failed again (%d): %s", self.camera.name, self._failures, err)
        self._last_error = str(err)
        failing_for = mono - (self._failing_since or mono)
        if (
            self._failures >= self.settings.max_failures
            and failing_for >= self.settings.degrade_after
        ):
            # Failing for as long as the back-off's schedule takes (not failures that fast
            # retries packed into seconds before a stream expired): degraded.
            self._retry_at = mono + self.settings.degraded_retry
            # Forced: a retry that fails while degraded changes the count the entities show.
            self._set_state(StreamState.DEGRADED, force=True)
            return
        delay = self.settings.retry_delay(self._failures)
        handle = self._handle
        alive = handle is not None and handle.expires_at > now + EXPIRY_GRACE
        if handle is not None and alive:
            # The stream still runs: retry while it can still be saved, backoff or not.
            last_chance = handle.expires_at - now - self._lead() / 2
            delay = max(1.0, min(delay, last_chance))
        elif isinstance(err, TransientError) and (self._lapsed or handle is not None):
            # Its stream expired meanwhile (the next step counts it lapsed). A camera that lost
            # its stream is out until a generation succeeds: a passing error (5xx, no answer)
            # is retried soon; a lasting one still ends in degraded. One merely unanswered
            # is retried at once: Google may answer in 30 s, the retry likely at once (the
            # late answer's stream, if it comes, is then a spare, stopped with its token).
            soon = err.late is not None or self._failures == 1  # the first: most likely passing
            delay = 0.0 if soon else min(delay, 2 * self._queue.interval)
        self._retry_at = mono + delay
        # Forced: the failure count and error changed even when the state did not.
        self._set_state(StreamState.RUNNING if alive else StreamState.FAILED, force=True)

    def _success(self, kind: CommandKind, handle: StreamHandle) -> None:
        if self._failures or self._state is StreamState.DEGRADED:
            _LOGGER.info("%s: stream recovered", self.camera.name)
        self._failures = 0
        self._failing_since = None
        self._retry_at = None
        self._replacing_until = None
        self._lapsed = False
        self._last_error = None
        self._handle = handle
        if kind is CommandKind.EXTEND:
            self._last_extension = self._clock.now()
        self._orphan = None
        if self._spare is not None and self._spare is not handle:
            spare, self._spare = self._spare, None
            self._queue_stop(spare)
        if not self._enabled:
            return
        self._set_state(StreamState.RUNNING, force=True)

    def queue_stop(self) -> None:
        """Queue a stop for the current stream (and a spare one): stops run last, and are
        dropped unsent when their stream expires first."""
        handle, self._handle = self._handle, None
        spare, self._spare = self._spare, None
        for stream in (handle, spare):
            if stream is not None:
                self._queue_stop(stream)

    def _queue_stop(self, handle: StreamHandle) -> None:
        if handle.expires_at <= self._clock.now():
            return
        camera = self.camera
        future = self._queue.submit(
            CommandKind.STOP,
            camera.device_id,
            lambda: self._client.stop(camera, handle),
            deadline=handle.expires_at,
        )
        future.add_done_callback(self._stop_done)

    def _stop_done(self, future: asyncio.Future[None]) -> None:
        if not future.cancelled() and (err := future.exception()) is not None:
            _LOGGER.debug("%s: stopping the stream failed: %s", self.camera.name, err)

    def _set_state(self, state: StreamState, *, force: bool = False) -> None:
        if state is not self._state or force:
            self._state = state
            self._on_change(self)
