"""Metrics owned by the emulator: what Google would have seen on its side of the wire."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
import math
import statistics
from typing import Any

WINDOW = 60.0


@dataclass(slots=True)
class StreamRecord:
    """One stream as Google holds it."""

    stream_id: str
    device_id: str
    protocol: str
    started: float
    expires_at: float
    extension_token: str = ""
    stream_token: str = ""
    session_id: str = ""
    stopped_at: float | None = None
    extensions: int = 0
    extended_at: list[float] = field(default_factory=list)
    """When each extension was accepted."""
    unreadable: bool = False
    """The answer that gave its current token was unreadable (a malformed body): its client
    cannot know the token, so cannot extend or stop it."""

    def end(self) -> float:
        """When the stream stopped being valid (or will)."""
        return min(self.expires_at, math.inf if self.stopped_at is None else self.stopped_at)


@dataclass(slots=True)
class Metrics:
    """Call counters and the stream timeline."""

    calls: Counter[str] = field(default_factory=Counter)
    per_minute: defaultdict[int, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    quota_rejections: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    accepted_commands: list[float] = field(default_factory=list)
    """Times of executeCommand calls that passed the quota."""
    refused_commands: list[float] = field(default_factory=list)
    """Times of executeCommand calls refused with 429 (project or device limit)."""

    def count(self, endpoint: str, elapsed: float) -> None:
        """Count one call of `endpoint` at `elapsed` seconds."""
        self.calls[endpoint] += 1
        self.per_minute[int(elapsed // WINDOW)][endpoint] += 1

    def peak_commands(self) -> int:
        """Most accepted commands in any sliding 60 s window (t - 60, t]."""
        times = sorted(self.accepted_commands)
        peak = start = 0
        for end, moment in enumerate(times):
            while times[start] <= moment - WINDOW:
                start += 1
            peak = max(peak, end - start + 1)
        return peak

    @staticmethod
    def covered(
        records: Iterable[StreamRecord], until: float, since: float = -math.inf
    ) -> tuple[float, float, float]:
        """(first start, seconds covered by a valid stream, seconds observed) up to `until`.

        Only the time from `since` on counts.
        """
        intervals = sorted(
            (max(record.started, since), min(record.end(), until))
            for record in records
            if record.started < until and record.end() > since
        )
        if not intervals:
            return until, 0.0, 0.0
        first = intervals[0][0]
        covered = 0.0
        current_start, current_end = intervals[0]
        for start, end in intervals[1:]:
            if start > current_end:
                covered += max(0.0, current_end - current_start)
                current_start, current_end = start, end
            else:
                current_end = max(current_end, end)
        covered += max(0.0, current_end - current_start)
        return first, covered, until - first

    def availability(
        self,
        records: Iterable[StreamRecord],
        until: float,
        *,
        since: float | None = None,
        devices: Iterable[str] = (),
    ) -> dict[str, Any]:
        """Per camera and overall availability, 0..1.

        By default each camera counts from its first stream. With `since`, every camera counts
        from then, and each of `devices` without any stream counts as 0.
        """
        by_device: defaultdict[str, list[StreamRecord]] = defaultdict(list)
        for device_id in devices:
            by_device[device_id] = []
        for record in records:
            by_device[record.device_id].append(record)
        per_camera: dict[str, float] = {}
        total_covered = total_observed = 0.0
        for device_id, device_records in sorted(by_device.items()):
            if since is None:
                _, covered, observed = self.covered(device_records, until)
            else:
                _, covered, _ = self.covered(device_records, until, since)
                observed = until - since
            if observed > 0:
                per_camera[device_id] = covered / observed
                total_covered += covered
                total_observed += observed
        return {
            "overall": total_covered / total_observed if total_observed else None,
            "min": min(per_camera.values()) if per_camera else None,
            "per_camera": per_camera,
        }


def double_streams(
    records: Iterable[StreamRecord], until: float, since: float = -math.inf
) -> dict[str, Any]:
    """RTSP streams a camera held at Google beside a newer one (from `since` to `until`).

    An orphan is a stream its client left to expire once a newer stream of its camera had
    started: not stopped, and not extended since (its client lost track of it, or could not
    stop it). An older stream the client kept and extended (the newer one a spare) is not one.
    `unreadable_orphans` are those whose current token reached the client in an unreadable
    answer only (no client could stop them). `double_seconds` is the time cameras held two
    streams or more at once.
    """
    by_device: defaultdict[str, list[StreamRecord]] = defaultdict(list)
    for record in records:
        if record.protocol == "RTSP" and record.started < until:
            by_device[record.device_id].append(record)
    orphans = live = unreadable = 0
    overlaps: list[float] = []  # how long each orphan a client could have stopped outlived
    # the other stream's start
    double: dict[str, float] = {}
    for device_id, streams in by_device.items():
        for record in streams:
            if record.stopped_at is not None or record.end() <= since:
                continue
            newer = [
                other.started
                for other in streams
                if record.started < other.started < record.end()
                or (other.started == record.started and other is not record)
            ]
            if not newer:
                continue
            beside = min(newer)  # from when a newer stream could take its place
            if any(at >= beside for at in record.extended_at):
                continue  # kept: its client extended it, the newer one was the spare
            orphans += 1
            live += record.end() > until
            unreadable += record.unreadable
            if not record.unreadable:
                overlaps.append(min(record.end(), until) - beside)
        edges = sorted(
            [(max(r.started, since), 1) for r in streams if r.end() > since]
            + [(min(r.end(), until), -1) for r in streams if r.end() > since]
        )
        alive, last, total = 0, since, 0.0
        for moment, step in edges:
            if alive >= 2:
                total += max(0.0, moment - last)
            alive += step
            last = moment
        double[device_id] = total
    return {
        "orphans": orphans,
        "live_orphans": live,
        "unreadable_orphans": unreadable,
        "other_orphan_overlap_s_median": round(statistics.median(overlaps), 1) if overlaps else 0.0,
        "other_orphan_overlap_s_max": round(max(overlaps), 1) if overlaps else 0.0,
        "double_seconds": round(sum(double.values()), 1),
        "double_seconds_max_camera": round(max(double.values(), default=0.0), 1),
    }
