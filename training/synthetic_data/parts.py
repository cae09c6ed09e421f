"""Procedural renderers of defect-free products: full-frame textures and parts on a backdrop.

Every renderer is deterministic for a given ``numpy.random.Generator`` and draws its own
variety: colour/hue, scale, orientation, pose of parts, lighting gradient and sensor noise.
"""

from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

# (rng, height, width) -> (float RGB image 0..255, object coverage 0..1 or None for textures)
_Painter = Callable[[np.random.Generator, int, int], tuple[np.ndarray, np.ndarray | None]]


@dataclass(frozen=True)
class ProductKind:
    """A kind of product the synthetic data can show, named as an inspector would."""

    name: str
    object_name: str  # what the inspector calls it, e.g. "metal washer"
    surface: str  # how its surface normally looks, e.g. "an even weave of crossing threads"
    is_part: bool  # a part on a backdrop (has an object mask) rather than a full-frame texture
    is_round: bool  # round parts, where "near the rim" is meaningful
    painter: _Painter

    def render(self, rng: np.random.Generator, width: int, height: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Render a defect-free image (H x W x 3 uint8) and, for parts, the object mask (bool)."""
        img, coverage = self.painter(rng, height, width)
        out = _finish(img, rng, height, width)
        mask = None if coverage is None else coverage > 0.5
        return out, mask

    def render_reference(self, painter_state: dict, rng: np.random.Generator, width: int, height: int) -> np.ndarray:
        """A golden sample of the same product: the painter replayed from `painter_state` (the
        bit-generator state `render` started from, so same kind, colour and shape), then a small
        pose jitter and fresh lighting and noise from `rng`. H x W x 3 uint8."""
        replay = np.random.Generator(type(rng.bit_generator)())
        replay.bit_generator.state = painter_state
        img, _coverage = self.painter(replay, height, width)
        return _finish(_pose_jitter(img.astype(np.float32, copy=False), rng), rng, height, width)

    def render_line(self, painter_state: dict, rng: np.random.Generator, width: int,
                    height: int) -> tuple[np.ndarray, np.ndarray | None]:
        """The product variant `painter_state` fixes (kind, colour, shape) as a line camera sees it, placed
        again in its fixture: `LINE_JITTER`, mild lighting and fresh noise from `rng`. Image and mask as `render`."""
        replay = np.random.Generator(type(rng.bit_generator)())
        replay.bit_generator.state = painter_state
        img, coverage = self.painter(replay, height, width)
        m = _jitter_matrix(rng, height, width, LINE_JITTER)
        img = cv2.warpAffine(img.astype(np.float32, copy=False), m, (width, height), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_REFLECT_101)
        mask = None
        if coverage is not None:
            mask = cv2.warpAffine(coverage.astype(np.float32), m, (width, height), flags=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_REFLECT_101) > 0.5
        return _finish(img, rng, height, width, LINE_LIGHTING), mask


def _finish(img: np.ndarray, rng: np.random.Generator, h: int, w: int,
            lighting: tuple[float, float, float, float] = (0.22, 0.6, 0.88, 1.12)) -> np.ndarray:
    """Lighting gradient and sensor noise over a painted image, as uint8 (`lighting`: see `_lighting`)."""
    img = img.astype(np.float32, copy=False) * _lighting(rng, h, w, *lighting)[..., None]
    # sensor noise; uniform rather than Gaussian because it is several times cheaper to draw
    noise = rng.random((h, w, 3), dtype=np.float32) - np.float32(0.5)
    img += noise * np.float32(rng.uniform(3.5, 15.0))
    return np.clip(img, 0, 255).astype(np.uint8)


# How far a golden sample's pose differs from the part's: a part placed again in the same
# fixture (degrees, fraction of the side, fraction of the size).
REFERENCE_JITTER = (3.0, 0.02, 0.02)


# A line's fixture: a few pixels and degrees, no change of scale; and mild lighting (see `_lighting`).
LINE_JITTER = (2.0, 0.012, 0.0)
LINE_LIGHTING = (0.05, 0.1, 0.96, 1.04)


def _jitter_matrix(rng: np.random.Generator, h: int, w: int, jitter: tuple[float, float, float]) -> np.ndarray:
    degrees, shift, size = jitter
    angle, scale = rng.uniform(-degrees, degrees), rng.uniform(1 - size, 1 + size)
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale)
    m[:, 2] += rng.uniform(-shift, shift, 2) * (w, h)
    return m


def _pose_jitter(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A slightly moved copy: rotation, shift and scale within `REFERENCE_JITTER`."""
    h, w = img.shape[:2]
    m = _jitter_matrix(rng, h, w, REFERENCE_JITTER)
    return cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)


def _coords(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    return np.arange(w, dtype=np.float32)[None, :], np.arange(h, dtype=np.float32)[:, None]


def _rgb(h: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(h % 1.0, min(max(s, 0), 1), min(max(v, 0), 1)), np.float32) * 255


def _smooth_noise(rng: np.random.Generator, h: int, w: int, scale: float) -> np.ndarray:
    gh, gw = max(2, int(h / scale) + 2), max(2, int(w / scale) + 2)
    grid = rng.random((gh, gw), dtype=np.float32)
    return cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)


def _streaks(rng: np.random.Generator, h: int, w: int, length: int) -> np.ndarray:
    """Zero-mean unit-ish noise smeared along x (brushing, wood fibres)."""
    n = cv2.blur(rng.standard_normal((h, w), dtype=np.float32), (length, 1))
    return n * math.sqrt(length)


def _lighting(rng: np.random.Generator, h: int, w: int, tilt: float = 0.22, vignette: float = 0.6,
              gain_low: float = 0.88, gain_high: float = 1.12) -> np.ndarray:
    """A random lighting gradient (up to `tilt`), vignette (up to `vignette`) and gain (in the range)."""
    X, Y = _coords(h, w)
    a = rng.uniform(0, 2 * np.pi)
    grad = ((X / w - 0.5) * math.cos(a) + (Y / h - 0.5) * math.sin(a)) * 2 * rng.uniform(0, tilt)
    vig = ((X / w - 0.5) ** 2 + (Y / h - 0.5) ** 2) * rng.uniform(0, vignette)
    return (rng.uniform(gain_low, gain_high) * (1 + grad - vig)).astype(np.float32)


def _texture_frame(rng: np.random.Generator, h: int, w: int) -> tuple[int, int, bool]:
    """Paint textures along x, then transpose for a vertical grain half of the time."""
    vertical = bool(rng.random() < 0.5)
    return (w, h, vertical) if vertical else (h, w, vertical)


def _fabric(rng, h, w):
    X, Y = _coords(h, w)
    a = rng.uniform(-0.35, 0.35) + (np.pi / 4 if rng.random() < 0.2 else 0.0)
    p = rng.uniform(3.5, 8.0)
    wob = (_smooth_noise(rng, h, w, 40) - 0.5) * rng.uniform(0, 5)
    u = (X * math.cos(a) + Y * math.sin(a) + wob) / p
    v = (-X * math.sin(a) + Y * math.cos(a) - wob) / p
    over = ((np.floor(u) + np.floor(v)) % 2) == 0
    prof_a, prof_b = np.sin(np.pi * (v - np.floor(v))), np.sin(np.pi * (u - np.floor(u)))
    val = np.where(over, prof_a, prof_b) ** 0.7
    c1 = _rgb(rng.random(), rng.uniform(0.1, 0.7), rng.uniform(0.45, 0.9))
    c2 = c1 if rng.random() < 0.6 else c1 * rng.uniform(0.7, 1.1, 3).astype(np.float32)
    col = np.where(over[..., None], c1, c2)
    fibre = rng.random((h, w), dtype=np.float32) * 0.12
    return col * (0.5 + 0.45 * val + fibre)[..., None], None


def _metal(rng, h, w):
    hh, ww, vertical = _texture_frame(rng, h, w)
    X, _ = _coords(hh, ww)
    val = 1 + rng.uniform(0.02, 0.06) * _streaks(rng, hh, ww, int(rng.integers(25, 90)))
    band = np.exp(-(((X / ww) - rng.uniform(0.1, 0.9)) / rng.uniform(0.1, 0.35)) ** 2)
    val = val + rng.uniform(0.0, 0.25) * band
    g = rng.uniform(110, 205)
    tint = np.array([1.0, 1.0, 1.0], np.float32) + rng.uniform(-0.05, 0.05, 3).astype(np.float32)
    img = (val[..., None] * g * tint).astype(np.float32)
    return (img.transpose(1, 0, 2) if vertical else img), None


def _wood(rng, h, w):
    hh, ww, vertical = _texture_frame(rng, h, w)
    X, Y = _coords(hh, ww)
    # grain bands: gently bending lines along x, with uneven spacing
    warp = (_smooth_noise(rng, hh, ww, rng.uniform(80, 200)) - 0.5) * rng.uniform(10, 60)
    warp = warp + (_smooth_noise(rng, hh, ww, rng.uniform(25, 45)) - 0.5) * rng.uniform(2, 8)
    period = rng.uniform(9, 30)
    v = Y + X * rng.uniform(-0.08, 0.08) + warp
    phase = 2 * np.pi * v / period
    rings = (0.5 + 0.5 * np.sin(phase + 0.8 * np.sin(phase * 0.37))) ** rng.uniform(2.0, 5.0)
    fine = _streaks(rng, hh, ww, int(rng.integers(20, 60))) * 0.04
    light = _rgb(rng.uniform(0.05, 0.11), rng.uniform(0.35, 0.65), rng.uniform(0.55, 0.9))
    dark = light * rng.uniform(0.5, 0.75)
    k = (rings * rng.uniform(0.6, 1.0))[..., None]
    img = (light * (1 - k) + dark * k) * (1 + fine)[..., None]
    return (img.transpose(1, 0, 2) if vertical else img), None


def _leather(rng, h, w):
    n1 = _smooth_noise(rng, h, w, rng.uniform(3, 6))
    n2 = _smooth_noise(rng, h, w, rng.uniform(9, 18))
    creases = np.exp(-((n1 - 0.5) / 0.07) ** 2)
    folds = np.exp(-((n2 - 0.5) / 0.04) ** 2)
    broad = _smooth_noise(rng, h, w, 70) - 0.5
    val = 1 - 0.2 * creases - 0.14 * folds + 0.12 * broad
    hue, sat = rng.choice([(0.07, 0.6), (0.05, 0.7), (0.0, 0.6), (0.6, 0.3), (0.08, 0.1)])
    col = _rgb(hue + rng.uniform(-0.02, 0.02), sat * rng.uniform(0.7, 1.1), rng.uniform(0.25, 0.8))
    return val[..., None] * col, None


def _tile(rng, h, w):
    X, Y = _coords(h, w)
    hue, sat = rng.choice([(0.1, 0.05), (0.1, 0.2), (0.0, 0.0), (0.58, 0.3), (0.05, 0.55), (0.35, 0.25)])
    col = _rgb(hue + rng.uniform(-0.02, 0.02), sat, rng.uniform(0.6, 0.95))
    val = 1 + 0.06 * (_smooth_noise(rng, h, w, 30) - 0.5)
    speck = _smooth_noise(rng, h, w, 2.0) > rng.uniform(0.9, 0.97)
    val = val - 0.18 * speck.astype(np.float32)
    gx, gy = rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.8)
    val = val + rng.uniform(0.0, 0.2) * np.exp(-((X / w - gx) ** 2 + (Y / h - gy) ** 2) / 0.08)
    img = val[..., None] * col
    if rng.random() < 0.4:  # grout lines of a tiled surface
        pitch = rng.uniform(0.7, 1.4) * max(h, w)
        gw = rng.uniform(2, 5)
        grout = (((X + rng.uniform(0, pitch)) % pitch) < gw) | (((Y + rng.uniform(0, pitch)) % pitch) < gw)
        img = np.where(grout[..., None], np.float32(rng.uniform(90, 170)), img)
    return img, None


def _carpet(rng, h, w):
    fibre = cv2.GaussianBlur(rng.random((h, w), dtype=np.float32), (3, 3), 0.8)
    tufts = _smooth_noise(rng, h, w, rng.uniform(2.5, 4.5))
    val = 0.6 + 0.3 * tufts + 0.5 * (fibre - 0.5)
    col = _rgb(rng.random(), rng.uniform(0.15, 0.6), rng.uniform(0.3, 0.75))
    img = val[..., None] * col
    if rng.random() < 0.4:  # a woven-in stripe or check pattern
        X, Y = _coords(h, w)
        pitch = rng.uniform(20, 60)
        pat = (np.sin(2 * np.pi * X / pitch) > 0) ^ ((np.sin(2 * np.pi * Y / pitch) > 0) & (rng.random() < 0.5))
        img = np.where(pat[..., None], img * rng.uniform(0.7, 0.9), img)
    return img, None


def _backdrop(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    base = [(0.0, 0.0, 0.15), (0.0, 0.0, 0.06), (0.0, 0.0, 0.8), (0.6, 0.2, 0.45),
            (0.1, 0.15, 0.7), (0.0, 0.0, 0.5)][int(rng.integers(6))]
    col = _rgb(base[0], base[1], base[2] * rng.uniform(0.85, 1.15))
    mottle = 1 + 0.05 * (_smooth_noise(rng, h, w, 50) - 0.5)
    return mottle[..., None] * col


def _place(rng, h, w, bg, obj, cov, shadow_px: float):
    """Composite an object over the backdrop with a soft drop shadow."""
    if shadow_px >= 1:
        k = int(shadow_px) * 2 + 1
        sh = cv2.GaussianBlur(cov, (k, k), 0)
        off = int(rng.integers(1, int(shadow_px) + 1)), int(rng.integers(1, int(shadow_px) + 1))
        sh = np.roll(sh, off, (0, 1))
        bg = bg * (1 - 0.45 * sh)[..., None]
    return bg * (1 - cov[..., None]) + obj * cov[..., None], cov


def _metal_colour(rng) -> np.ndarray:
    choice = int(rng.integers(5))
    if choice == 0:
        return _rgb(0.1, rng.uniform(0.35, 0.6), rng.uniform(0.65, 0.85))  # brass
    if choice == 1:
        return _rgb(0.6, 0.03, rng.uniform(0.2, 0.3))  # black oxide
    if choice == 2:
        return _rgb(0.06, 0.5, rng.uniform(0.6, 0.8))  # copper
    return _rgb(0.58, rng.uniform(0.0, 0.08), rng.uniform(0.6, 0.85))  # steel / zinc


def _washer(rng, h, w):
    X, Y = _coords(h, w)
    m = min(h, w)
    cx, cy = w / 2 + rng.uniform(-0.08, 0.08) * w, h / 2 + rng.uniform(-0.08, 0.08) * h
    R = rng.uniform(0.28, 0.4) * m
    r = R * rng.uniform(0.3, 0.6)
    t, e = rng.uniform(0, np.pi), rng.uniform(0.85, 1.0)
    dx, dy = X - cx, Y - cy
    u = dx * math.cos(t) + dy * math.sin(t)
    v = (-dx * math.sin(t) + dy * math.cos(t)) / e
    d = np.sqrt(u * u + v * v)
    cov = (np.clip(R - d + 0.5, 0, 1) * np.clip(d - r + 0.5, 0, 1)).astype(np.float32)
    theta = np.arctan2(v, u)
    la = rng.uniform(0, 2 * np.pi)
    mid = (d - r) / (R - r)
    shade = 0.85 + 0.18 * np.cos(theta - la) * (mid - 0.5) * 2
    shade = shade + 0.035 * np.sin(d * 2 * np.pi / rng.uniform(2.0, 4.0))  # machining rings
    bevel = np.exp(-((d - R + 2.5) / 1.5) ** 2) + np.exp(-((d - r - 2.5) / 1.5) ** 2)
    shade = shade + rng.uniform(0.1, 0.35) * bevel
    obj = shade[..., None] * _metal_colour(rng)
    return _place(rng, h, w, _backdrop(rng, h, w), obj, cov, rng.uniform(0, 6))


def _bottle(rng, h, w):
    X, Y = _coords(h, w)
    m = min(h, w)
    cx, cy = w / 2 + rng.uniform(-0.05, 0.05) * w, h / 2 + rng.uniform(-0.05, 0.05) * h
    R = rng.uniform(0.36, 0.47) * m
    d = np.sqrt((X - cx) ** 2 + (Y - cy) ** 2)
    cov = np.clip(R - d + 0.5, 0, 1).astype(np.float32)
    glass = [_rgb(0.08, 0.8, 0.3), _rgb(0.33, 0.6, 0.3), _rgb(0.5, 0.05, 0.55)][int(rng.integers(3))]
    r1 = R * rng.uniform(0.42, 0.58)
    lip = R * rng.uniform(0.07, 0.13)
    dn = d / R
    body = 0.5 + 0.5 * dn ** 2 + 0.6 * np.exp(-((d - R * 0.93) / (R * 0.04)) ** 2)
    ring = np.exp(-((d - r1) / lip) ** 2)
    mouth = np.clip(d / (r1 - lip), 0, 1) ** 2
    shade = np.where(d < r1 - lip, 0.12 + 0.5 * mouth, body) + 1.2 * ring
    shade = shade * (1 + 0.08 * np.cos(np.arctan2(Y - cy, X - cx) * int(rng.integers(1, 4)) + rng.uniform(0, 6)))
    obj = shade[..., None] * glass
    return _place(rng, h, w, _backdrop(rng, h, w), obj, cov, 0)


def _screw(rng, h, w):
    X, Y = _coords(h, w)
    m = min(h, w)
    L = rng.uniform(0.55, 0.85) * m
    wd = L * rng.uniform(0.1, 0.16)
    a = rng.uniform(0, 2 * np.pi)
    slack_x, slack_y = max(0.0, w / 2 - L / 2 - 4), max(0.0, h / 2 - L / 2 - 4)
    cx, cy = w / 2 + rng.uniform(-slack_x, slack_x + 1e-6), h / 2 + rng.uniform(-slack_y, slack_y + 1e-6)
    s = (X - cx) * math.cos(a) + (Y - cy) * math.sin(a)
    t = -(X - cx) * math.sin(a) + (Y - cy) * math.cos(a)
    head_len, head_w = wd * rng.uniform(0.5, 0.9), wd * rng.uniform(1.6, 2.2)
    s0, s2 = -L / 2, L / 2
    s1 = s0 + head_len
    tip = L * rng.uniform(0.1, 0.18)
    hw = np.where(s < s2 - tip, wd / 2, wd / 2 * (0.15 + 0.85 * (s2 - s) / tip))
    shaft = np.clip(hw - np.abs(t) + 0.5, 0, 1) * np.clip(s - s1 + 0.5, 0, 1) * np.clip(s2 - s + 0.5, 0, 1)
    hd = ((s - s1) / head_len) ** 2 + (t / (head_w / 2)) ** 2
    head = np.clip((1 - hd) * head_w / 4 + 0.5, 0, 1) * (s <= s1 + 0.5)
    cov = np.maximum(shaft, head).astype(np.float32)
    cyl = np.sqrt(np.clip(1 - (t / np.maximum(hw, 1e-3)) ** 2, 0, 1))
    pitch = wd * rng.uniform(0.3, 0.5)
    thread = 0.5 + 0.5 * np.sin(2 * np.pi * (s + t * 0.4) / pitch)
    threaded = s > s1 + (s2 - s1) * rng.uniform(0.0, 0.4)
    shade_shaft = (0.45 + 0.6 * cyl) * np.where(threaded, 0.7 + 0.3 * thread, 1.0)
    shade_head = 0.5 + 0.6 * np.sqrt(np.clip(1 - hd, 0, 1))
    shade = np.where(head > shaft, shade_head, shade_shaft)
    obj = shade[..., None] * _metal_colour(rng)
    return _place(rng, h, w, _backdrop(rng, h, w), obj, cov, rng.uniform(1, 5))


_MASKS = [(40, 105, 55), (30, 60, 130), (25, 25, 30), (120, 30, 30), (25, 85, 45)]


def _pcb(rng, h, w):
    board = np.array(_MASKS[int(rng.integers(len(_MASKS)))], np.float32) * rng.uniform(0.85, 1.15)
    bg = _backdrop(rng, h, w)
    bgc = tuple(float(c) for c in bg[h // 2, w // 2])
    img = np.empty((h, w, 3), np.uint8)
    img[:] = np.clip(bgc, 0, 255).astype(np.uint8)
    margin = 0 if rng.random() < 0.35 else rng.uniform(0.04, 0.12)
    bx0, by0 = int(margin * w), int(margin * h)
    bx1, by1 = w - 1 - bx0, h - 1 - by0
    cov = np.zeros((h, w), np.uint8)
    cv2.rectangle(cov, (bx0, by0), (bx1, by1), 255, -1)
    cv2.rectangle(img, (bx0, by0), (bx1, by1), tuple(float(c) for c in board), -1)
    trace = tuple(float(c) for c in np.clip(board * 1.35 + 10, 0, 255))
    gold = (200, 165, 60) if rng.random() < 0.6 else (190, 190, 195)
    bw, bh = bx1 - bx0, by1 - by0
    for _ in range(int(rng.integers(8, 22))):
        p = np.array([rng.uniform(bx0, bx1), rng.uniform(by0, by1)])
        pts = [p.copy()]
        for _ in range(int(rng.integers(2, 5))):
            axis = int(rng.integers(2))
            p[axis] = np.clip(p[axis] + rng.uniform(-0.4, 0.4) * (bw, bh)[axis], (bx0, by0)[axis], (bx1, by1)[axis])
            pts.append(p.copy())
        arr = np.round(np.array(pts)).astype(np.int32)
        cv2.polylines(img, [arr], False, trace, int(rng.integers(1, 3)))
        for q in (arr[0], arr[-1]):
            cv2.circle(img, (int(q[0]), int(q[1])), int(rng.integers(2, 4)), gold, -1)
    for _ in range(int(rng.integers(2, 7))):
        cw, ch = int(rng.uniform(0.06, 0.25) * bw) + 4, int(rng.uniform(0.05, 0.2) * bh) + 4
        x, y = int(rng.uniform(bx0, max(bx0 + 1, bx1 - cw))), int(rng.uniform(by0, max(by0 + 1, by1 - ch)))
        kind = rng.random()
        if kind < 0.45:  # IC with pins along two sides
            for px in range(x + 2, x + cw - 2, 4):
                cv2.rectangle(img, (px, y - 3), (px + 1, y + ch + 2), (190, 190, 190), -1)
            cv2.rectangle(img, (x, y), (x + cw, y + ch), (22, 22, 24), -1)
            cv2.circle(img, (x + 4, y + 4), 1, (150, 150, 150), -1)
        elif kind < 0.75:  # resistor / small passive
            cv2.rectangle(img, (x, y), (x + max(4, cw // 3), y + max(3, ch // 3)), gold, -1)
            cv2.rectangle(img, (x + 2, y), (x + max(4, cw // 3) - 2, y + max(3, ch // 3)),
                          (40, 40, 40) if rng.random() < 0.5 else (200, 180, 140), -1)
        else:  # electrolytic capacitor seen from above
            rr = max(3, min(cw, ch) // 2)
            cv2.circle(img, (x + rr, y + rr), rr, (60, 60, 150) if rng.random() < 0.5 else (30, 30, 30), -1)
            cv2.circle(img, (x + rr, y + rr), rr, (200, 200, 205), 1)
        cv2.rectangle(img, (x - 3, y - 5), (x + cw + 3, y + ch + 5), (235, 235, 235), 1)  # silkscreen
    angle = 0.0 if margin == 0 else rng.uniform(-6, 6)
    M = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    img = cv2.warpAffine(img, M, (w, h), flags=cv2.INTER_LINEAR, borderValue=bgc)
    covf = cv2.warpAffine(cov, M, (w, h), flags=cv2.INTER_LINEAR).astype(np.float32) / 255
    out = img.astype(np.float32)
    out = np.where(covf[..., None] > 0.5, out, bg)
    return out, covf


_CAPSULE_COLOURS = [(0.0, 0.75, 0.8), (0.0, 0.0, 0.95), (0.14, 0.7, 0.95), (0.6, 0.6, 0.75),
                    (0.33, 0.55, 0.7), (0.07, 0.8, 0.95), (0.08, 0.6, 0.45)]


def _capsule(rng, h, w):
    X, Y = _coords(h, w)
    m = min(h, w)
    L = rng.uniform(0.5, 0.8) * m
    r = L * rng.uniform(0.16, 0.24)
    a = rng.uniform(0, 2 * np.pi)
    slack_x, slack_y = max(0.0, w / 2 - L / 2 - 4), max(0.0, h / 2 - L / 2 - 4)
    cx, cy = w / 2 + rng.uniform(-slack_x, slack_x + 1e-6), h / 2 + rng.uniform(-slack_y, slack_y + 1e-6)
    s = (X - cx) * math.cos(a) + (Y - cy) * math.sin(a)
    t = -(X - cx) * math.sin(a) + (Y - cy) * math.cos(a)
    ds = np.clip(np.abs(s) - (L / 2 - r), 0, None)
    d = np.sqrt(ds * ds + t * t)
    cov = np.clip(r - d + 0.5, 0, 1).astype(np.float32)
    z = np.sqrt(np.clip(1 - (d / r) ** 2, 0, 1))
    shade = 0.5 + 0.5 * z
    spec = 0.7 * np.exp(-((t + r * 0.35) / (r * 0.15)) ** 2) * (np.abs(s) < L / 2 - r * 0.4)
    i, j = rng.choice(len(_CAPSULE_COLOURS), 2, replace=False)
    c1 = _rgb(*_CAPSULE_COLOURS[i])
    c2 = c1 if rng.random() < 0.3 else _rgb(*_CAPSULE_COLOURS[j])
    seam = rng.uniform(-0.1, 0.1) * L
    col = np.where((s < seam)[..., None], c1, c2)
    seam_line = 1 - 0.25 * np.exp(-((s - seam) / 1.0) ** 2)
    obj = col * (shade * seam_line)[..., None] + (255 * spec)[..., None]
    return _place(rng, h, w, _backdrop(rng, h, w), obj, cov, rng.uniform(1, 5))


PRODUCT_KINDS: dict[str, ProductKind] = {
    k.name: k for k in (
        ProductKind("fabric", "woven fabric", "an even weave of crossing threads", False, False, _fabric),
        ProductKind("metal", "brushed metal plate", "fine parallel brushing lines with an even sheen",
                    False, False, _metal),
        ProductKind("wood", "wood panel", "smooth grain running in flowing bands", False, False, _wood),
        ProductKind("leather", "leather", "a fine, even grain of small creases", False, False, _leather),
        ProductKind("tile", "ceramic tile", "a smooth glaze with fine speckles", False, False, _tile),
        ProductKind("carpet", "carpet", "a dense, even pile of fibres", False, False, _carpet),
        ProductKind("washer", "metal washer", "a flat ring with clean round edges", True, True, _washer),
        ProductKind("bottle", "bottle", "concentric glass rims around a dark mouth, seen from above",
                    True, True, _bottle),
        ProductKind("screw", "screw", "a straight threaded shaft and a smooth head", True, False, _screw),
        ProductKind("pcb", "circuit board", "neat traces, pads and components on a solder mask",
                    True, False, _pcb),
        ProductKind("capsule", "capsule", "a smooth, glossy shell with a neat seam", True, False, _capsule),
    )
}
