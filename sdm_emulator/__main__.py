"""Run the emulator as a server: `python -m sdm_emulator --cameras 20 --port 8765`."""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator, Callable
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from .app import create_app
from .config import EmulatorConfig, default_devices
from .emulator import Emulator
from .faults import Fault, FaultConfig, ScriptedFault
from .media import Media

if TYPE_CHECKING:
    from .media.live import LiveMedia


def _scripted(value: str) -> ScriptedFault:
    parts = value.split(":")
    if len(parts) not in (3, 4):
        raise argparse.ArgumentTypeError("expected FAULT:START:END[:DEVICE]")
    return ScriptedFault(
        Fault(parts[0]), float(parts[1]), float(parts[2]), parts[3] if len(parts) == 4 else None
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m sdm_emulator",
        description="A local Google SDM + OAuth emulator (Google's paths under one host).",
    )
    add = parser.add_argument
    add("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    add("--port", type=int, default=8765, help="port to listen on (default 8765)")
    add("--project-id", default="project-id-1", help="Device Access project id")
    add("--structure-name", default="Home", help="name of the project's home")
    add("--cameras", type=int, default=3, help="RTSP cameras (default 3)")
    add("--webrtc", type=int, default=0, help="wired WebRTC cameras")
    add("--battery", type=int, default=0, help="battery WebRTC cameras (cannot extend)")
    add("--doorbells", type=int, default=0, help="RTSP doorbells")
    add("--thermostats", type=int, default=1, help="thermostats (not cameras)")
    add("--lifetime", type=float, default=300.0, help="stream lifetime in seconds (300)")
    add("--execute-qpm", type=int, default=10, help="executeCommand per minute per project")
    add("--device-qpm", type=int, default=5, help="commands per minute per device and command")
    add("--devices-get-qpm", type=int, default=10, help="devices.get per minute")
    add("--devices-list-qpm", type=int, default=5, help="devices.list per minute")
    add("--structures-qpm", type=int, default=5, help="structures.list per minute")
    add("--device-qph", type=int, help="commands per hour per device (unpublished; default off)")
    add(
        "--quota-window",
        choices=("fixed", "sliding"),
        default="fixed",
        help="fixed minutes (documented, default) or a sliding 60 s window",
    )
    add(
        "--refresh-token-days",
        type=float,
        help='refresh tokens stop after this many days (7 for projects in "Testing" status)',
    )
    add("--foreign-qpm", type=float, default=0.0, help="another app's commands per minute")
    add(
        "--foreign-minutes",
        type=float,
        default=60.0,
        help="for how long from start the other app calls (60)",
    )
    add("--rate-409", type=float, help="share of generations answered 409")
    add("--rtsp-host", default="127.0.0.1:8554", help="host:port in RTSP URLs without media")
    add(
        "--media",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="serve real video: a GStreamer RTSP server and aiortc WebRTC peers (default on)",
    )
    add(
        "--rtsp-mode",
        choices=("keep", "rotate"),
        default="keep",
        help="keep: an open RTSP session survives extensions; rotate: it ends when the token "
        "it was opened with would have expired (default keep)",
    )
    add("--rtsp-port", type=int, default=0, help="the RTSP server's port (default: any free)")
    add(
        "--tls",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="serve rtsps:// as Google does, with a certificate of the emulator's own CA "
        "(default on; --no-tls serves plain rtsp://)",
    )
    add(
        "--tls-dir",
        type=Path,
        help="folder with (or for) the emulator's CA (emulator-ca.pem: what clients must trust) "
        "and server certificate; default: new ones in a temporary folder",
    )
    add("--video-size", default="1280x720", help="wired cameras' picture size (1280x720)")
    add("--fps", type=int, default=15, help="frames per second of the RTSP picture (15)")
    add("--gop", type=float, default=4.0, help="seconds between key frames (4; a guess)")
    add("--bframes", type=int, default=0, help="B-frames in the RTSP picture (0)")
    add("--no-audio", action="store_true", help="RTSP streams without AAC audio")
    add("--seed", type=int, default=0, help="seed of the fault injection")
    add("--fault-rate", type=float, default=0.0, help="total per-call fault rate (0..1)")
    add("--rate-500", type=float, help="per-call rate of 500 answers")
    add("--rate-503", type=float, help="per-call rate of 503 answers")
    add("--rate-slow", type=float, help="per-call rate of slow answers")
    add("--rate-malformed", type=float, help="per-call rate of malformed JSON answers")
    add("--slow-seconds", type=float, default=30.0, help="delay of a slow answer (30 s)")
    add("--failing-device", action="append", default=[], help="device id that always fails")
    add("--not-found-device", action="append", default=[], help="device id answered 404")
    add("--token-down", action="store_true", help="the token endpoint answers 503")
    add(
        "--script",
        action="append",
        type=_scripted,
        default=[],
        metavar="FAULT:START:END[:DEVICE]",
        help=f"scripted fault (FAULT one of {', '.join(f.value for f in Fault)}; seconds)",
    )
    return parser.parse_args(argv)


def build_emulator(args: argparse.Namespace, media: Media | None = None) -> Emulator:
    """An emulator configured from parsed arguments."""
    faults = FaultConfig.uniform(args.fault_rate)
    for name in ("rate_500", "rate_503", "rate_slow", "rate_malformed", "rate_409"):
        if (value := getattr(args, name)) is not None:
            setattr(faults, name, value)
    faults.slow_seconds = args.slow_seconds
    faults.failing_devices = set(args.failing_device)
    faults.not_found_devices = set(args.not_found_device)
    faults.token_down = args.token_down
    faults.scripted = list(args.script)
    config = EmulatorConfig(
        project_id=args.project_id,
        structure_name=args.structure_name,
        devices=default_devices(
            args.cameras,
            webrtc=args.webrtc,
            battery=args.battery,
            doorbells=args.doorbells,
            thermostats=args.thermostats,
        ),
        stream_lifetime=args.lifetime,
        execute_qpm=args.execute_qpm,
        device_command_qpm=args.device_qpm,
        devices_get_qpm=args.devices_get_qpm,
        devices_list_qpm=args.devices_list_qpm,
        structures_qpm=args.structures_qpm,
        rtsp_host=args.rtsp_host,
        video_size=args.video_size,
        faults=faults,
        seed=args.seed,
        device_qph=args.device_qph,
        quota_window=args.quota_window,
        refresh_token_lifetime=None
        if args.refresh_token_days is None
        else args.refresh_token_days * 24 * 3600,
        foreign_qpm=args.foreign_qpm,
        foreign_until=args.foreign_minutes * 60,
    )
    return Emulator(config, media=media)


def main(argv: list[str] | None = None) -> None:
    """Serve until interrupted."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    media = None
    if args.media:
        from .media.live import LiveMedia
        from .media.rtsp import StreamShape

        shape = StreamShape(
            size=args.video_size,
            fps=args.fps,
            gop=args.gop,
            bframes=args.bframes,
            audio=not args.no_audio,
        )
        media = LiveMedia(
            args.rtsp_mode, args.rtsp_port, tls=args.tls, tls_dir=args.tls_dir, shape=shape
        )
    emulator = build_emulator(args, media)
    print(
        f"SDM emulator: project {args.project_id}, {len(emulator.cameras())} cameras, "
        f"http://{args.host}:{args.port}",
        flush=True,
    )
    app = create_app(emulator)
    if media is not None:
        app.cleanup_ctx.append(_media_context(media))
    web.run_app(app, host=args.host, port=args.port, print=None)


def _media_context(
    media: LiveMedia,
) -> Callable[[web.Application], AsyncIterator[None]]:
    """Start the emulator's media with the server, stop it after."""

    async def context(_app: web.Application) -> AsyncIterator[None]:
        from .media.rtsp import RtspMediaError

        try:
            await media.start()
        except RtspMediaError as err:
            raise SystemExit(f"SDM emulator: {err}; --no-media serves no video") from err
        print(f"SDM emulator: media on, RTSP sessions in {media.rtsp.mode} mode", flush=True)
        if media.tls_files is not None:
            print(f"SDM emulator: rtsps; clients must trust {media.tls_files.ca}", flush=True)
        yield
        await media.close()

    return context


if __name__ == "__main__":
    main()
