"""Loading inspection images safely: a raster format from an allow-list in, an RGB image out, or a clear error."""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from lriad_desktop.core.inspection.coordinates import ModelGeometry

IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".pgm", ".ppm", ".pbm"}
)
# The only decoders any image file of the app goes through. Pillow would otherwise identify a file by its
# content, whatever its name, and hand a PostScript file named x.png to Ghostscript (EPS plugin).
RASTER_FORMATS: tuple[str, ...] = ("PNG", "JPEG", "BMP", "TIFF", "WEBP", "GIF", "PPM")
# Refuse images over this many pixels (a decompression bomb or a panorama nobody inspects).
MAX_IMAGE_PIXELS = 200_000_000
# The Qwen-VL image processors refuse a longer side over 200 times the shorter one.
MAX_ASPECT_RATIO = 200

# Never let Pillow silently accept a truncated file.
ImageFile.LOAD_TRUNCATED_IMAGES = False
# Pillow refuses an image over twice its limit (and only warns above it): halving it makes the app's
# limit the one every Pillow open in the process keeps, instead of Pillow's own 89.5 / 179 MP.
Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS // 2


class ImageLoadError(Exception):
    """An image that can't be inspected; `str(err)` is a message for the inspector."""

    def __init__(self, path: str | os.PathLike | None, reason: str) -> None:
        self.path = str(path) if path is not None else ""
        self.reason = reason
        super().__init__(f"{self.path}: {reason}" if self.path else reason)


class ImageNotFound(ImageLoadError):
    """The file does not exist or can't be read."""


class NotAnImage(ImageLoadError):
    """The file is not an image format we can read."""


class TruncatedImage(ImageLoadError):
    """The file is an image but its data is cut short or corrupt."""


class ImageTooLarge(ImageLoadError):
    """The image has more pixels than `MAX_IMAGE_PIXELS`."""


class UnsupportedShape(ImageLoadError):
    """The image reads fine but its shape is one the model can't take (a line-scan strip, a tiny crop)."""


@dataclass(frozen=True)
class LoadedImage:
    """An RGB image ready for the model, with where it came from."""

    image: Image.Image
    path: str
    source_mode: str

    @property
    def size(self) -> tuple[int, int]:
        return self.image.size


def open_raster(path: str | os.PathLike) -> Image.Image:
    """`Image.open` restricted to `RASTER_FORMATS`: every image file the app reads opens through here.

    Raises `UnidentifiedImageError` for any other format (PostScript, EPS, PDF, ...), so a hostile file
    can't reach an interpreter such as Ghostscript.
    """
    return Image.open(path, formats=RASTER_FORMATS)


def _to_rgb(im: Image.Image) -> Image.Image:
    mode = im.mode
    if mode == "RGB":
        return im
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(im, dtype=np.float64)
        top = float(arr.max()) if arr.size else 0.0
        # 12-bit cameras store data in 16-bit containers: scale by the depth actually used.
        scale = 255.0 / (4095.0 if top <= 4095 and mode != "F" else 65535.0 if mode != "F" else max(top, 1e-9))
        arr8 = np.clip(arr * scale, 0, 255).astype(np.uint8)
        return Image.fromarray(arr8, "L").convert("RGB")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return im.convert("RGB")


# Peak bytes per pixel while loading an image of each mode (the decoded image, the working copies
# `_to_rgb` makes, the RGB result); the pixel limit alone lets a 16-bit frame of 196 MP take 4 GB.
MAX_DECODED_BYTES = 1536 * 1024 ** 2
_LOAD_BYTES_PER_PIXEL = {"1": 5, "L": 5, "P": 5, "RGB": 6, "YCbCr": 9, "LAB": 9, "HSV": 9, "CMYK": 10,
                         "RGBA": 15, "RGBa": 15, "LA": 14, "La": 14, "PA": 14,
                         "I;16": 26, "I;16B": 26, "I;16L": 26, "I;16N": 26, "I": 28, "F": 28}
_MODE_WORDS = {"I;16": "16-bit", "I;16B": "16-bit", "I;16L": "16-bit", "I;16N": "16-bit", "I": "32-bit",
               "F": "32-bit float"}


def check_decoded_size(path: str | os.PathLike, mode: str, size: tuple[int, int],
                       limit: int = MAX_DECODED_BYTES) -> None:
    """Raise `ImageTooLarge` when loading an image of `mode` and `size` would take more than `limit` bytes,
    judged from the header alone, before a byte of pixel data is decoded."""
    w, h = size
    need = w * h * _LOAD_BYTES_PER_PIXEL.get(mode, 28)
    if need > limit:
        kind = _MODE_WORDS.get(mode, mode)
        raise ImageTooLarge(path, f"image is {w}x{h} {kind} ({_mp(w * h)}); loading it would take about "
                                  f"{need / 1024 ** 3:.1f} GB of memory, over the {limit / 1024 ** 3:.1f} GB limit "
                                  "(save it smaller, or as 8-bit)")


def _mp(pixels: int) -> str:
    return f"{pixels / 1e6:.0f} MP" if pixels >= 10_000_000 else f"{pixels / 1e6:.1f} MP"


def load_image(path: str | os.PathLike, max_pixels: int = MAX_IMAGE_PIXELS) -> LoadedImage:
    """Open `path` as RGB, applying EXIF orientation; raise an `ImageLoadError` subclass if it can't."""
    p = Path(path)
    if not p.is_file():
        raise ImageNotFound(p, "file not found" if not p.exists() else "not a file")
    limit = min(max_pixels, MAX_IMAGE_PIXELS)
    try:
        if p.stat().st_size == 0:
            raise NotAnImage(p, "the file is empty (0 bytes)")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the size check below is exact
            with open_raster(p) as im:
                w, h = im.size
                if w * h > limit:
                    raise ImageTooLarge(p, f"image is {w}x{h} ({_mp(w * h)}); the limit is {_mp(limit)}")
                check_decoded_size(p, im.mode, (w, h))
                source_mode = im.mode
                im.load()
                im = ImageOps.exif_transpose(im)
                rgb = _to_rgb(im)
                rgb.load()
    except ImageLoadError:
        raise
    except Image.DecompressionBombError as err:
        pixels = re.search(r"\((\d+) pixels\)", str(err))
        size = f"has {_mp(int(pixels.group(1)))}" if pixels else "is too large"
        raise ImageTooLarge(p, f"image {size}; the limit is {_mp(limit)}") from None
    except UnidentifiedImageError:
        raise NotAnImage(p, "not an image (unknown or unsupported format)") from None
    except PermissionError:
        raise ImageNotFound(p, "permission denied") from None
    except (OSError, SyntaxError, ValueError) as err:
        msg = str(err)
        if "truncated" in msg.lower() or "broken" in msg.lower() or "image file is" in msg.lower():
            raise TruncatedImage(p, "image file is truncated or corrupt") from None
        raise TruncatedImage(p, f"image data can't be decoded ({msg})") from None
    return LoadedImage(image=rgb, path=str(p), source_mode=source_mode)


def check_model_shape(size: tuple[int, int], geometry: ModelGeometry, path: str | os.PathLike | None = None) -> None:
    """Raise `UnsupportedShape` when a model of `geometry` can't inspect an image of `size` (width, height).

    Refused, not padded: a strip 400 times longer than it is high (a single line-scan exposure) or a
    crop narrower than one image token of the model would reach it mostly as padding or interpolation,
    and a confident verdict on that is worse for an inspector than being told to stitch or re-crop.
    """
    w, h = size
    if min(w, h) > 0 and max(w, h) > MAX_ASPECT_RATIO * min(w, h):
        raise UnsupportedShape(path, f"image is {w}x{h} pixels, an aspect ratio of {max(w, h) / min(w, h):.0f}:1; "
                                     f"the model takes up to {MAX_ASPECT_RATIO}:1 (stitch line-scan strips into "
                                     f"frames, or crop)")
    side = geometry.factor  # patch x merge: the pixels of one image token along each axis
    if min(w, h) < side:
        raise UnsupportedShape(path, f"image is {w}x{h} pixels; the model needs at least {side} pixels on each "
                                     f"side (crop less tightly, or inspect the full image)")


def load_for_model(path: str | os.PathLike, geometry: ModelGeometry) -> LoadedImage:
    """`load_image`, then `check_model_shape`: an image the model can take, or an `ImageLoadError`."""
    loaded = load_image(path)
    check_model_shape(loaded.size, geometry, path)
    return loaded


def as_rgb(image: Image.Image) -> Image.Image:
    """An in-memory image (camera frame, clipboard) as RGB."""
    return _to_rgb(ImageOps.exif_transpose(image))


def is_image_file(path: str | os.PathLike) -> bool:
    """True when the file name has an image suffix (the content is checked on load)."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


MASK_FOLDERS = frozenset({"ground_truth", "masks"})  # a dataset's masks (MVTec-AD layout): never parts to inspect


def is_mask_folder(folder: str | os.PathLike) -> bool:
    """True for a folder of a labelled set's masks, never walked for images: MVTec-AD's `ground_truth/`, and
    VisA's `Masks/` beside its `Images/`."""
    p = Path(folder)
    if p.name.lower() == "ground_truth":
        return True
    return p.name == "Masks" and (p.parent / "Images").is_dir()


def iter_image_files(paths: Iterable[str | os.PathLike], recursive: bool = True,
                     skip_masks: bool = False) -> Iterator[Path]:
    """Files given directly, and image files found in folders (sorted, lazily, recursively); a labelled set's
    mask folders (`is_mask_folder`) are skipped, so opening a dataset never queues its masks as images; with
    `skip_masks`, any sub-folder named as masks (`MASK_FOLDERS`) is left out too (a folder given directly is
    always walked)."""
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            yield from _walk(p, recursive, skip_masks)
        else:
            yield p


def _walk(folder: Path, recursive: bool, skip_masks: bool = False) -> Iterator[Path]:
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return
    subdirs = []
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if entry.is_dir(follow_symlinks=False):
            if not (is_mask_folder(entry.path) or (skip_masks and entry.name.lower() in MASK_FOLDERS)):
                subdirs.append(Path(entry.path))
        elif is_image_file(entry.name):
            yield Path(entry.path)
    if recursive:
        for sub in subdirs:
            yield from _walk(sub, recursive, skip_masks)
