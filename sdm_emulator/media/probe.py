"""Read an RTSP URL with PyAV (FFmpeg) and print what a viewer would have received.

`python -m sdm_emulator.media.probe URL --seconds 10 [--ca-file CA]` prints one JSON line at the
end: `{"frames": [t, ...], "key_frames": [t, ...], "key_pts": [s, ...], "audio_packets": n,
"codecs": {...}, "ended": "eof" | "error: ..." | "timeout", "first_frame_s": ...}`: arrivals in
seconds since the start, `key_pts` the key frames' own presentation times.
`--ca-file` is the CA bundle an `rtsps://` server's certificate is verified with (FFmpeg verifies
TLS peers and finds no system CAs on its own). Tests and benchmarks run it as a child process.
"""

from __future__ import annotations

import argparse
import json
import time

import av


def probe(url: str, seconds: float, ca_file: str | None = None) -> dict[str, object]:
    """Decode the video of `url` for up to `seconds`; when each frame and key frame arrived."""
    start = time.monotonic()
    frames: list[float] = []
    key_frames: list[float] = []
    key_pts: list[float] = []
    audio_packets = 0
    codecs: dict[str, object] = {}
    ended = "timeout"
    options = {"rtsp_transport": "tcp"}
    if ca_file:
        options["ca_file"] = ca_file
    try:
        with av.open(url, options=options, timeout=5) as container:
            video = container.streams.video[0]
            codecs["video"] = [video.codec_context.name, video.codec_context.profile]
            codecs["size"] = [video.codec_context.width, video.codec_context.height]
            if container.streams.audio:
                audio = container.streams.audio[0].codec_context
                codecs["audio"] = [audio.name, audio.sample_rate]
            for packet in container.demux():
                now = round(time.monotonic() - start, 3)
                if packet.stream.type == "audio":
                    audio_packets += packet.size > 0
                elif packet.size:
                    if packet.is_keyframe:
                        key_frames.append(now)
                        if packet.pts is not None:
                            key_pts.append(round(float(packet.pts * packet.time_base), 3))
                    frames.extend(now for _ in packet.decode())
                if now >= seconds:
                    break
            else:
                ended = "eof"
    except av.FFmpegError as err:
        ended = f"error: {err}"
    return {
        "frames": frames,
        "key_frames": key_frames,
        "key_pts": key_pts,
        "audio_packets": audio_packets,
        "codecs": codecs,
        "ended": ended,
        "first_frame_s": frames[0] if frames else None,
    }


def main() -> None:
    """Command line."""
    parser = argparse.ArgumentParser(prog="python -m sdm_emulator.media.probe")
    parser.add_argument("url")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--ca-file")
    args = parser.parse_args()
    print(json.dumps(probe(args.url, args.seconds, args.ca_file)), flush=True)


if __name__ == "__main__":
    main()
