"""The emulator's RTSP server: Debian's GStreamer RTSP server, run by the system `python3`.

Started by `sdm_emulator.media.rtsp.RtspServer` as a child process (it needs PyGObject and
GStreamer's typelibs, which the system Python has and our venv's Python does not). It serves
`rtsps://127.0.0.1:<port>/sdm_live_stream/<stream id>?auth=<stream token>` (TLS with `--cert`,
plain `rtsp://` without) shaped like a Nest camera's stream: H.264 High profile at `--size` and
`--fps`, a key frame every `--gop` seconds (no scene-cut key frames), `--bframes` B-frames, and
AAC audio (16 kHz mono ticks, one a second, so that a gap is audible). The camera's name and a
clock are burned into the picture.

One camera per stream: its encoder runs while the stream has sessions, and every session
(whatever its token) is fed the camera's encoded picture and sound as they come. A session
opened with a rotated token joins the picture where it is and waits for the next key frame, as
a client of a real camera's running stream does (GUESS: Google's server does not ask the camera
for a key frame when a client joins). The camera's parameter sets go first, so a session's
SDP is ready at once.

The emulator drives it with JSON lines on stdin:
- `{"op": "token", "stream": S, "device": D, "name": N, "token": T, "token_expires": E1,
  "stream_expires": E2}`: stream S of device D (named N) now has token T; T opens sessions
  until the stream ends; in `rotate` mode a session opened with T ends at E1 (T's own expiry),
  in `keep` mode when the stream ends (E2, moved by extensions). Times are Unix epoch seconds.
- `{"op": "stop", "stream": S}`: the stream was stopped: its sessions end now.

Only the newest token of a live stream may open a session; any other DESCRIBE is refused
(401). Google allows one client per stream URL: a second session on a token that has one open
is refused (403; GUESS: Google's answer is unpublished). It prints `READY <port>` once it
listens, then one JSON line per session opened or refused (`{"event": "session", "stream": S,
"clients": n, "refused": bool, "reason": ...}`, `clients` counting the newcomer), one per
session's media when it ends (`{"event": "media", "video": n, "audio": n}`: the buffers its
sources took, audio -1 without sound), and ends when stdin closes.
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

gi.require_version("Gio", "2.0")
gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import Gio, GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402

MOUNT = "/sdm_live_stream/"
ROLE = "viewer"
CAMERA_VIDEO = (
    "videotestsrc is-live=true pattern=smpte horizontal-speed=4 "
    "! video/x-raw,width={width},height={height},framerate={fps}/1 "
    '! textoverlay text="{name}" valignment=top halignment=left font-desc="Sans {font}" '
    "shaded-background=true shading-value=255 "
    '! clockoverlay time-format="%H:%M:%S" valignment=top halignment=right '
    'font-desc="Sans Mono {font}" shaded-background=true shading-value=255 '
    "! x264enc speed-preset=superfast rc-lookahead=0 sync-lookahead=0 bitrate={bitrate} "
    "key-int-max={gop_frames} bframes={bframes} "
    'option-string="scenecut=0:min-keyint={gop_frames}:repeat-headers=1" '
    "! video/x-h264,profile=high,stream-format=byte-stream,alignment=au "
    "! appsink name=video emit-signals=true sync=false max-buffers=60 drop=true"
)
CAMERA_AUDIO = (
    "audiotestsrc is-live=true wave=ticks volume=0.5 ! audio/x-raw,rate=16000,channels=1 "
    "! voaacenc bitrate=32000 ! audio/mpeg,stream-format=raw "
    "! appsink name=audio emit-signals=true sync=false max-buffers=60 drop=true"
)
SESSION_VIDEO = (
    "appsrc name=video is-live=true format=time do-timestamp=true caps={caps} "
    "! h264parse ! rtph264pay name=pay0 pt=96 config-interval=1"
)
SESSION_AUDIO = (
    "appsrc name=audio is-live=true format=time do-timestamp=true ! rtpmp4gpay name=pay1 pt=97"
)
LINGER = 2.0
"""Seconds a camera keeps encoding after its stream's last session (a token switch opens the
next session while the old one plays)."""
_NAL_SPS, _NAL_PPS, _NAL_IDR = 7, 8, 5


def _nal_units(data: bytes) -> list[bytes]:
    """The NAL units of an Annex B access unit, start codes included."""
    starts = []
    index = data.find(b"\x00\x00\x01")
    while index != -1:
        start = index - 1 if index > 0 and data[index - 1] == 0 else index
        starts.append(start)
        index = data.find(b"\x00\x00\x01", index + 3)
    return [data[a:b] for a, b in zip(starts, [*starts[1:], len(data)], strict=True)]


def _nal_type(unit: bytes) -> int:
    offset = 4 if unit.startswith(b"\x00\x00\x00\x01") else 3
    return unit[offset] & 0x1F if len(unit) > offset else -1


class Camera:
    """One stream's camera: encodes while the stream has sessions, feeds every session."""

    def __init__(self, launch: str) -> None:
        self._launch = launch
        self._lock = threading.Lock()
        self._sessions: list[tuple[Gst.Element, Gst.Element | None]] = []
        self._pushed: dict[Gst.Element, list[int]] = {}
        """Per session (its video source): video and audio buffers its sources took."""
        self._pipeline: Gst.Element | None = None
        self._stop: int | None = None
        self.parameter_sets = b""
        """The newest SPS and PPS (a session's first buffer: its SDP is ready at once)."""

    def add(self, video: Gst.Element, audio: Gst.Element | None) -> None:
        """A session's sources (main loop)."""
        if self._stop is not None:
            GLib.source_remove(self._stop)
            self._stop = None
        if self._pipeline is None:
            self._pipeline = Gst.parse_launch(self._launch)
            self._pipeline.get_by_name("video").connect("new-sample", self._sample, True)
            if (sink := self._pipeline.get_by_name("audio")) is not None:
                sink.connect("new-sample", self._sample, False)
            self._pipeline.set_state(Gst.State.PLAYING)
        with self._lock:
            if self.parameter_sets:
                video.emit("push-buffer", Gst.Buffer.new_wrapped(self.parameter_sets))
            self._sessions.append((video, audio))
            self._pushed[video] = [0, 0 if audio is not None else -1]

    def remove(self, video: Gst.Element) -> None:
        """A session ended (main loop); the camera stops a little after the last one. Says
        how many video and audio buffers the session's sources took (-1: no audio)."""
        with self._lock:
            self._sessions = [entry for entry in self._sessions if entry[0] is not video]
            idle = not self._sessions
            pushed = self._pushed.pop(video, None)
        if pushed is not None:
            _event("media", video=pushed[0], audio=pushed[1])
        if idle and self._pipeline is not None and self._stop is None:
            self._stop = GLib.timeout_add(int(LINGER * 1000), self._stop_if_idle)

    def _stop_if_idle(self) -> bool:
        self._stop = None
        with self._lock:
            idle = not self._sessions
        if idle and self._pipeline is not None:
            self._pipeline.set_state(Gst.State.NULL)
            self._pipeline = None
        return False

    def _sample(self, sink: Gst.Element, is_video: bool) -> Gst.FlowReturn:
        sample = sink.emit("pull-sample")
        buffer = sample.get_buffer()
        if is_video:
            ok, info = buffer.map(Gst.MapFlags.READ)
            if ok:
                data = bytes(info.data)
                buffer.unmap(info)
                units = [u for u in _nal_units(data) if _nal_type(u) in (_NAL_SPS, _NAL_PPS)]
                if units:
                    self.parameter_sets = b"".join(units)
        with self._lock:
            targets = [(video, video if is_video else audio) for video, audio in self._sessions]
        for session, target in targets:
            if target is not None:
                if target.get_property("caps") is None:
                    target.set_property("caps", sample.get_caps())
                copy = buffer.copy()
                copy.pts = copy.dts = Gst.CLOCK_TIME_NONE  # appsrc stamps it on arrival
                if target.emit("push-buffer", copy) == Gst.FlowReturn.OK:
                    with self._lock:
                        if (counts := self._pushed.get(session)) is not None:
                            counts[0 if is_video else 1] += 1
        return Gst.FlowReturn.OK


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


class SessionFactory(GstRtspServer.RTSPMediaFactory):  # type: ignore[misc]
    """A session's pipeline: the stream's camera's packets, from where the camera is."""

    def __init__(self, camera: Camera) -> None:
        super().__init__()
        self.camera = camera

    def do_configure(self, media: GstRtspServer.RTSPMedia) -> None:
        GstRtspServer.RTSPMediaFactory.do_configure(self, media)
        bin_ = media.get_element()
        video = bin_.get_by_name("video")
        self.camera.add(video, bin_.get_by_name("audio"))
        media.connect("unprepared", lambda _media: self.camera.remove(video))


def _stream_and_token(context: GstRtspServer.RTSPContext) -> tuple[str, str]:
    url = context.uri
    path = url.abspath or ""
    stream = path[len(MOUNT) :] if path.startswith(MOUNT) else ""
    token = parse_qs(url.query or "").get("auth", [""])[0]
    return stream, token


def _event(kind: str = "session", **fields: object) -> None:
    print(json.dumps({"event": kind, **fields}), flush=True)


def main() -> None:
    """Serve until stdin closes."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--mode", choices=("keep", "rotate"), default="keep")
    parser.add_argument("--cert", help="PEM certificate and key: serve rtsps (TLS)")
    parser.add_argument("--size", default="1280x720", help="picture size, WxH")
    parser.add_argument("--fps", type=int, default=15)
    parser.add_argument("--gop", type=float, default=4.0, help="seconds between key frames")
    parser.add_argument("--bframes", type=int, default=0)
    parser.add_argument("--no-audio", action="store_true")
    args = parser.parse_args()
    width, height = (int(part) for part in args.size.lower().split("x"))
    Gst.init(None)
    streams = Streams()
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    auth = GstRtspServer.RTSPAuth()
    token = GstRtspServer.RTSPToken()
    token.set_string("media.factory.role", ROLE)
    auth.set_default_token(token)  # every client may use the mounts: the check is ours
    if args.cert:
        auth.set_tls_certificate(Gio.TlsCertificate.new_from_file(args.cert))
    server.set_auth(auth)
    mounts = server.get_mount_points()
    sessions: dict[GstRtspServer.RTSPClient, tuple[str, str]] = {}  # client -> stream, token
    permissions = GstRtspServer.RTSPPermissions()
    permissions.add_role_from_structure(
        Gst.Structure.new_from_string(
            f"{ROLE}, media.factory.access=(boolean)true, media.factory.construct=(boolean)true"
        )
    )
    camera_launch = CAMERA_VIDEO.format(
        width=width,
        height=height,
        fps=args.fps,
        font=max(12, height // 24),
        bitrate=max(300, width * height * args.fps // 9000),
        gop_frames=max(1, round(args.gop * args.fps)),
        bframes=args.bframes,
        name="{name}",
    )
    session_launch = SESSION_VIDEO.format(
        caps=f'"video/x-h264,stream-format=byte-stream,alignment=au,width={width},'
        f'height={height},framerate={args.fps}/1"'
    )
    if not args.no_audio:
        camera_launch += " " + CAMERA_AUDIO
        session_launch += " " + SESSION_AUDIO

    def add_mount(stream: str) -> bool:
        name = re.sub(r"[^A-Za-z0-9 _.-]", "", streams.names[stream])[:40]
        factory = SessionFactory(Camera(camera_launch.replace("{name}", name)))
        factory.set_launch(f"( {session_launch} )")
        factory.set_permissions(permissions)
        mounts.add_factory(MOUNT + stream, factory)
        return False

    def check(client: GstRtspServer.RTSPClient, context: GstRtspServer.RTSPContext) -> int:
        stream, url_token = _stream_and_token(context)
        if not streams.admit(stream, url_token):
            _event(stream=stream, clients=0, refused=True, reason="token not valid")
            return int(GstRtsp.RTSPStatusCode.UNAUTHORIZED)
        clients = 1 + sum(1 for other in sessions.values() if other[1] == url_token)
        if clients > 1:  # Google: "A stream URL can be used by only one client at a time."
            _event(stream=stream, clients=clients, refused=True, reason="URL in use")
            return int(GstRtsp.RTSPStatusCode.FORBIDDEN)
        sessions[client] = (stream, url_token)
        _event(stream=stream, clients=clients, refused=False, reason=None)
        return int(GstRtsp.RTSPStatusCode.OK)

    def on_client(_server: GstRtspServer.RTSPServer, client: GstRtspServer.RTSPClient) -> None:
        client.connect("pre-describe-request", check)
        # SETUP names a track's control URL: the client must have been admitted at DESCRIBE.
        client.connect(
            "pre-setup-request",
            lambda c, ctx: int(GstRtsp.RTSPStatusCode.OK) if c in sessions else check(c, ctx),
        )
        client.connect("closed", closed)

    def closed(client: GstRtspServer.RTSPClient) -> None:
        if (session := sessions.pop(client, None)) is not None:
            _event("closed", stream=session[0])

    server.connect("client-connected", on_client)

    def end_expired() -> bool:
        now = time.time()
        for client, (stream, url_token) in list(sessions.items()):
            if streams.deadline(url_token, args.mode) <= now:
                sessions.pop(client, None)
                _event("closed", stream=stream)
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
