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
from .errors import CommandFailed, OverCapacity
from .models import (
    CameraInfo,
    QueueStats,
    StreamHandle,
    StreamProtocol,
    StreamState,
    StreamStatus,
)
from .queue import CommandQueue, Spawn
from .settings import Settings

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
        cameras' long-lived tasks and `spawn_command` each command's short one (both default to
        `asyncio.create_task`); the HA layer passes its own factories so HA tracks them.
        """
        self._spawn: Spawn = spawn or (lambda coro, name: asyncio.create_task(coro, name=name))
        self._client = client
        self._clock = clock
        self.settings = settings
        self._on_change = on_change
        self._on_auth_failed = on_auth_failed
        self.queue = CommandQueue(
            clock,
            settings,
            on_change=self._notify,
            on_share_change=self._share_changed,
            spawn=spawn_command,
        )
        self._streams: dict[str, CameraStream] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._viewers: dict[str, tuple[CameraStream, asyncio.Task[None]]] = {}
        self._viewer_ids = itertools.count(1)
        self._refuse_extensions: set[str] = set()
        """Cameras known to refuse extensions (learned by viewers, or saved)."""
        self.over_capacity: tuple[str, ...] = ()
        self.auth_failed = False
        self._admitted = 0
        self._slack = settings.lead_slack(0)
        """How far the lead may grow with the cameras admitted (see `Settings.lead_slack`)."""
        self._keep_alive: Callable[[CameraInfo], bool] = lambda _: True
        self._admission_qpm = settings.qpm
        """The rate the current admission was made with (see `SharedQuota.admission`)."""

    @property
    def capacity(self) -> int:
        """Cameras our share of the quota can hold."""
        return self.settings.at_rate(self.queue.share.admission).capacity

    @property
    def admission_qpm(self) -> float:
        """Commands per minute admission plans with (less than the quota while shared)."""
        return self.queue.share.admission

    def _share_changed(self) -> None:
        """Our share of the quota changed: admit again when admission's rate did, and fit the
        lead's slack to the rate we send at now."""
        if self.queue.share.admission != self._admission_qpm:
            self.set_cameras(self.cameras.values(), keep_alive=self._keep_alive)
        self._slack = self.settings.at_rate(self.queue.share.rate).lead_slack(self._admitted)

    def lead(self) -> float:
        """Seconds before expiry at which an extension is due, adapted to the queue.

        The minimum lead plus room for the expected wait, but never so much that the active
        cameras would need more commands than the quota gives.
        """
        settings = self.settings
        extra = min(
            max(2 * self.queue.average_wait + self.queue.interval, 4 * self.queue.interval),
            self._slack,
        )
        return settings.extension_lead + extra

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
        keep_alive: Callable[[CameraInfo], bool] = lambda _: True,
        restored: Mapping[str, StreamHandle] | None = None,
        cannot_extend: Collection[str] = (),
    ) -> None:
        """Make the scheduler's cameras these: new ones start, missing ones are dropped.

        Cameras to keep alive beyond the quota's capacity stay stopped and are listed in
        `over_capacity`: cameras kept alive now keep their place, the others are admitted in
        name order. WebRTC-only cameras are never kept alive (on demand): a session streams
        only to the viewer whose offer started it, so one nobody watches buys nothing.
        """
        cameras = sorted(cameras, key=lambda c: (c.name, c.device_id))
        self._keep_alive = keep_alive
        self._admission_qpm = self.queue.share.admission

        def alive(camera: CameraInfo) -> bool:
            return camera.protocol is StreamProtocol.RTSP and keep_alive(camera)

        # Cameras kept alive now keep their place; the others queue up in name order.
        wanted = sorted(
            (camera for camera in cameras if alive(camera)),
            key=lambda c: not self._kept_alive(c.device_id),
        )
        admitted = {camera.device_id for camera in wanted[: self.capacity]}
        self._admitted = len(admitted)
        self._slack = self.settings.at_rate(self.queue.share.rate).lead_slack(len(admitted))
        over_capacity = tuple(c.device_id for c in wanted if c.device_id not in admitted)
        if over_capacity and over_capacity != self.over_capacity:
            _LOGGER.warning(
                "%d cameras need more commands than %.3g per minute allow; not kept alive: %s",
                len(over_capacity),
                self.queue.share.admission,
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

    async def open_viewer(self, device_id: str, offer_sdp: str) -> tuple[str, StreamHandle]:
        """Start a viewer's WebRTC session, ahead of background work; keep it extended.

        Returns a key for `close_viewer` and the session (with the answer SDP). Raises
        `OverCapacity` when the kept-alive cameras and the open viewers already use the whole
        quota (a viewer never starves a camera), `CommandFailed` (or the command's error) when
        the first generation fails.
        """
        camera = self._streams[device_id].camera
        in_use = sum(1 for stream in self._streams.values() if stream.enabled)
        if in_use + len(self._viewers) >= self.capacity:
            raise OverCapacity(
                f"{in_use} cameras and {len(self._viewers)} viewers use the quota's "
                f"{self.capacity} streams"
            )
        key = f"{device_id}#viewer-{next(self._viewer_ids)}"
        ready: asyncio.Future[StreamHandle] = asyncio.get_running_loop().create_future()

        def on_change(viewer: CameraStream) -> None:
            if not viewer.status.can_extend:
                self._refuse_extensions.add(device_id)
            if ready.done():
                return
            if viewer.handle is not None:
                ready.set_result(viewer.handle)
            elif viewer.status.state in (StreamState.FAILED, StreamState.DEGRADED):
                # A failure always leaves its error text.
                ready.set_exception(CommandFailed(str(viewer.status.last_error)))

        viewer = self._new_stream(
            camera,
            on_change=on_change,
            offer_sdp=offer_sdp,
            urgent_start=True,
            can_extend=device_id not in self.cannot_extend(),
        )
        self._viewers[key] = (viewer, self._spawn(viewer.run(), key))
        try:
            return key, await ready
        except BaseException:
            self.close_viewer(key)
            raise

    def close_viewer(self, key: str) -> None:
        """End a viewer's session: stop extending it and stop it at Google."""
        if (entry := self._viewers.pop(key, None)) is not None:
            viewer, task = entry
            task.cancel()
            viewer.queue_stop()

    async def run(self) -> None:
        """Run the command queue's worker until cancelled."""
        await self.queue.run()

    async def stop(self, *, stop_streams: bool = True, grace: float = 10.0) -> None:
        """Stop everything; with `stop_streams`, the live streams are stopped at Google first."""
        viewers = list(self._viewers)
        for key in viewers:
            self.close_viewer(key)
        for task in self._tasks.values():
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        if stop_streams:
            for stream in self._streams.values():
                stream.queue_stop()
            await self.queue.flush_stops(grace)
        self._tasks.clear()
        await self.queue.stop()
