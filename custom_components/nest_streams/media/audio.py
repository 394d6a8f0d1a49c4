"""The camera's sound for browsers: AAC decoded and encoded as Opus once per camera.

WebRTC carries Opus, Nest's RTSP streams carry AAC. One `OpusTranscoder` per camera takes the
feed's AAC packets, decodes, resamples (48 kHz mono) and encodes them as 20 ms Opus packets in
a thread of its own (off the event loop), and hands each packet to every listener (the
viewers' audio tracks). Opus timestamps follow the feed's clock, so sound stays in step with
the picture; after a gap (a new session) they jump ahead with it, never back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import contextlib
from fractions import Fraction
import logging
import queue
import threading
from typing import Any

import av
from av.audio.fifo import AudioFifo
from av.audio.resampler import AudioResampler

from .session import AudioFormat

_LOGGER = logging.getLogger(__name__)

OPUS_RATE = 48_000
OPUS_CLOCK = Fraction(1, OPUS_RATE)
OPUS_FRAME = 960
"""Samples in one Opus packet (20 ms)."""
OPUS_BITRATE = 32_000
MAX_PENDING = 100
"""AAC packets waiting for the thread (about 6 s at 16 kHz); beyond, new ones are dropped."""
RESYNC = Fraction(1, 5)
"""Seconds the sound may drift from the feed's clock before it is put back on it (a gap)."""

type Listener = Callable[[av.Packet[Any]], None]


class OpusTranscoder:
    """AAC in, Opus out, once per camera (see the module); runs while it has listeners.

    It is a consumer of the feed (`on_audio`); its thread starts with the first AAC packet,
    whose session tells the audio's format.
    """

    def __init__(self, audio: Callable[[], AudioFormat | None]) -> None:
        """A transcoder of the feed's sound; `audio()` tells its format (the session's)."""
        self._audio_format = audio
        self.audio: AudioFormat | None = None
        self._loop = asyncio.get_running_loop()
        self._listeners: set[Listener] = set()
        self._packets: queue.Queue[av.Packet[Any] | None] = queue.Queue(MAX_PENDING)
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()
        self.dropped = 0
        self._dropping = False
        self.encoded = 0
        self.refused = 0
        """AAC packets that could not be transcoded (skipped)."""

    def stop(self) -> None:
        """Stop the thread (at its next packet)."""
        self._listeners.clear()
        self._stopped.set()
        with contextlib.suppress(queue.Full):  # a full queue: the thread sees the flag anyway
            self._packets.put_nowait(None)

    @property
    def stopped(self) -> bool:
        """Whether it was stopped (for good)."""
        return self._stopped.is_set()

    def add_listener(self, listener: Listener) -> None:
        """`listener` gets every Opus packet from now on (in the event loop)."""
        self._listeners.add(listener)

    def remove_listener(self, listener: Listener) -> None:
        """`listener` left."""
        self._listeners.discard(listener)

    @property
    def listeners(self) -> int:
        """How many listeners it has."""
        return len(self._listeners)

    # the feed's consumer interface
    def on_video(self, packet: av.Packet[Any]) -> None:
        """The picture is not transcoded."""

    def on_end(self, reason: str) -> None:
        """The feed closed."""
        self.stop()

    def on_audio(self, packet: av.Packet[Any]) -> None:
        """An AAC packet of the feed (on the feed's clock); the first starts the thread."""
        if self._stopped.is_set():
            return
        if self._thread is None:
            if (audio := self._audio_format()) is None:
                return
            self.audio = audio
            self._thread = threading.Thread(
                target=self._run, args=(audio,), name="nest_streams_audio", daemon=True
            )
            self._thread.start()
        try:
            self._packets.put_nowait(packet)
        except queue.Full:
            if not self._dropping:
                _LOGGER.debug("the sound's transcoder is %d packets behind", MAX_PENDING)
            self._dropping = True
            self.dropped += 1
        else:
            self._dropping = False

    def _publish(self, packet: av.Packet[Any]) -> None:
        for listener in list(self._listeners):
            listener(packet)

    def _run(self, audio: AudioFormat) -> None:
        """The thread: every packet transcoded in turn. A packet that cannot be (the decoder,
        the resampler or the encoder refused it) is skipped: the sound goes on with the next
        one. Should the thread end all the same, the transcoder is stopped, so that the next
        viewer gets a new one instead of a silent one."""
        try:
            opus = _Opus(audio)
            refused = False
            while (packet := self._packets.get()) is not None and not self._stopped.is_set():
                try:
                    encoded = opus.transcode(packet)
                except (av.FFmpegError, ValueError) as err:
                    if not refused:
                        _LOGGER.debug("an AAC packet could not be transcoded: %s", err)
                    refused = True
                    self.refused += 1
                    continue
                refused = False
                for opus_packet in encoded:
                    self.encoded += 1
                    self._loop.call_soon_threadsafe(self._publish, opus_packet)
        finally:
            self._stopped.set()


class _Opus:
    """The codecs of one transcoder's thread: AAC decoder, resampler, Opus encoder."""

    def __init__(self, audio: AudioFormat) -> None:
        decoder: Any = av.CodecContext.create(audio.codec, "r")
        decoder.sample_rate = audio.sample_rate
        decoder.layout = "mono" if audio.channels == 1 else "stereo"
        if audio.extradata:
            decoder.extradata = audio.extradata
        self._decoder = decoder
        self._resampler = _resampler()
        encoder: Any = av.CodecContext.create("libopus", "w")
        encoder.sample_rate = OPUS_RATE
        encoder.layout = "mono"
        encoder.format = "s16"
        encoder.bit_rate = OPUS_BITRATE
        encoder.time_base = OPUS_CLOCK
        self._encoder = encoder
        self._fifo = AudioFifo()
        self._next_pts: int | None = None

    def transcode(self, packet: av.Packet[Any]) -> list[av.Packet[Any]]:
        """The Opus packets `packet` completes (on the feed's clock); raises what PyAV raises
        for a packet it cannot use."""
        frames = self._decoder.decode(packet)
        at = round(Fraction(packet.pts or 0) * packet.time_base / OPUS_CLOCK)
        fifo = self._fifo
        if self._next_pts is None or abs(at - self._next_pts - fifo.samples) > RESYNC / OPUS_CLOCK:
            self._next_pts, fifo = at, AudioFifo()  # a gap: back on the feed's clock
            self._fifo = fifo
        for frame in frames:
            try:
                resampled_frames = self._resampler.resample(frame)
            except ValueError:  # the decoder's output changed: resample it anew
                self._resampler = _resampler()
                resampled_frames = self._resampler.resample(frame)
            for resampled in resampled_frames:
                resampled.pts = None
                fifo.write(resampled)
        encoded: list[av.Packet[Any]] = []
        while fifo.samples >= OPUS_FRAME and (chunk := fifo.read(OPUS_FRAME)) is not None:
            chunk.pts, chunk.time_base = self._next_pts, OPUS_CLOCK
            self._next_pts += OPUS_FRAME
            for opus_packet in self._encoder.encode(chunk):
                if opus_packet.pts is None:
                    opus_packet.pts = chunk.pts
                opus_packet.dts = opus_packet.pts
                opus_packet.time_base = OPUS_CLOCK
                encoded.append(opus_packet)
        return encoded


def _resampler() -> AudioResampler:
    return AudioResampler(format="s16", layout="mono", rate=OPUS_RATE)
