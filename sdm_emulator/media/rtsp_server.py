"""The emulator's RTSP server: Debian's GStreamer RTSP server, run by the system `python3`.

Started by `sdm_emulator.media.rtsp.RtspMedia` as a child process (it needs PyGObject and
GStreamer's typelibs, which the system Python has and our venv's Python does not). It serves
`rtsp://127.0.0.1:<port>/sdm_live_stream/<stream id>?auth=<stream token>`: moving H.264 test video
with the camera's name and a running clock burned in.

The emulator drives it with JSON lines on stdin:
- `{"op": "token", "stream": S, "device": D, "name": N, "token": T, "token_expires": E1,
  "stream_expires": E2}`: stream S of device D (named N) now has token T; T opens sessions
  until the stream ends; in `rotate` mode a session opened with T ends at E1 (T's own expiry),
  in `keep` mode when the stream ends (E2, moved by extensions). Times are Unix epoch seconds.
- `{"op": "stop", "stream": S}`: the stream was stopped: its sessions end now.

Only the newest token of a live stream may open a session; any other DESCRIBE is refused
(401). It prints `READY <port>` once it listens, and ends when stdin closes.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import threading
import time
from urllib.parse import parse_qs

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402

MOUNT = "/sdm_live_stream/"
PIPELINE = (
    "( videotestsrc is-live=true pattern=smpte horizontal-speed=4 "
    "! video/x-raw,width=640,height=360,framerate={fps}/1 "
    '! textoverlay text="{name}" valignment=top halignment=left font-desc="Sans 22" '
    '! clockoverlay time-format="%H:%M:%S" valignment=bottom halignment=right '
    'font-desc="Sans Mono 22" '
    "! x264enc tune=zerolatency speed-preset=ultrafast key-int-max={fps} bitrate=600 "
    "! video/x-h264,profile=baseline ! rtph264pay name=pay0 pt=96 config-interval=1 )"
)


class Streams:
    """Tokens and expiries of the live streams, as the emulator reports them."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.current: dict[str, str] = {}  # stream id -> newest token
        self.tokens: dict[str, tuple[str, float]] = {}  # token -> (stream id, token expiry)
        self.expires: dict[str, float] = {}  # stream id -> stream expiry
        self.names: dict[str, str] = {}  # stream id -> camera name

    def apply(self, message: dict[str, object]) -> str | None:
        """Apply one message; the stream id whose mount must be added, if new."""
        stream = str(message["stream"])
        with self.lock:
            if message["op"] == "stop":
                self.expires[stream] = 0.0
                return None
            token = str(message["token"])
            new = stream not in self.names
            self.current[stream] = token
            self.tokens[token] = (stream, float(message["token_expires"]))  # type: ignore[arg-type]
            self.expires[stream] = float(message["stream_expires"])  # type: ignore[arg-type]
            self.names[stream] = str(message["name"])
            return stream if new else None

    def admit(self, stream: str, token: str) -> bool:
        """Whether `token` may open a session on `stream` now."""
        with self.lock:
            return (
                self.current.get(stream) == token
                and self.expires.get(stream, 0.0) > time.time()
                and self.tokens[token][1] > time.time()
            )

    def deadline(self, token: str, mode: str) -> float:
        """When a session opened with `token` ends."""
        with self.lock:
            stream, token_expires = self.tokens.get(token, ("", 0.0))
            stream_expires = self.expires.get(stream, 0.0)
            return min(stream_expires, token_expires) if mode == "rotate" else stream_expires


def _stream_and_token(context: GstRtspServer.RTSPContext) -> tuple[str, str]:
    url = context.uri
    path = url.abspath or ""
    stream = path[len(MOUNT) :] if path.startswith(MOUNT) else ""
    token = parse_qs(url.query or "").get("auth", [""])[0]
    return stream, token


def main() -> None:
    """Serve until stdin closes."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--mode", choices=("keep", "rotate"), default="keep")
    parser.add_argument("--fps", type=int, default=10)
    args = parser.parse_args()
    Gst.init(None)
    streams = Streams()
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    mounts = server.get_mount_points()
    sessions: dict[GstRtspServer.RTSPClient, str] = {}  # client -> token it opened with

    def add_mount(stream: str) -> bool:
        factory = GstRtspServer.RTSPMediaFactory()
        name = re.sub(r"[^A-Za-z0-9 _.-]", "", streams.names[stream])[:40]
        factory.set_launch(PIPELINE.format(name=name, fps=args.fps))
        factory.set_shared(True)
        mounts.add_factory(MOUNT + stream, factory)
        return False

    def check(client: GstRtspServer.RTSPClient, context: GstRtspServer.RTSPContext) -> int:
        stream, token = _stream_and_token(context)
        if not streams.admit(stream, token):
            print(f"refused stream {stream[:8]}: token not valid", file=sys.stderr, flush=True)
            return int(GstRtsp.RTSPStatusCode.UNAUTHORIZED)
        sessions[client] = token
        return int(GstRtsp.RTSPStatusCode.OK)

    def on_client(_server: GstRtspServer.RTSPServer, client: GstRtspServer.RTSPClient) -> None:
        client.connect("pre-describe-request", check)
        # SETUP names a track's control URL: the client must have been admitted at DESCRIBE.
        client.connect(
            "pre-setup-request",
            lambda c, ctx: int(GstRtsp.RTSPStatusCode.OK) if c in sessions else check(c, ctx),
        )
        client.connect("closed", lambda c: sessions.pop(c, None))

    server.connect("client-connected", on_client)

    def end_expired() -> bool:
        now = time.time()
        for client, token in list(sessions.items()):
            if streams.deadline(token, args.mode) <= now:
                sessions.pop(client, None)
                client.close()
        return True

    server.attach(None)
    GLib.timeout_add(200, end_expired)
    loop = GLib.MainLoop()

    def read_stdin() -> None:
        for line in sys.stdin:
            if not line.strip():
                continue
            stream = streams.apply(json.loads(line))
            if stream is not None:
                GLib.idle_add(add_mount, stream)
        GLib.idle_add(loop.quit)

    threading.Thread(target=read_stdin, daemon=True).start()
    print(f"READY {server.get_bound_port()}", flush=True)
    loop.run()


if __name__ == "__main__":
    main()
