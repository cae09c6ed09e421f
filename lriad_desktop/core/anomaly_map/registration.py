"""Registration for the anomaly map: a part held in a fixture comes back a few pixels and degrees off.

Without it, the rim of a capsule or a bottle lands on cells where the good images had background, and
those cells outscore a small defect (measured: capsule image AUROC 0.69 unaligned, 1.00 aligned). A bank
keeps a small grey copy of one good image as its reference; every good image and every query is fitted
onto it by OpenCV's ECC (a Euclidean motion: shift and rotation) on small grey copies, warped, and mapped;
the heat map is warped back so it (and its boxes) stay in the original image's pixels. A fit that fails,
moves the image more than `MAX_SHIFT` of its side or `MAX_DEGREES`, or matches the reference no better than
the image as it is (ECC locking onto a repeat of a woven texture: fabric's one false fit scored a good
image 13 against 1.1 for the others) is dropped: the image is used as it is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

REFERENCE_SIDE = 160  # px: the long side of the grey copies the fit runs on
MAX_SHIFT = 0.15  # of the image side
MAX_DEGREES = 12.0
_ITERATIONS, _EPS = 50, 1e-4
_INTERIOR = 0.1  # of each side left out when comparing a fit with no fit (the warp's replicated border)


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Normalised cross-correlation of two same-sized grey arrays over their interior."""
    h, w = a.shape
    dy, dx = max(1, int(h * _INTERIOR)), max(1, int(w * _INTERIOR))
    a, b = a[dy:h - dy, dx:w - dx].astype(np.float64), b[dy:h - dy, dx:w - dx].astype(np.float64)
    a, b = a - a.mean(), b - b.mean()
    norm = math.sqrt(float((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / norm) if norm > 0 else 0.0


def _grey(image: Image.Image, size: tuple[int, int]) -> np.ndarray:
    import cv2

    grey = np.asarray(image.convert("L"), np.float32)
    return cv2.resize(grey, size, interpolation=cv2.INTER_AREA)


@dataclass(frozen=True)
class Registration:
    """A reference (small grey float32 array) that images are aligned to."""

    reference: np.ndarray

    @classmethod
    def from_image(cls, image: Image.Image) -> "Registration":
        """The registration onto `image` (a good image of the object)."""
        w, h = image.size
        scale = REFERENCE_SIDE / max(w, h)
        return cls(_grey(image, (max(8, round(w * scale)), max(8, round(h * scale)))))

    def fit(self, image: Image.Image) -> np.ndarray | None:
        """The 2 x 3 affine matrix (original-image pixels) that maps the reference frame onto `image`
        (use it with `cv2.WARP_INVERSE_MAP` to align `image`); None when the fit fails or moves too much."""
        import cv2

        rh, rw = self.reference.shape
        small = _grey(image, (rw, rh))
        warp = np.eye(2, 3, dtype=np.float32)
        try:
            _, warp = cv2.findTransformECC(self.reference, small, warp, cv2.MOTION_EUCLIDEAN,
                                           (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, _ITERATIONS, _EPS),
                                           None, 3)
        except cv2.error:  # no convergence (a flat image, another object)
            return None
        degrees = math.degrees(math.atan2(float(warp[1, 0]), float(warp[0, 0])))
        if abs(degrees) > MAX_DEGREES or abs(warp[0, 2]) > MAX_SHIFT * rw or abs(warp[1, 2]) > MAX_SHIFT * rh:
            return None
        moved = cv2.warpAffine(small, warp, (rw, rh), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                               borderMode=cv2.BORDER_REPLICATE)
        if _correlation(self.reference, moved) <= _correlation(self.reference, small):
            return None
        w, h = image.size
        full = warp.astype(np.float64)
        full[0, 2] *= w / rw
        full[1, 2] *= h / rh
        return full

    def align(self, image: Image.Image) -> tuple[Image.Image, np.ndarray | None]:
        """`image` warped onto the reference (same size), and the matrix used (None: left as it was)."""
        import cv2

        warp = self.fit(image)
        if warp is None:
            return image, None
        pixels = np.asarray(image.convert("RGB"))
        out = cv2.warpAffine(pixels, warp, image.size, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                             borderMode=cv2.BORDER_REPLICATE)
        return Image.fromarray(out), warp


def unwarp(heat: np.ndarray, warp: np.ndarray | None) -> np.ndarray:
    """A map made on the aligned image, back in the original image's pixels (`warp` from `Registration.align`)."""
    import cv2

    if warp is None:
        return heat
    h, w = heat.shape
    return cv2.warpAffine(heat, warp, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def align_mask(mask: np.ndarray, warp: np.ndarray | None) -> np.ndarray:
    """A mask of the original image in the aligned frame (for measuring where the aligned map's cells fall)."""
    import cv2

    if warp is None:
        return mask
    h, w = mask.shape
    return cv2.warpAffine(mask, warp, (w, h), flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)
