"""A recorder's MPEG-TS of a camera's feed, against the emulator's real rtsps server."""

from __future__ import annotations

import asyncio
import io
import itertools
import time
from typing import Any

import av

from custom_components.nest_streams.media.feed import CameraFeed
from custom_components.nest_streams.media.hub import CameraMedia
from custom_components.nest_streams.media.restream import TsReader
from custom_components.nest_streams.media.timeline import VIDEO_CLOCK
from sdm_emulator import Emulator

from ..emulator.common import Caller
from ..emulator.test_media import LIFETIME, ca_of, media_info
from .common import DELTA, KEY, SPS_PPS, packet
from .test_real_streams import extend, generate, rotate  # noqa: F401  (a fixture)


async def read(reader: TsReader, into: bytearray) -> None:
    """Take the reader's chunks as an HTTP response would."""
    async for chunk in reader.chunks():
        into += chunk


def demux(data: bytes) -> dict[str, Any]:
    """What a recorder's ffmpeg finds in `data`: codecs, video times, decodable frames."""
    with av.open(io.BytesIO(data), "r", format="mpegts") as container:
        video = container.streams.video[0]
        codecs = [stream.codec_context.name for stream in container.streams]
        times: list[float] = []
        audio = frames = 0
        keys: list[bool] = []
        for packet in container.demux():
            if packet.dts is None:
                continue
            if packet.stream is video:
                assert packet.time_base is not None
                times.append(float(packet.dts * packet.time_base))
                keys.append(packet.is_keyframe)
                frames += len(video.codec_context.decode(packet))
            else:
                audio += 1
    return {"codecs": codecs, "times": times, "keys": keys, "frames": frames, "audio": audio}


async def test_a_reader_records_across_rotated_tokens_without_a_jump(
    rotate: tuple[Emulator, Caller],  # noqa: F811
) -> None:
    """Through two token switches (each old session ends with its token) the reader's
    MPEG-TS starts at a key frame, every frame decodes, its clock rises with no gap over a
    second, AAC comes along, and Google sees one client per URL."""
    emulator, caller = rotate
    url, extension = await generate(caller)
    media = CameraMedia("cam", ca_file=str(ca_of(emulator)))
    media.feed.set_url(url)
    assert await media.feed.key_frame(5) is not None
    data = bytearray()
    reader = TsReader(media.feed)
    task = asyncio.create_task(read(reader, data))
    start = time.monotonic()
    for at in (LIFETIME / 2, LIFETIME):
        await asyncio.sleep(start + at - time.monotonic())
        url, extension = await extend(caller, url, extension)
        media.feed.set_url(url)
    await asyncio.sleep(start + 1.9 * LIFETIME - time.monotonic())
    reader.close()
    await task
    await media.close("done")
    found = demux(bytes(data))
    assert found["codecs"] == ["h264", "aac"]
    assert found["keys"][0], "a recorder starts at a key frame"
    assert found["frames"] == len(found["times"]), "every frame decodes"
    times = found["times"]
    assert times[-1] - times[0] > 1.7 * LIFETIME, "recorded past both expiries"
    steps = [b - a for a, b in itertools.pairwise(times)]
    assert min(steps) > 0, "the clock never goes back"
    assert max(steps) < 1.0
    assert media.feed.switches == 2
    assert found["audio"] > 1.5 * LIFETIME * 10
    assert media_info(emulator)["sessions"]["clients_per_url_max"] == 1
    assert media.feed.consumers == 0


async def collect(reader: TsReader) -> bytes:
    """Everything the reader still gives (it has ended)."""
    data = bytearray()
    async for chunk in reader.chunks():
        data += chunk
    return bytes(data)


async def test_a_reader_starts_at_a_key_frame_and_ends_with_the_feed() -> None:
    """Video before the first key frame is not muxed; the feed's end ends the reader, which
    still hands over what it muxed."""
    feed = CameraFeed("cam", ca_file=None)
    reader = TsReader(feed)
    assert feed.consumers == 1
    reader.on_video(packet(DELTA, 0))
    reader.on_audio(packet(b"\x21\x00", 0))
    assert reader.packets == 0
    reader.on_video(packet(SPS_PPS + KEY, 6000, True, base=VIDEO_CLOCK))
    reader.on_video(packet(DELTA, 12000, base=VIDEO_CLOCK))
    assert reader.packets == 2
    feed.close("the camera left the project")
    assert reader.ended == "the camera left the project"
    assert (await collect(reader))[0] == 0x47
    assert feed.consumers == 0


async def test_a_reader_that_does_not_keep_up_is_ended_and_its_backlog_dropped() -> None:
    """Past `max_buffered` unread bytes the reader ends and what it held is not sent late."""
    feed = CameraFeed("cam", ca_file=None)
    reader = TsReader(feed, max_buffered=4000)
    reader.on_video(packet(SPS_PPS + KEY + bytes(1000), 0, True, base=VIDEO_CLOCK))
    for index in range(1, 10):
        reader.on_video(packet(DELTA + bytes(1000), index * 6000, base=VIDEO_CLOCK))
    assert reader.ended == "the reader did not keep up"
    assert reader.packets < 9
    assert await collect(reader) == b""
    assert feed.consumers == 0
    feed.close("done")
