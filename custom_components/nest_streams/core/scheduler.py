"""All cameras of one Google project behind one command queue."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Iterable, Mapping
import itertools
import logging
from typing import Any

from .camera import EXPIRY_GRACE, CameraStream
from .client import StreamClient
from .clock import Clock
from .errors import OverCapacity, ViewerWithdrawn
from .models import (
    CameraInfo,
    QueueStats,
    StreamHandle,
    StreamProtocol,
    StreamStatus,
)
from .queue import CommandQueue, Spawn
from .quota import Quota
from .settings import Settings
from .viewer import ViewerSession

_LOGGER = logging.getLogger(__name__)

OVER_CAPACITY = "over quota capacity"


class StreamScheduler:
    """Owns the command queue and a `CameraStream` per camera; `run()` is the worker."""

    def __init__(
        self,
        client: StreamClient,
        clock: Clock,
        settings: Settings,
        *,
        on_change: Callable[[str | None], None],
        on_auth_failed: Callable[[], None],
        spawn: Spawn | None = None,
        spawn_command: Spawn | None = None,
    ) -> None:
        """Create a scheduler; nothing runs before `run()`.

        `on_change` is called after every change: with the device id of the camera whose stream
        changed, or None for a change of the queue or of the camera set. `on_auth_failed`
        once when Google refuses the credentials. `spawn` creates the
        cameras' long-lived tasks and `spawn_command` each command's short one (`spawn_command`
        defaults to `spawn`, `spawn` to `asyncio.create_task`); the HA layer passes its own
        factory so HA tracks them.
        """
        self._spawn: Spawn = spawn or (lambda coro, name: asyncio.create_task(coro, name=name))
        self._client = client
        self._clock = clock
        self.settings = settings
        self._on_change = on_change
        self._on_auth_failed = on_auth_failed
        self.quota = Quota(clock, settings, on_admission_change=self._admit_again)
        """The project's quota: rate, admission, interval, capacity and lead are read here."""
        self.queue = CommandQueue(
            clock,
            settings,
            quota=self.quota,
            on_change=self._notify,
            spawn=spawn_command or spawn,
        )
        self._streams: dict[str, CameraStream] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._viewers: dict[str, tuple[ViewerSession, asyncio.Task[None]]] = {}
        self._opening: dict[str, ViewerSession] = {}
        self._withdrawn: set[str] = set()
        self._viewer_ids = itertools.count(1)
        self._refuse_extensions: set[str] = set()
        """Cameras known to refuse extensions (learned by viewers, or saved)."""
        self.over_capacity: tuple[str, ...] = ()
        self.auth_failed = False
        self._excluded: frozenset[str] = frozenset()
        """The cameras the user does not want kept alive (see `set_cameras`)."""

    @property
    def capacity(self) -> int:
        """Cameras our share of the quota can hold."""
        return self.quota.capacity

    def _admit_again(self) -> None:
        """Admission's rate changed (our share of the quota): admit the cameras again."""
        self.set_cameras(self.cameras.values(), excluded=self._excluded)

    def lead(self) -> float:
        """Seconds before expiry at which an extension is due (see `Quota.lead`)."""
        return self.quota.lead(self.queue.average_wait)

    def _notify(self, stream: CameraStream | None = None) -> None:
        self._on_change(None if stream is None else stream.camera.device_id)

    def _auth_failed(self) -> None:
        if not self.auth_failed:
            self.auth_failed = True
            self._on_auth_failed()

    def _new_stream(self, camera: CameraInfo, **kwargs: Any) -> CameraStream:
        """A state machine for `camera` on this scheduler's queue, clock and settings."""
        kwargs.setdefault("on_change", self._notify)
        return CameraStream(
            camera,
            client=self._client,
            queue=self.queue,
            clock=self._clock,
            settings=self.settings,
            lead=self.lead,
            on_auth_failed=self._auth_failed,
            **kwargs,
        )

    def set_cameras(
        self,
        cameras: Iterable[CameraInfo],
        *,
        excluded: Collection[str] = frozenset(),
        restored: Mapping[str, StreamHandle] | None = None,
        cannot_extend: Collection[str] = (),
    ) -> None:
        """Make the scheduler's cameras these: new ones start, missing ones are dropped.

        Every RTSP camera not `excluded` (by device id) is to be kept alive. Those beyond the
        quota's capacity stay stopped and are listed in `over_capacity`: cameras kept alive now
        keep their place, the others are admitted in name order. WebRTC-only cameras are never
        kept alive (on demand): a session streams only to the viewer whose offer started it,
        so one nobody watches buys nothing.
        """
        cameras = sorted(cameras, key=lambda c: (c.name, c.device_id))
        self._excluded = frozenset(excluded)

        def alive(camera: CameraInfo) -> bool:
            return camera.protocol is StreamProtocol.RTSP and camera.device_id not in self._excluded

        admitted, over_capacity = self.admission(cameras, self._excluded)
        self.quota.admit(len(admitted))
        if over_capacity and over_capacity != self.over_capacity:
            _LOGGER.warning(
                "%d cameras need more commands than %.3g per minute allow; not kept alive: %s",
                len(over_capacity),
                self.quota.admission,
                ", ".join(over_capacity),
            )
        self.over_capacity = over_capacity
        self._refuse_extensions |= set(cannot_extend)
        restored = restored or {}
        now = self._clock.now()
        seen = set()
        for camera in cameras:
            seen.add(camera.device_id)
            enabled = camera.device_id in admitted
            if (stream := self._streams.get(camera.device_id)) is not None:
                stream.update_camera(camera)
                if enabled and not stream.enabled:
                    stream.start()
                elif not enabled and stream.enabled:
                    if alive(camera):
                        # Stopping it at Google would spend the quota it no longer fits in.
                        stream.stop(OVER_CAPACITY, at_google=False)
                    else:
                        stream.stop()
                continue
            handle = restored.get(camera.device_id)
            if handle is not None and handle.expires_at <= now + EXPIRY_GRACE:
                handle = None
            stream = self._new_stream(
                camera,
                restored=handle,
                enabled=enabled,
                can_extend=camera.device_id not in cannot_extend,
            )
            if not enabled and alive(camera):
                stream.stop(OVER_CAPACITY)
            self._streams[camera.device_id] = stream
            self._tasks[camera.device_id] = self._spawn(
                stream.run(), f"nest_streams camera {camera.device_id}"
            )
        for device_id in set(self._streams) - seen:
            self._remove(device_id)
        self._notify()

    def admission(
        self, cameras: Iterable[CameraInfo], excluded: Collection[str] = frozenset()
    ) -> tuple[set[str], tuple[str, ...]]:
        """Which cameras the quota would keep alive when all but `excluded` are wanted, and
        which not.

        Cameras kept alive now keep their place; the others queue up in name order. Changes
        nothing (services ask it before they apply anything).
        """
        wanted = sorted(
            (
                camera
                for camera in sorted(cameras, key=lambda c: (c.name, c.device_id))
                if camera.protocol is StreamProtocol.RTSP and camera.device_id not in excluded
            ),
            key=lambda c: not self._kept_alive(c.device_id),
        )
        admitted = {camera.device_id for camera in wanted[: self.capacity]}
        return admitted, tuple(c.device_id for c in wanted if c.device_id not in admitted)

    def _kept_alive(self, device_id: str) -> bool:
        stream = self._streams.get(device_id)
        return stream is not None and stream.enabled

    def _remove(self, device_id: str) -> None:
        """Forget a camera that left the device list; its stream is stopped at Google."""
        self._tasks.pop(device_id).cancel()
        self._streams.pop(device_id).queue_stop()
        self.queue.forget(device_id)

    @property
    def cameras(self) -> dict[str, CameraInfo]:
        """The cameras, by device id."""
        return {device_id: stream.camera for device_id, stream in self._streams.items()}

    def statuses(self) -> dict[str, StreamStatus]:
        """Every camera's status, by device id."""
        return {device_id: stream.status for device_id, stream in self._streams.items()}

    def handles(self) -> dict[str, StreamHandle]:
        """Every live stream, by device id (for persistence)."""
        return {
            device_id: stream.handle
            for device_id, stream in self._streams.items()
            if stream.handle is not None
        }

    def cannot_extend(self) -> set[str]:
        """The cameras known to refuse extensions (for persistence)."""
        learned = {device_id for device_id, s in self._streams.items() if not s.status.can_extend}
        return (learned | self._refuse_extensions) & set(self._streams)

    def stats(self) -> QueueStats:
        """The queue's statistics."""
        return self.queue.stats()

    def stream(self, device_id: str) -> CameraStream:
        """The state machine of a camera (KeyError when unknown)."""
        return self._streams[device_id]

    def _check_room(self) -> None:
        """Raise `OverCapacity` when the kept-alive cameras and the viewers fill the quota."""
        in_use = sum(1 for stream in self._streams.values() if stream.enabled)
        if in_use + len(self._viewers) >= self.capacity:
            raise OverCapacity(
                f"{in_use} cameras and {len(self._viewers)} viewers use the quota's "
                f"{self.capacity} streams"
            )

    def _new_viewer(
        self,
        device_id: str,
        on_end: Callable[[str], None],
        handle: StreamHandle | None = None,
        key: str | None = None,
    ) -> tuple[str, ViewerSession]:
        key = key or f"{device_id}#viewer-{next(self._viewer_ids)}"

        def ended(reason: str) -> None:
            self._forget_viewer(key)
            on_end(reason)

        viewer = ViewerSession(
            self._streams[device_id].camera,
            client=self._client,
            queue=self.queue,
            clock=self._clock,
            settings=self.settings,
            lead=self.lead,
            on_end=ended,
            on_auth_failed=self._auth_failed,
            can_extend=device_id not in self.cannot_extend(),
            handle=handle,
        )
        return key, viewer

    async def open_viewer(
        self,
        device_id: str,
        offer_sdp: str,
        on_end: Callable[[str], None],
        *,
        key: str | None = None,
    ) -> tuple[str, StreamHandle]:
        """Start a viewer's WebRTC session, ahead of background work; keep it extended.

        Returns a key for `close_viewer` (`key` when given) and the session (with the answer
        SDP). `on_end(reason)`
        is called when the session ends on its own (it cannot be extended, or was refused):
        the viewer must start anew (a session is never regenerated). Raises `OverCapacity`
        when the kept-alive cameras and the open viewers already use the whole quota (a viewer
        never starves a camera), the command's error when the generation fails, and
        `ViewerWithdrawn` when `withdraw_viewer` was called meanwhile (a session generated
        anyway is stopped).
        """
        self._check_room()
        key, viewer = self._new_viewer(device_id, on_end, key=key)
        self._opening[key] = viewer
        try:
            handle = await viewer.generate(offer_sdp)
        except asyncio.CancelledError:
            if key not in self._withdrawn:
                raise
            raise ViewerWithdrawn(key) from None
        finally:
            self._opening.pop(key, None)
            withdrawn = key in self._withdrawn
            self._withdrawn.discard(key)
        if withdrawn:  # generated meanwhile: nobody will watch it
            viewer.stop_at_google()
            raise ViewerWithdrawn(key)
        self._viewers[key] = (viewer, self._spawn(viewer.run(), key))
        self._notify(self._streams.get(device_id))
        return key, handle

    def withdraw_viewer(self, key: str) -> None:
        """A viewer left while its session was being generated: nothing of it may stay."""
        if (viewer := self._opening.get(key)) is not None:
            self._withdrawn.add(key)
            viewer.withdraw()

    def adopt_viewer(
        self, device_id: str, handle: StreamHandle, on_end: Callable[[str], None]
    ) -> str | None:
        """Keep extending a session a previous scheduler made (an entry reload); its key, or
        None when the camera is unknown or the session has expired."""
        if device_id not in self._streams or handle.expires_at <= self._clock.now() + EXPIRY_GRACE:
            return None
        key, viewer = self._new_viewer(device_id, on_end, handle)
        self._viewers[key] = (viewer, self._spawn(viewer.run(), key))
        return key

    def viewer_handle(self, key: str) -> StreamHandle | None:
        """The viewer's session as it is now (None: unknown or ended)."""
        entry = self._viewers.get(key)
        return entry[0].handle if entry is not None else None

    def _forget_viewer(self, key: str) -> ViewerSession | None:
        if (entry := self._viewers.pop(key, None)) is None:
            return None
        viewer, task = entry
        if not viewer.can_extend:
            self._refuse_extensions.add(viewer.camera.device_id)
        if task is not asyncio.current_task():
            task.cancel()
        return viewer

    def close_viewer(self, key: str, *, at_google: bool = True) -> None:
        """End a viewer's session: stop extending it and (with `at_google`) stop it at Google."""
        if (viewer := self._forget_viewer(key)) is not None and at_google:
            viewer.stop_at_google()

    async def run(self) -> None:
        """Run the command queue's worker until cancelled."""
        await self.queue.run()

    async def stop(self, *, stop_streams: bool = True, grace: float = 10.0) -> None:
        """Stop everything; with `stop_streams`, the live streams (and viewers' sessions) are
        stopped at Google first, else they are left to whoever comes next (a reload)."""
        for key in list(self._viewers):
            self.close_viewer(key, at_google=stop_streams)
        for task in self._tasks.values():
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        if stop_streams:
            for stream in self._streams.values():
                stream.queue_stop()
            await self.queue.flush_stops(grace)
        self._tasks.clear()
        await self.queue.stop()
