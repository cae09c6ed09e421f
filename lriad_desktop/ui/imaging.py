"""Decoding images for display, in a worker: a pyramid of QImages (full size, then halves).

QImage is safe to build off the UI thread (QPixmap is not), so workers decode with the same
`core.inspection.images.load_image` as the model (EXIF orientation included: boxes line up) and hand
QImages to the view, which paints the level that fits the zoom.

Pixel work is done by Pillow and numpy, which release the GIL; Qt's own image conversions
hold it (a 48 MP `convertToFormat` froze the UI for ~200 ms), so the QImages wrap numpy
buffers in Qt's native RGB32 layout without any Qt-side copy.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from PySide6.QtCore import QBuffer, QIODevice
from PySide6.QtGui import QImage, QPixmap

from lriad_desktop.core.inspection.images import as_rgb, load_image, open_raster

PYRAMID_SMALLEST = 1024  # stop halving once the long side is this small


def rgb32_buffer(image: Image.Image) -> np.ndarray:
    """The pixels as an H×W×4 array in QImage.Format_RGB32 byte order (B, G, R, 255); GIL-free copies."""
    rgb = np.asarray(image.convert("RGB") if image.mode != "RGB" else image)
    out = np.empty(rgb.shape[:2] + (4,), np.uint8)
    out[..., 0], out[..., 1], out[..., 2], out[..., 3] = rgb[..., 2], rgb[..., 1], rgb[..., 0], 255
    return out


def wrap_rgb32(buffer: np.ndarray) -> QImage:
    """A QImage over `buffer` (no copy): the caller keeps `buffer` alive as long as the image."""
    h, w = buffer.shape[:2]
    return QImage(buffer.data, w, h, 4 * w, QImage.Format.Format_RGB32)


def pil_to_qimage(image: Image.Image) -> QImage:
    """A small PIL image as a QImage that owns its pixels (a Qt copy: fine below a few megapixels)."""
    return wrap_rgb32(rgb32_buffer(image)).copy()


@dataclass(frozen=True)
class DisplayImage:
    """An image ready to paint: `levels[0]` at full size, each next level half as large."""

    path: str
    size: tuple[int, int]
    levels: tuple[QImage, ...]
    buffers: tuple[np.ndarray, ...] = ()  # the pixels the levels point into


def decode_display_image(path: str | Path, smallest: int = PYRAMID_SMALLEST) -> DisplayImage:
    """Load an image and build its pyramid (raises `core.inspection.images.ImageLoadError`)."""
    loaded = load_image(path)
    return display_image_from_pil(loaded.image, str(path), smallest)


def display_image_from_pil(image: Image.Image, path: str = "", smallest: int = PYRAMID_SMALLEST) -> DisplayImage:
    """The pyramid of an in-memory RGB image."""
    buffers = [rgb32_buffer(image)]
    level = image
    while max(level.size) > smallest and min(level.size) >= 2:
        level = level.reduce(2)
        buffers.append(rgb32_buffer(level))
    return DisplayImage(path, image.size, tuple(wrap_rgb32(b) for b in buffers), tuple(buffers))


def make_thumbnail(path: str | Path, size: int = 96) -> QImage:
    """A small preview of an image file (fast: JPEG draft mode, header-only where possible)."""
    with open_raster(path) as im:
        im.draft("RGB", (size * 2, size * 2))
        rgb = as_rgb(im)
        rgb.thumbnail((size, size), Image.Resampling.BILINEAR)
        return pil_to_qimage(rgb)


def png_bytes(image: QImage | QPixmap) -> bytes:
    """The image encoded as PNG in memory (b"" when Qt can't encode it), for an atomic write to disk."""
    buffer = QBuffer()
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    ok = image.save(buffer, "PNG")
    return bytes(buffer.data()) if ok else b""
