"""The feed's clock: one timeline over every session, audio and video alike."""

from __future__ import annotations

from fractions import Fraction
import logging

import pytest

from custom_components.nest_streams.media.timeline import VIDEO_CLOCK, Timeline

from .common import DELTA, KEY, packet

MS = Fraction(1, 1000)


def ticks(milliseconds: float) -> int:
    """Milliseconds on the video clock."""
    return round(Fraction(milliseconds) * MS / VIDEO_CLOCK)


def test_sessions_are_joined_at_key_frames_one_frame_apart() -> None:
    """Before its first key frame a session gives nothing; each session starts one frame after
    the previous one's last frame; an unstamped first packet is the session's zero; a source
    that goes back moves one frame on."""
    line = Timeline()
    line.new_session()
    assert not line.joined
    first = line.video(packet(KEY, None, key=True, duration=100))
    assert first is not None
    assert line.joined
    assert (first.pts, first.dts, first.time_base) == (0, 0, VIDEO_CLOCK)
    stamps = [line.video(packet(DELTA, at)) for at in (100, 200)]
    assert [p.pts for p in stamps if p] == [ticks(100), ticks(200)]
    line.new_session()
    assert line.video(packet(DELTA, 5_000)) is None  # the new session waits for a key frame
    joined = line.video(packet(KEY, 5_100, key=True))
    assert joined is not None
    assert joined.pts == ticks(300), "one frame (100 ms) after the last one"
    back = line.video(packet(DELTA, 5_000))
    assert back is not None
    assert back.pts == ticks(400), "a source going back: one frame on"
    on = line.video(packet(DELTA, 5_300))
    assert on is not None
    assert on.pts == ticks(500)


def test_b_frames_keep_their_distance() -> None:
    """Presentation times ahead of decoding times stay ahead by as much (decode order kept)."""
    line = Timeline()
    line.new_session()
    out = [
        line.video(packet(data, pts, key, dts=dts))
        for data, pts, dts, key in (
            (KEY, 200, 0, True),
            (DELTA, 500, 100, False),
            (DELTA, 300, 200, False),
            (DELTA, 400, 300, False),
        )
    ]
    assert [(p.pts, p.dts) for p in out if p] == [
        (ticks(200), 0),
        (ticks(500), ticks(100)),
        (ticks(300), ticks(200)),
        (ticks(400), ticks(300)),
    ]


def test_audio_follows_the_video_of_its_session() -> None:
    """Audio before the join is dropped; afterwards it is shifted as the video is; a later
    session's audio that overlaps what was given out is dropped."""
    line = Timeline()
    audio_clock = Fraction(1, 16_000)
    line.new_session()
    assert line.audio(packet(b"a", 0, base=audio_clock)) is None
    line.video(packet(KEY, 1_000, key=True))  # this session's 1 s is the feed's 0
    sound = line.audio(packet(b"a", 16_000 + 4_800, base=audio_clock))  # 1.3 s: the feed's 0.3
    assert sound is not None
    assert (sound.pts, sound.time_base) == (4_800, audio_clock)
    line.video(packet(DELTA, 1_100))
    line.new_session()
    line.video(packet(KEY, 0, key=True))  # the feed's 0.2 s
    assert line.audio(packet(b"a", 0, base=audio_clock)) is None, "before what was given out"
    later = line.audio(packet(b"a", 3_200, base=audio_clock))  # its 0.2 s: the feed's 0.4
    assert later is not None
    assert later.pts == 6_400


def _played(line: Timeline, seconds: int, *, audio_from: int, video_from: int) -> list[int]:
    """`seconds` of a session at 10 frames and 16 sound packets (64 ms) a second; the sound's
    source clock starts at `audio_from` ms, the picture's at `video_from` ms. Each sound packet
    given out, as its distance (ms) from the picture given out just before it."""
    audio_clock = Fraction(1, 16_000)
    distances: list[int] = []
    last_video = 0
    for tick in range(seconds * 1000 // 4):  # every 4 ms
        at = tick * 4
        if at % 100 == 0:
            frame = line.video(packet(KEY if at % 1000 == 0 else DELTA, video_from + at, at == 0))
            if frame is not None and frame.pts is not None:
                last_video = frame.pts
        sound = None
        if at % 64 == 0:
            sound = line.audio(packet(b"a", (audio_from + at) * 16, base=audio_clock))
        if sound is not None and sound.pts is not None:
            distances.append(round((sound.pts * audio_clock - last_video * VIDEO_CLOCK) * 1000))
    return distances


def test_sound_off_its_picture_is_put_back_beside_it(caplog: pytest.LogCaptureFixture) -> None:
    """A session whose sound starts on a clock of its own, or whose sound clock jumps (back or
    ahead: FFmpeg's switch to the RTCP reports' clock), plays on beside its picture: not
    silent until its clock catches up, not seconds ahead."""
    caplog.set_level(logging.DEBUG)
    line = Timeline("Garden")
    line.new_session()
    assert len(_played(line, 3, audio_from=0, video_from=0)) == 47  # from the join at 0
    line.new_session()
    behind = _played(line, 3, audio_from=0, video_from=20_000)  # its sound 20 s behind
    assert len(behind) == 47
    assert all(0 <= ms < 100 for ms in behind), behind
    line.new_session()
    ahead = _played(line, 3, audio_from=16_000, video_from=0)
    assert len(ahead) == 47
    assert all(0 <= ms < 100 for ms in ahead), ahead
    assert "Garden: the sound was -20.0 s off the picture" in caplog.text
    assert "Garden: the sound was 16.0 s off the picture" in caplog.text


def test_sound_whose_clock_jumps_mid_session_plays_on() -> None:
    """The sound's clock jumping back 10 s after two seconds: every packet is still given out,
    beside the picture; one packet jumping ahead costs at most the packet after it."""
    line = Timeline()
    line.new_session()
    audio_clock = Fraction(1, 16_000)
    given: list[tuple[int, int]] = []  # (source ms, distance from the picture in ms)
    for tick in range(4000 // 4):
        at = tick * 4
        if at % 100 == 0:
            line.video(packet(KEY if at % 1000 == 0 else DELTA, at, at % 1000 == 0))
        if at % 64 == 0:
            source = at - (10_000 if at >= 2_000 else 0) + (30_000 if at == 3_008 else 0)
            sound = line.audio(packet(b"a", source * 16, base=audio_clock))
            if sound is not None and sound.pts is not None:
                given.append((at, round(sound.pts * audio_clock * 1000) - at // 100 * 100))
    sent = [at for at, _ in given]
    assert len(sent) >= 61, "one packet of 63 may be lost to the outlier, one to its return"
    assert all(at in sent for at in range(0, 3_008, 64))
    assert all(-100 < ms < 100 for _, ms in given), given


def test_sound_plays_on_while_the_picture_stalls() -> None:
    """A picture that stalls for 2 s (its sound's clock steady) does not hold the sound back."""
    line = Timeline()
    line.new_session()
    audio_clock = Fraction(1, 16_000)
    given = 0
    for tick in range(4000 // 4):
        at = tick * 4
        if at % 100 == 0 and not 1_000 <= at < 3_000:
            line.video(packet(KEY if at % 1000 == 0 else DELTA, at, at % 1000 == 0))
        if at % 64 == 0:
            given += line.audio(packet(b"a", at * 16, base=audio_clock)) is not None
    assert given == 63
