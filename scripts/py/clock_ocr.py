"""The emulator's burned-in clock read back from a still (Tesseract OCR).

The emulator draws `HH:MM:SS` (its local time) white on a black box in the picture's top
right corner (`sdm_emulator/media/rtsp_server.py`); the e2e reads it to tell how old a still
is. The box is found as the dark pixels of that corner (the test pattern has no black there),
the text as the bright pixels inside it; the reading most of a few thresholds and scales agree
on is the clock (a card's small, scaled picture reads right at some, not all).
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, time, timedelta
import io
import re
import shutil
import subprocess
import tempfile

from PIL import Image, ImageChops

TESSERACT = shutil.which("tesseract") or "/usr/bin/tesseract"
THRESHOLDS = (90, 110, 130)
"""Brightness above which a pixel of the box is text."""
SCALES = (3, 4)


def clock_of(jpeg: bytes) -> time | None:
    """The clock a still shows (None when none can be read)."""
    picture = Image.open(io.BytesIO(jpeg)).convert("RGB")
    width, height = picture.size
    corner = picture.crop((width // 2, 0, width, height // 4))
    red, green, blue = corner.split()
    darkest = ImageChops.lighter(ImageChops.lighter(red, green), blue)  # max channel
    # The box is black where the picture under it was grey, dark red or blue where it was
    # coloured (the shading takes the brightness, not the colour): darker than 100 in every
    # channel either way; the test pattern's bars are brighter.
    box = darkest.point(lambda v: 255 if v < 100 else 0).getbbox()
    if box is None:
        return None
    inside = corner.crop(box)
    red, green, blue = inside.split()
    brightest = ImageChops.darker(ImageChops.darker(red, green), blue)  # min channel
    readings: Counter[time] = Counter()
    for threshold in THRESHOLDS:  # a small, scaled picture reads best at some threshold
        for scale in SCALES:
            if (reading := _read(brightest, threshold, scale)) is not None:
                readings[reading] += 1
    if not readings:
        return None
    return readings.most_common(1)[0][0]


def _read(brightest: Image.Image, threshold: int, scale: int) -> time | None:
    """Tesseract's reading of the box's text, black on white, scaled up, with a margin."""
    text = brightest.point(lambda v: 0 if v > threshold else 255)
    text = text.resize((text.width * scale, text.height * scale), Image.Resampling.LANCZOS)
    page = Image.new("L", (text.width + 40, text.height + 40), 255)
    page.paste(text, (20, 20))
    read = _tesseract(page, "--psm", "7", "-c", "tessedit_char_whitelist=0123456789:")
    found = re.fullmatch(r"(\d\d):?(\d\d):?(\d\d)", read.strip().replace(" ", ""))
    if found is None:
        return None
    hours, minutes, seconds = (int(part) for part in found.groups())
    if hours > 23 or minutes > 59 or seconds > 59:
        return None
    return time(hours, minutes, seconds)


def age_of(clock: time, now: datetime) -> float:
    """Seconds from `clock` (today, or yesterday when that is closer) to `now` (local)."""
    shown = datetime.combine(now.date(), clock)
    if shown - now > timedelta(hours=12):
        shown -= timedelta(days=1)
    return (now - shown).total_seconds()


def band_text(jpeg: bytes) -> str:
    """The text of a state picture's band (light on dark at the top), as Tesseract reads it."""
    picture = Image.open(io.BytesIO(jpeg)).convert("L")
    band = picture.crop((0, 0, picture.width, picture.height * 2 // 5))
    text = band.point(lambda v: 0 if v > 128 else 255)
    text = text.resize((text.width * 2, text.height * 2), Image.Resampling.LANCZOS)
    return " ".join(_tesseract(text, "--psm", "6").split())


def _tesseract(picture: Image.Image, *options: str) -> str:
    """What Tesseract reads in `picture` with `options`."""
    with tempfile.NamedTemporaryFile(suffix=".png") as file:
        picture.save(file.name)
        return subprocess.run(
            [TESSERACT, file.name, "-", *options], capture_output=True, text=True, check=False
        ).stdout
