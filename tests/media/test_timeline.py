"""The feed's clock: one timeline over every session, audio and video alike."""

from __future__ import annotations

from fractions import Fraction

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
