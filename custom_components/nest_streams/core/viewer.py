"""A viewer's WebRTC session at Google: generated for its offer, extended while watched.

A WebRTC session streams to the one peer whose offer made it: a new session would need a new
answer, which the viewer's browser cannot take mid-call. So a viewer's session is never
regenerated. It is extended through the shared queue before it expires; when it cannot be
(a battery camera, a refused or failing extension) it plays until it expires and the viewer
is told it ended (`on_end`), so the browser can start a new view instead of showing a frozen
picture while quota is spent on a session nobody can watch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import logging

from .camera import EXPIRY_GRACE
from .client import StreamClient
from .clock import Clock
from .errors import AuthFailed, ExtendUnsupported, QueueStopped, StreamError, StreamGone
from .models import CameraInfo, CommandKind, StreamHandle
from .queue import CommandQueue
from .settings import Settings

_LOGGER = logging.getLogger(__name__)

ENDED = "the camera's live session ended"
CANNOT_EXTEND = "the camera's live session ended: this camera cannot extend it (battery)"
REFUSED = "Google ended the camera's live session"
AUTH = "Google refused the credentials; re-authentication is needed"


class ViewerSession:
    """One viewer's session (see the module); `generate` once, then `run` until cancelled."""

    def __init__(
        self,
        camera: CameraInfo,
        *,
        client: StreamClient,
        queue: CommandQueue,
        clock: Clock,
        settings: Settings,
        lead: Callable[[], float],
        on_end: Callable[[str], None],
        on_auth_failed: Callable[[], None],
        can_extend: bool = True,
        handle: StreamHandle | None = None,
    ) -> None:
        """A session of `camera`; `handle` adopts one that already runs (an entry reload)."""
        self.camera = camera
        self._client = client
        self._queue = queue
        self._clock = clock
        self._settings = settings
        self._lead = lead
        self._on_end = on_end
        self._on_auth_failed = on_auth_failed
        self.can_extend = can_extend
        self.handle = handle
        self._pending: asyncio.Future[StreamHandle] | None = None

    async def generate(self, offer_sdp: str) -> StreamHandle:
        """The session for `offer_sdp`, ahead of background work; raises the command's error."""
        camera = self.camera
        future = self._queue.submit(
            CommandKind.GENERATE,
            camera.device_id,
            lambda: self._client.generate(camera, offer_sdp),
            # Ahead of cameras that lost their stream (due now): a viewer waits for it.
            deadline=self._clock.now() - 2 * self._queue.interval,
            urgent=True,
            prompt=True,  # a viewer waits: before the pacer's next slot if the minute has room
        )
        self._pending = future
        try:
            self.handle = await future
        finally:
            self._pending = None
        return self.handle

    def withdraw(self) -> None:
        """The viewer left before its session was made: the generation is not sent, if it
        was not yet (else `generate` returns it and the caller stops it)."""
        if self._pending is not None:
            self._queue.withdraw(self._pending)

    async def run(self) -> None:
        """Extend the session before it expires; end it when it cannot be kept."""
        while (handle := self.handle) is not None:
            now = self._clock.now()
            remaining = handle.expires_at - now - EXPIRY_GRACE
            if remaining <= 0:
                self._end(ENDED if self.can_extend else CANNOT_EXTEND)
                return
            if not self.can_extend:
                await self._clock.sleep(remaining)
                continue
            if (wait := handle.expires_at - self._lead() - now) > 0:
                await self._clock.sleep(wait)
                continue
            try:
                self.handle = await self._extend(handle)
            except ExtendUnsupported:
                _LOGGER.info("%s cannot extend WebRTC sessions", self.camera.name)
                self.can_extend = False
            except StreamGone as err:
                _LOGGER.debug("%s: the viewer's session was refused: %s", self.camera.name, err)
                self._end(REFUSED)
                return
            except AuthFailed:
                self._on_auth_failed()
                self._end(AUTH)
                return
            except QueueStopped:
                await asyncio.Event().wait()  # the scheduler stops: cancelled soon
            except StreamError as err:
                # A passing failure: the session id stays, so the extension is tried again
                # while the session lasts (half the time that is left, at least a second).
                _LOGGER.debug("%s: extending a viewer's session failed: %s", self.camera.name, err)
                await self._clock.sleep(max(1.0, (handle.expires_at - self._clock.now()) / 2))

    async def _extend(self, handle: StreamHandle) -> StreamHandle:
        camera = self.camera
        return await self._queue.submit(
            CommandKind.EXTEND,
            camera.device_id,
            lambda: self._client.extend(camera, handle),
            deadline=handle.expires_at,
        )

    def _end(self, reason: str) -> None:
        self.handle = None
        self._on_end(reason)

    def stop_at_google(self) -> None:
        """Queue a stop of the live session (the viewer left)."""
        handle, self.handle = self.handle, None
        if handle is None or handle.expires_at <= self._clock.now():
            return
        camera = self.camera
        future = self._queue.submit(
            CommandKind.STOP, camera.device_id, lambda: self._client.stop(camera, handle)
        )
        future.add_done_callback(_ignore_failure)


def _ignore_failure(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()  # a failed stop changes nothing: the session expires on its own
