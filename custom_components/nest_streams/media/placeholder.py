"""The picture a camera shows while it has no live picture: its logo and what it is doing.

Rendered once per (state, reason) and cached: a dashboard asks for stills every few seconds,
the state changes rarely.
"""

from __future__ import annotations

import functools
import io
from pathlib import Path
import textwrap

from PIL import Image, ImageDraw, ImageFont

LOGO = Path(__file__).parent.parent / "placeholder.jpg"
BAND = (32, 33, 36)
"""The text band's colour (dark, readable over the logo's white)."""
TITLE_SIZE = 34
DETAIL_SIZE = 22
DETAIL_LINES = 3
WRAP = 52
"""Characters per detail line at DETAIL_SIZE on the 640 px wide picture."""


@functools.lru_cache(maxsize=64)
def render(title: str, detail: str | None = None) -> bytes:
    """A JPEG of the logo with `title` (the camera's state) and `detail` (why) on a band at
    the top; the card's own label stays readable at the bottom."""
    with Image.open(LOGO) as logo:
        picture = logo.convert("RGB")
    draw = ImageDraw.Draw(picture)
    lines = textwrap.wrap(detail or "", WRAP)
    if len(lines) > DETAIL_LINES:
        lines = [*lines[: DETAIL_LINES - 1], textwrap.shorten(" ".join(lines[2:]), WRAP)]
    band = 16 + TITLE_SIZE + 10 + len(lines) * (DETAIL_SIZE + 6) + 8
    draw.rectangle((0, 0, picture.width, band), fill=BAND)
    draw.text((20, 14), title, fill="white", font=ImageFont.load_default(size=TITLE_SIZE))
    detail_font = ImageFont.load_default(size=DETAIL_SIZE)
    for index, line in enumerate(lines):
        y = 16 + TITLE_SIZE + 10 + index * (DETAIL_SIZE + 6)
        draw.text((20, y), line, fill=(232, 234, 237), font=detail_font)
    out = io.BytesIO()
    picture.save(out, "JPEG", quality=85)
    return out.getvalue()
