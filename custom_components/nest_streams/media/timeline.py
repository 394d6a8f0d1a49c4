"""The feed's own clock: timestamps that continue across the RTSP sessions a feed reads.

Each session starts its clock anew (and the first packet of each stream may come without a
timestamp). The feed joins a session at one of its video key frames: from there the session's
times are shifted so that the key frame follows the previous session's last frame by one
frame's duration. Audio and video of a session are shifted alike, so they stay in sync.
Presentation and decoding times keep their distance (B-frames keep their order).

A session's sound may start on a clock of its own, or jump: FFmpeg times each RTP stream from
its first packet until the stream's first RTCP sender report, then from the report's wall
clock. When the sound's clock jumps (or a session's sound starts) more than `AUDIO_DRIFT`
away from the picture, the sound is put back beside the picture: it plays on, in step,
instead of waiting (silent) until its clock catches up.
"""

from __future__ import annotations

from fractions import Fraction
import logging
from typing import Any

import av

_LOGGER = logging.getLogger(__name__)

VIDEO_CLOCK = Fraction(1, 90_000)
"""The feed's video time base (RTP's video clock)."""
DEFAULT_FRAME = Fraction(1, 15)
"""A frame's duration until two frames were seen."""
AUDIO_DRIFT = Fraction(1)
"""Seconds a session's sound may be off its picture, after its clock jumped, before it is put
back beside the picture."""


class StreamClock:
    """Source times of one stream of one session, in seconds; a missing timestamp is filled in."""

    def __init__(self) -> None:
        """Nothing seen yet."""
        self.last: Fraction | None = None
        """The latest packet's presentation time."""
        self._last_dts: Fraction | None = None

    def times(self, packet: av.Packet[Any]) -> tuple[Fraction, Fraction]:
        """(presentation, decoding) time of `packet` in seconds on its session's clock."""
        base = packet.time_base
        duration = Fraction(packet.duration or 0) * base if base else Fraction(0)
        if packet.pts is not None and base:
            pts = Fraction(packet.pts) * base
        elif self.last is not None:
            pts = self.last + duration  # FFmpeg leaves the first packets unstamped
        else:
            pts = Fraction(0)
        if packet.dts is not None and base:
            dts = Fraction(packet.dts) * base
        elif self._last_dts is not None:
            dts = self._last_dts + duration
        else:
            dts = pts
        self.last, self._last_dts = pts, dts
        return pts, dts


class Timeline:
    """Maps each session's times onto one clock that never goes back."""

    def __init__(self, name: str = "") -> None:
        """Start at zero; `name` (the camera's) is for the log."""
        self._name = name
        self._offset: Fraction | None = None
        """Added to the current session's times; None until it was joined at a key frame."""
        self._video = StreamClock()
        self._audio = StreamClock()
        self._last_video: Fraction | None = None
        self._last_audio: Fraction | None = None
        self._audio_shift = Fraction(0)
        """Added to the session's sound after its clock jumped away from the picture."""
        self._audio_started = False
        """Whether the session's sound was given out (checked against the picture) yet."""
        self._frame = DEFAULT_FRAME
        self._sound_in = 0
        """Sound packets of the session so far."""
        self._sound_held = 0
        """Sound packets not given out since the last one that was."""
        self._last_out: Fraction | None = None
        """Where the session's latest sound packet fell on the feed's clock."""

    @property
    def joined(self) -> bool:
        """Whether the current session was joined (at a key frame)."""
        return self._offset is not None

    def new_session(self) -> None:
        """A new session starts: its times are mapped from its first key frame on."""
        self._offset = None
        self._video = StreamClock()
        self._audio = StreamClock()
        self._audio_shift = Fraction(0)
        self._audio_started = False
        self._sound_in = self._sound_held = 0
        self._last_out = None

    def sound_report(self) -> str:
        """The session's sound on the feed's clock, for the debug log."""

        def at(time: Fraction | None) -> str:
            return "none" if time is None else f"{float(time):.2f} s"

        return (
            f"{self._sound_in} sound packets this session, {self._sound_held} held back; the "
            f"latest at {at(self._last_out)}, the last given out at {at(self._last_audio)}, "
            f"the picture at {at(self._last_video)}"
        )

    def video(self, packet: av.Packet[Any]) -> av.Packet[Any] | None:
        """`packet` stamped on the feed's clock (VIDEO_CLOCK), or None before the session's
        first key frame."""
        pts, dts = self._video.times(packet)
        if self._offset is None:
            if not packet.is_keyframe:
                return None
            start = Fraction(0) if self._last_video is None else self._last_video + self._frame
            self._offset = start - dts
        out_dts = dts + self._offset
        if self._last_video is not None:
            step = out_dts - self._last_video
            if step <= 0:  # going back (a broken source): one frame on
                out_dts = self._last_video + self._frame
            elif step < 1:
                self._frame = step
        self._last_video = out_dts
        out_pts = out_dts + max(Fraction(0), pts - dts)  # B-frames keep their distance
        packet.pts = round(out_pts / VIDEO_CLOCK)
        packet.dts = round(out_dts / VIDEO_CLOCK)
        packet.time_base = VIDEO_CLOCK
        return packet

    def audio(self, packet: av.Packet[Any]) -> av.Packet[Any] | None:
        """`packet` stamped on the feed's clock (in its own time base), or None before the
        session was joined or when it would overlap audio already given out."""
        previous = self._audio.last
        pts, _ = self._audio.times(packet)
        self._sound_in += 1
        self._sound_held += 1
        if self._offset is None or self._last_video is None:
            return None
        out = pts + self._offset + self._audio_shift
        jumped = previous is not None and not 0 <= pts - previous <= AUDIO_DRIFT
        if (jumped or not self._audio_started) and abs(out - self._last_video) > AUDIO_DRIFT:
            _LOGGER.debug(
                "%s: the sound was %.1f s off the picture; it is put back beside it",
                self._name,
                float(out - self._last_video),
            )
            self._audio_shift += self._last_video - out
            out = self._last_video
        self._audio_started = True
        self._last_out = out
        if self._last_audio is not None and out <= self._last_audio:
            return None
        self._sound_held = 0
        self._last_audio = out
        base = packet.time_base or Fraction(1, 90_000)
        packet.pts = packet.dts = round(out / base)
        packet.time_base = base
        return packet
