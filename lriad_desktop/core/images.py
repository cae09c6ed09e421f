"""Loading inspection images safely: any Pillow format in, an RGB image out, or a clear error."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".pgm", ".ppm", ".pbm"}
)
# Refuse images over this many pixels (a decompression bomb or a panorama nobody inspects).
MAX_IMAGE_PIXELS = 200_000_000

# Never let Pillow silently accept a truncated file.
ImageFile.LOAD_TRUNCATED_IMAGES = False


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


@dataclass(frozen=True)
class LoadedImage:
    """An RGB image ready for the model, with where it came from."""

    image: Image.Image
    path: str
    source_mode: str

    @property
    def size(self) -> tuple[int, int]:
        return self.image.size


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


def load_image(path: str | os.PathLike, max_pixels: int = MAX_IMAGE_PIXELS) -> LoadedImage:
    """Open `path` as RGB, applying EXIF orientation; raise an `ImageLoadError` subclass if it can't."""
    p = Path(path)
    if not p.is_file():
        raise ImageNotFound(p, "file not found" if not p.exists() else "not a file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(p) as im:
                w, h = im.size
                if w * h > max_pixels:
                    raise ImageTooLarge(p, f"image is {w}x{h} ({w * h / 1e6:.0f} MP); the limit is {max_pixels / 1e6:.0f} MP")
                source_mode = im.mode
                im.load()
                im = ImageOps.exif_transpose(im)
                rgb = _to_rgb(im)
                rgb.load()
    except ImageLoadError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ImageTooLarge(p, f"image is too large to open safely ({err})") from None
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


def as_rgb(image: Image.Image) -> Image.Image:
    """An in-memory image (camera frame, clipboard) as RGB."""
    return _to_rgb(ImageOps.exif_transpose(image))


def is_image_file(path: str | os.PathLike) -> bool:
    """True when the file name has an image suffix (the content is checked on load)."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def iter_image_files(paths: Iterable[str | os.PathLike], recursive: bool = True) -> Iterator[Path]:
    """Files given directly, and image files found in folders (sorted, lazily, recursively)."""
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            yield from _walk(p, recursive)
        else:
            yield p


def _walk(folder: Path, recursive: bool) -> Iterator[Path]:
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return
    subdirs = []
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if entry.is_dir(follow_symlinks=False):
            subdirs.append(Path(entry.path))
        elif is_image_file(entry.name):
            yield Path(entry.path)
    if recursive:
        for sub in subdirs:
            yield from _walk(sub, recursive)
