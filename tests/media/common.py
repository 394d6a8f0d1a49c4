"""Helpers of the media tests: packets made by hand, a consumer that keeps what it gets."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import av

KEY = b"\x00\x00\x00\x01\x65\x88"  # an IDR slice, no parameter sets
DELTA = b"\x00\x00\x00\x01\x41\x9a"
SPS_PPS = b"\x00\x00\x00\x01\x67\x42\x00\x00\x00\x01\x68\xce"


def packet(
    data: bytes,
    pts: int | None,
    key: bool = False,
    *,
    dts: int | None = None,
    base: Fraction = Fraction(1, 1000),
    duration: int = 0,
) -> av.Packet[Any]:
    """A demuxed packet (by default on a 1/1000 clock, dts = pts)."""
    made: av.Packet[Any] = av.Packet(data)
    made.pts = pts
    made.dts = pts if dts is None else dts
    made.time_base = base
    made.is_keyframe = key
    made.duration = duration
    return made


class Recorder:
    """A feed consumer that keeps every packet (pts and key flag) and the end."""

    def __init__(self) -> None:
        self.video: list[av.Packet[Any]] = []
        self.audio: list[av.Packet[Any]] = []
        self.ended: list[str] = []

    def on_video(self, packet: av.Packet[Any]) -> None:
        self.video.append(packet)

    def on_audio(self, packet: av.Packet[Any]) -> None:
        self.audio.append(packet)

    def on_end(self, reason: str) -> None:
        self.ended.append(reason)
