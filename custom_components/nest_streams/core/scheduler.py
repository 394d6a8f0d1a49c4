"""All cameras of one Google project behind one command queue."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
import itertools
import logging
import math

from .camera import CameraStream, StreamConfig
from .client import StreamClient
from .clock import Clock
from .errors import CommandFailed
from .models import CameraInfo, QueueStats, StreamHandle, StreamState, StreamStatus
from .queue import CommandQueue, Spawn

_LOGGER = logging.getLogger(__name__)

OVER_CAPACITY = "over quota capacity"


def capacity(qpm: float, config: StreamConfig, safety: float = 0.01) -> int:
    """How many cameras one project's quota can keep alive.

    Each camera costs one command per `stream_lifetime - min_lead` seconds.
    """
    interval = 60.0 / qpm * (1.0 + safety)
    return max(0, math.floor((config.stream_lifetime - config.min_lead) / interval))


class StreamScheduler:
    """Owns the command queue and a `CameraStream` per camera; `run()` is the worker."""

    def __init__(
        self,
        client: StreamClient,
        clock: Clock,
        *,
        qpm: float = 10,
        per_device_qpm: int = 5,
        config: StreamConfig | None = None,
        command_timeout: float = 10.0,
        spawn: Spawn | None = None,
        spawn_command: Spawn | None = None,
    ) -> None:
        """Create a scheduler; nothing runs before `run()`.

        `spawn` creates the cameras' long-lived tasks and `spawn_command` each command's short
        one (both default to `asyncio.create_task`); the HA layer passes its own factories so
        HA tracks them.
        """
        self._spawn: Spawn = spawn or (lambda coro, name: asyncio.create_task(coro, name=name))
        self._client = client
        self._clock = clock
        self.config = config or StreamConfig()
        self.qpm = qpm
        self.queue = CommandQueue(
            clock,
            qpm=qpm,
            per_device_qpm=per_device_qpm,
            timeout=command_timeout,
            spawn=spawn_command,
        )
        self.queue.on_change = self._notify
        self._streams: dict[str, CameraStream] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._listeners: list[Callable[[], None]] = []
        self._viewers: dict[str, tuple[CameraStream, asyncio.Task[None]]] = {}
        self._viewer_ids = itertools.count(1)
        self.over_capacity: tuple[str, ...] = ()
        self.auth_failed = False
        self.on_auth_failed: Callable[[], None] | None = None

    @property
    def capacity(self) -> int:
        """Cameras the quota can hold."""
        return capacity(self.qpm, self.config)

    def lead(self) -> float:
        """Seconds before expiry at which an extension is due, adapted to the queue.

        The minimum lead plus room for the expected wait, but never so much that the active
        cameras would need more commands than the quota gives.
        """
        active = sum(1 for stream in self._streams.values() if stream.enabled)
        slack = self.config.stream_lifetime - active * self.queue.interval - self.config.min_lead
        extra = min(2 * self.queue.average_wait + self.queue.interval, max(0.0, slack))
        return self.config.min_lead + extra

    def add_listener(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call `listener` after every change; returns a function that removes it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def _notify(self, _stream: CameraStream | None = None) -> None:
        for listener in list(self._listeners):
            listener()

    def _auth_failed(self) -> None:
        if not self.auth_failed:
            self.auth_failed = True
            if self.on_auth_failed is not None:
                self.on_auth_failed()

    def set_cameras(
        self,
        cameras: Iterable[CameraInfo],
        *,
        keep_alive: Callable[[CameraInfo], bool] = lambda _: True,
        restored: Mapping[str, StreamHandle] | None = None,
    ) -> None:
        """Make the scheduler's cameras these: new ones start, missing ones are dropped.

        Cameras to keep alive beyond the quota's capacity stay stopped and are listed in
        `over_capacity` (in name order, the first ones are admitted).
        """
        cameras = sorted(cameras, key=lambda c: (c.name, c.device_id))
        wanted = [camera for camera in cameras if keep_alive(camera)]
        admitted = {camera.device_id for camera in wanted[: self.capacity]}
        self.over_capacity = tuple(c.device_id for c in wanted if c.device_id not in admitted)
        if self.over_capacity:
            _LOGGER.warning(
                "%d cameras need more commands than %s per minute allow; not kept alive: %s",
                len(self.over_capacity),
                self.qpm,
                ", ".join(self.over_capacity),
            )
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
                    stream.stop(OVER_CAPACITY if keep_alive(camera) else None)
                continue
            handle = restored.get(camera.device_id)
            if handle is not None and handle.expires_at <= now + self.config.min_lead:
                handle = None
            stream = CameraStream(
                camera,
                client=self._client,
                queue=self.queue,
                clock=self._clock,
                config=self.config,
                lead=self.lead,
                on_change=self._notify,
                on_auth_failed=self._auth_failed,
                restored=handle,
                enabled=enabled,
            )
            if not enabled and keep_alive(camera):
                stream.stop(OVER_CAPACITY)
            self._streams[camera.device_id] = stream
            self._tasks[camera.device_id] = self._spawn(
                stream.run(), f"nest_streams camera {camera.device_id}"
            )
        for device_id in set(self._streams) - seen:
            self._remove(device_id)
        self._notify()

    def _remove(self, device_id: str) -> None:
        """Forget a camera that left the device list; its stream is stopped at Google."""
        self._tasks.pop(device_id).cancel()
        self._streams.pop(device_id).queue_stop()

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

    def stats(self) -> QueueStats:
        """The queue's statistics."""
        return self.queue.stats()

    def stream(self, device_id: str) -> CameraStream:
        """The state machine of a camera (KeyError when unknown)."""
        return self._streams[device_id]

    async def open_viewer(self, device_id: str, offer_sdp: str) -> tuple[str, StreamHandle]:
        """Start a viewer's WebRTC session, ahead of background work; keep it extended.

        Returns a key for `close_viewer` and the session (with the answer SDP). Raises
        `CommandFailed` (or the command's error) when the first generation fails.
        """
        camera = self._streams[device_id].camera
        key = f"{device_id}#viewer-{next(self._viewer_ids)}"
        ready: asyncio.Future[StreamHandle] = asyncio.get_running_loop().create_future()

        def on_change(viewer: CameraStream) -> None:
            if ready.done():
                return
            if viewer.handle is not None:
                ready.set_result(viewer.handle)
            elif viewer.status.state in (StreamState.FAILED, StreamState.DEGRADED):
                ready.set_exception(CommandFailed(viewer.status.last_error or "failed"))

        viewer = CameraStream(
            camera,
            client=self._client,
            queue=self.queue,
            clock=self._clock,
            config=replace(self.config, webrtc_offer=offer_sdp),
            lead=self.lead,
            on_change=on_change,
            on_auth_failed=self._auth_failed,
            urgent_start=True,
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
