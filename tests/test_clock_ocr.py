"""The e2e's reading of the emulator's burned-in clock (scripts/py/clock_ocr.py)."""

from __future__ import annotations

from datetime import datetime, time
import io
from pathlib import Path
import sys

from PIL import Image, ImageDraw, ImageFont
import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "scripts" / "py"))

from clock_ocr import age_of, band_text, clock_of

from custom_components.nest_streams.media.placeholder import render

BARS = [(191, 191, 191), (191, 191, 0), (0, 191, 191), (0, 191, 0), (191, 0, 191), (191, 0, 0)]
FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf")


def frame(clock: str, size: tuple[int, int], shift: int) -> bytes:
    """A test-pattern frame as the emulator draws it (bars, the clock white on a black box
    at the top right), scaled to `size` as a card asks for it, as JPEG."""
    picture = Image.new("RGB", (640, 360))
    draw = ImageDraw.Draw(picture)
    for index in range(8):
        left = (index * 91 + shift) % 640
        draw.rectangle((left, 0, left + 91, 240), fill=BARS[index % len(BARS)])
    font = ImageFont.truetype(str(FONT), 18)
    draw.rectangle((510, 25, 620, 50), fill=(0, 0, 0))
    draw.text((515, 27), clock, fill=(255, 255, 255), font=font)
    out = io.BytesIO()
    picture.resize(size).save(out, "JPEG", quality=80)
    return out.getvalue()


@pytest.mark.parametrize("size", [(640, 360), (435, 245)])
@pytest.mark.parametrize("shift", [0, 45, 300])
def test_the_clock_is_read_from_a_frame_a_card_shows(size: tuple[int, int], shift: int) -> None:
    assert clock_of(frame("07:58:09", size, shift)) == time(7, 58, 9)


def test_a_picture_without_the_clock_reads_none() -> None:
    out = io.BytesIO()
    Image.new("RGB", (640, 360), (191, 191, 191)).save(out, "JPEG")
    assert clock_of(out.getvalue()) is None


def test_age_counts_across_midnight() -> None:
    assert age_of(time(23, 59, 58), datetime(2026, 12, 7, 0, 0, 1)) == 3
    assert age_of(time(10, 0, 0), datetime(2026, 12, 7, 10, 0, 4)) == 4


def test_a_state_pictures_words_are_read_from_a_card() -> None:
    """What a card shows of a failing camera: its state and why, read back off the picture."""
    out = io.BytesIO()
    picture = render("Degraded", "HTTP 503: The service is unavailable.")
    Image.open(io.BytesIO(picture)).resize((435, 245)).save(out, "JPEG", quality=80)
    read = band_text(out.getvalue())
    assert read.startswith("Degraded HTTP 503: The service is")
