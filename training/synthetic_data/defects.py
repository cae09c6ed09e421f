"""Synthetic defects painted onto any RGB image (procedural renders or a user's good photos).

Each defect is rendered inside a square region of interest as an opacity map ``alpha`` and a
``target`` appearance; the result is ``image * (1 - alpha) + target * alpha`` and the mask is
exactly the set of pixels with non-zero alpha, so mask, box and changed pixels agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np
from PIL import Image

from lriad_desktop.core.defect_kinds import DEFECT_LABELS

_MIN_BOX_SIDE = 4
_ALPHA_FLOOR = 0.1  # opacity below this is dropped, so the mask holds only visible change


@dataclass(frozen=True)
class Defect:
    """One defect as an inspector would describe it."""

    label: str
    box: tuple[int, int, int, int]  # x1, y1, x2, y2 in original pixels, inclusive-exclusive
    appearance: str  # short phrase, e.g. "a thin dark line"
    severity: str  # "subtle" | "obvious"


@dataclass(frozen=True)
class _Site:
    """Where and how large one defect is, in region-of-interest coordinates."""

    cx: float
    cy: float
    size: float  # overall extent of the defect in pixels
    strength: float  # 0..1 blend strength (subtle < obvious)


_Render = Callable[[np.ndarray, _Site, np.random.Generator, "_Context"], tuple[np.ndarray, np.ndarray, str]]


@dataclass(frozen=True)
class _Context:
    """Whole-image facts some defects need (texture donors, background colour)."""

    image: np.ndarray  # H x W x 3 uint8, the untouched input
    object_mask: np.ndarray | None  # H x W bool
    roi: tuple[int, int, int, int]  # x0, y0, x1, y1 of the region being painted


@dataclass(frozen=True)
class Renderer:
    """How one defect kind is painted: the function, and the extent it is drawn at."""

    paint: _Render
    reach: float  # how far the defect reaches beyond size/2, as a factor
    size_range: tuple[float, float]  # fraction of the reference side, before log-uniform sampling
    opaque: bool = False  # material is either there or not: subtle means small, not faint


RENDERERS: dict[str, Renderer] = {}  # defect label (`core.defect_kinds`) → its renderer


def renders(label: str, reach: float, size_range: tuple[float, float],
            opaque: bool = False) -> Callable[[_Render], _Render]:
    """Register the decorated function as the renderer of defect kind `label`."""
    def register(paint: _Render) -> _Render:
        RENDERERS[label] = Renderer(paint, reach, size_range, opaque)
        return paint
    return register


def _tone(rng: np.random.Generator, roi: np.ndarray, p_dark: float = 0.6) -> str:
    """Dark or light marking, chosen so that it shows against the local surface."""
    lum = float(roi.mean())
    dark = lum > 200 or (lum >= 70 and rng.random() < p_dark)
    return "dark" if dark else str(rng.choice(["bright", "light", "pale"]))


def _shade(roi: np.ndarray, tone: str, amount: float) -> np.ndarray:
    """Darken (tone 'dark') or lighten ``roi`` by ``amount`` (0..1)."""
    if tone == "dark":
        return roi * (1.0 - amount)
    return roi + (255.0 - roi) * amount


def _smooth_noise(rng: np.random.Generator, h: int, w: int, scale: float) -> np.ndarray:
    """Value noise in [0, 1] with features about ``scale`` pixels wide."""
    gh, gw = max(2, int(h / scale) + 2), max(2, int(w / scale) + 2)
    grid = rng.random((gh, gw), dtype=np.float32)
    return cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC).clip(0.0, 1.0)


def _blob(rng: np.random.Generator, h: int, w: int, site: _Site, roughness: float) -> np.ndarray:
    """Irregular soft blob (thresholded smooth noise under a radial falloff), values 0..1."""
    ys, xs = np.ogrid[:h, :w]
    ax = site.size / 2 * rng.uniform(0.7, 1.0)
    ay = ax * rng.uniform(0.5, 1.0)
    t = rng.uniform(0, np.pi)
    dx, dy = xs - site.cx, ys - site.cy
    u = (dx * np.cos(t) + dy * np.sin(t)) / ax
    v = (-dx * np.sin(t) + dy * np.cos(t)) / ay
    radial = 1.0 - (u * u + v * v)
    noise = _smooth_noise(rng, h, w, max(2.0, site.size / rng.uniform(3, 7)))
    field = radial.astype(np.float32) + roughness * (noise - 0.5) * 2
    hard = (field > 0).astype(np.float32)
    k = max(1, int(site.size / 25)) * 2 + 1
    return cv2.GaussianBlur(hard, (k, k), 0)


def _bezier(p: np.ndarray, n: int) -> np.ndarray:
    t = np.linspace(0.0, 1.0, n)[:, None]
    return ((1 - t) ** 3 * p[0] + 3 * (1 - t) ** 2 * t * p[1]
            + 3 * (1 - t) * t ** 2 * p[2] + t ** 3 * p[3])


def _draw_lines(h: int, w: int, paths: list[np.ndarray], widths: list[int]) -> np.ndarray:
    """Antialiased polylines as an opacity map in [0, 1]."""
    canvas = np.zeros((h, w), np.uint8)
    for pts, width in zip(paths, widths):
        fixed = np.round(pts * 16).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(canvas, [fixed], False, 255, int(width), cv2.LINE_AA, shift=4)
    return canvas.astype(np.float32) / 255.0


@renders("scratch", 1.3, (0.12, 0.5))
def _scratch(roi: np.ndarray, site: _Site, rng: np.random.Generator, ctx: _Context):
    h, w = roi.shape[:2]
    strokes = 1 if rng.random() < 0.75 else int(rng.integers(2, 4))
    thick = rng.random() < 0.35
    angle = rng.uniform(0, np.pi)
    d = np.array([np.cos(angle), np.sin(angle)])
    n = np.array([-d[1], d[0]])
    c = np.array([site.cx, site.cy])
    paths, widths = [], []
    for i in range(strokes):
        half = site.size / 2 * rng.uniform(0.6, 1.0)
        off = c + n * (i - (strokes - 1) / 2) * rng.uniform(3, 6)
        bend = site.size * rng.uniform(-0.25, 0.25, 2)
        pts = np.stack([off - d * half, off - d * half / 3 + n * bend[0],
                        off + d * half / 3 + n * bend[1], off + d * half])
        paths.append(_bezier(pts, 24))
        widths.append(int(rng.integers(2, 5)) if thick else 1)
    alpha = _draw_lines(h, w, paths, widths)
    if not thick:
        alpha = np.minimum(1.0, alpha * 1.6)  # 1-px antialiased lines would otherwise be faint
    tone = _tone(rng, roi)
    target = _shade(roi, tone, rng.uniform(0.55, 0.8))
    if strokes > 1:
        what = f"several fine {tone} lines"
    elif thick:
        what = str(rng.choice([f"a thick {tone} groove", f"a wide {tone} streak"]))
    else:
        what = str(rng.choice([f"a thin {tone} line", f"a long thin {tone} streak",
                               f"a fine curved {tone} line"]))
    return alpha, target, what


@renders("crack", 1.3, (0.12, 0.45))
def _crack(roi: np.ndarray, site: _Site, rng: np.random.Generator, ctx: _Context):
    h, w = roi.shape[:2]
    heading = rng.uniform(0, 2 * np.pi)
    steps = int(rng.integers(10, 18))
    step = site.size / steps
    p = np.array([site.cx, site.cy]) - site.size / 2 * np.array([np.cos(heading), np.sin(heading)])
    main = [p.copy()]
    for _ in range(steps):
        a = heading + rng.uniform(-0.7, 0.7)
        p = p + step * np.array([np.cos(a), np.sin(a)])
        main.append(p.copy())
    main_arr = np.array(main)
    paths, widths = [main_arr], [int(rng.integers(1, 4))]
    for _ in range(int(rng.integers(1, 4))):
        q = main_arr[int(rng.integers(2, len(main_arr) - 2))].copy()
        a0 = heading + rng.choice([-1, 1]) * rng.uniform(0.5, 1.2)
        branch = [q.copy()]
        for _ in range(int(rng.integers(3, 7))):
            a = a0 + rng.uniform(-0.6, 0.6)
            q = q + step * 0.8 * np.array([np.cos(a), np.sin(a)])
            branch.append(q.copy())
        paths.append(np.array(branch))
        widths.append(1)
    alpha = np.minimum(1.0, _draw_lines(h, w, paths, widths) * 1.5)
    tone = _tone(rng, roi, p_dark=1.0)
    target = _shade(roi, tone, rng.uniform(0.75, 0.92) if tone == "dark" else rng.uniform(0.5, 0.7))
    what = str(rng.choice([f"a jagged {tone} line with branches", f"a thin branching {tone} fissure",
                           f"a zigzag {tone} line that splits"]))
    return alpha, target, what


@renders("hole", 1.4, (0.04, 0.2))
def _hole(roi: np.ndarray, site: _Site, rng: np.random.Generator, ctx: _Context):
    h, w = roi.shape[:2]
    ys, xs = np.ogrid[:h, :w]
    a = max(2.5, site.size / 2 * rng.uniform(0.55, 1.0))
    b = a * rng.uniform(0.6, 1.0)
    t = rng.uniform(0, np.pi)
    dx, dy = xs - site.cx, ys - site.cy
    u = (dx * np.cos(t) + dy * np.sin(t)) / a
    v = (-dx * np.sin(t) + dy * np.cos(t)) / b
    r = np.sqrt(u * u + v * v).astype(np.float32)
    rim = max(1.5, 0.25 * a)
    inside = np.clip((1.0 - r) * b + 0.5, 0, 1)
    ring = np.clip((1.0 + rim / a - r) * b + 0.5, 0, 1)
    light = rng.uniform(0, 2 * np.pi)
    lit = ((dx * np.cos(light) + dy * np.sin(light)) / a).astype(np.float32)
    dark = roi * (0.06 + 0.12 * np.clip(lit, 0, 1))[..., None] + 6
    bright = _shade(roi, "bright", 0.45) * np.clip(0.8 - 0.4 * lit, 0.4, 1.2)[..., None]
    target = np.where((inside > 0.5)[..., None], dark, bright)
    alpha = np.maximum(inside, ring * 0.85)
    shape = "oval" if b < 0.8 * a else "round"
    what = str(rng.choice([f"a dark {shape} hole", "a small dark pit with a bright rim",
                           f"a dark {shape} opening with a lighter rim"]))
    return alpha, target, what


_STAINS = {
    "brown": (95, 62, 30), "black": (28, 26, 24), "whitish": (232, 230, 218),
    "rusty orange": (172, 84, 32), "greenish": (70, 120, 55), "greyish": (120, 120, 118),
}


@renders("contamination", 1.3, (0.05, 0.3))
def _contamination(roi: np.ndarray, site: _Site, rng: np.random.Generator, ctx: _Context):
    h, w = roi.shape[:2]
    alpha = _blob(rng, h, w, site, roughness=rng.uniform(0.4, 0.9))
    grain = _smooth_noise(rng, h, w, max(2.0, site.size / 10))[..., None]
    mode = rng.random()
    if mode < 0.55:
        name = str(rng.choice(list(_STAINS)))
        colour = np.array(_STAINS[name], np.float32)
        if rng.random() < 0.5:  # translucent stain keeps the surface shading underneath
            lum = roi.mean(axis=2, keepdims=True) / 128.0
            target = colour * (0.6 + 0.4 * lum) * (0.8 + 0.4 * grain)
        else:
            target = colour * (0.75 + 0.5 * grain)
        what = str(rng.choice([f"an irregular {name} stain", f"a {name} smudge",
                               f"a {name} speck of foreign matter", f"a {name} residue"]))
    elif mode < 0.8:
        img = ctx.image
        H, W = img.shape[:2]
        x0 = int(rng.integers(0, max(1, W - w + 1)))
        y0 = int(rng.integers(0, max(1, H - h + 1)))
        patch = img[y0:y0 + h, x0:x0 + w].astype(np.float32)
        patch = cv2.resize(patch, (w, h)) if patch.shape[:2] != (h, w) else patch
        if rng.random() < 0.5:
            patch = patch[::-1, ::-1]
        patch = patch[..., rng.permutation(3)]  # foreign tint so a uniform donor still shows
        gain, bias = rng.uniform(0.5, 1.5), rng.uniform(-50, 50)
        target = (patch - 128) * gain + 128 + bias
        what = str(rng.choice(["a patch of foreign texture", "an out-of-place patch of different texture"]))
    else:
        period = rng.uniform(2.5, 7)
        ys, xs = np.ogrid[:h, :w]
        a = rng.uniform(0, np.pi)
        stripes = 0.5 + 0.5 * np.sin((xs * np.cos(a) + ys * np.sin(a)) * 2 * np.pi / period)
        colour = rng.uniform(20, 235, 3).astype(np.float32)
        target = colour * (0.55 + 0.45 * stripes[..., None]).astype(np.float32) * (0.8 + 0.4 * grain)
        what = str(rng.choice(["a fibrous foreign patch", "a stuck-on piece of foreign material"]))
    return alpha, target, what


_BACKDROPS = ((30, 30, 32), (14, 14, 14), (225, 225, 222), (90, 92, 96), (160, 150, 135))


def _background_colour(ctx: _Context, rng: np.random.Generator) -> np.ndarray:
    if ctx.object_mask is not None and not ctx.object_mask.all():
        outside = ctx.image[~ctx.object_mask]
        return np.median(outside[:: max(1, len(outside) // 2000)], axis=0).astype(np.float32)
    return np.array(_BACKDROPS[int(rng.integers(len(_BACKDROPS)))], np.float32)


@renders("missing_part", 1.1, (0.1, 0.35), opaque=True)
def _missing_part(roi: np.ndarray, site: _Site, rng: np.random.Generator, ctx: _Context):
    h, w = roi.shape[:2]
    k = int(rng.integers(6, 11))
    ang = np.sort(rng.uniform(0, 2 * np.pi, k))
    rad = site.size / 2 * rng.uniform(0.55, 1.0, k)
    pts = np.stack([site.cx + rad * np.cos(ang), site.cy + rad * np.sin(ang)], 1)
    canvas = np.zeros((h, w), np.uint8)
    cv2.fillPoly(canvas, [np.round(pts * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
    alpha = canvas.astype(np.float32) / 255.0
    bg = _background_colour(ctx, rng)
    noise = _smooth_noise(rng, h, w, 3.0)[..., None]
    target = bg * (0.92 + 0.16 * noise)
    # a thin shadow along the cut edge, as torn or broken material casts
    edge = cv2.GaussianBlur(alpha, (5, 5), 0) - cv2.erode(alpha, np.ones((3, 3), np.uint8))
    target = target * (1.0 - 0.5 * np.clip(edge, 0, 1)[..., None])
    what = str(rng.choice(["a chunk of material is gone", "a notch broken out of the material",
                           "a cut-out area where the background shows through"]))
    return alpha, target, what


@renders("deformation", 1.5, (0.12, 0.35))
def _deformation(roi: np.ndarray, site: _Site, rng: np.random.Generator, ctx: _Context):
    h, w = roi.shape[:2]
    ys, xs = np.mgrid[:h, :w].astype(np.float32)
    dx, dy = xs - site.cx, ys - site.cy
    sigma = max(2.0, site.size / 2.6)
    fall = np.exp(-(dx * dx + dy * dy) / (2 * sigma * sigma)).astype(np.float32)
    amp = site.size * rng.uniform(0.12, 0.28) * (0.5 + 0.5 * site.strength)
    kind = int(rng.integers(3))
    if kind == 0:  # bulge or dent: pull samples toward/away from the centre
        s = amp / sigma * rng.choice([-1.0, 1.0])
        mx, my = xs - s * dx * fall, ys - s * dy * fall
        what = str(rng.choice(["a dent that distorts the surface", "a bulging, warped area"]))
    elif kind == 1:  # swirl
        a = amp / sigma * 1.5 * fall * rng.choice([-1.0, 1.0])
        mx = site.cx + dx * np.cos(a) - dy * np.sin(a)
        my = site.cy + dx * np.sin(a) + dy * np.cos(a)
        what = str(rng.choice(["a twisted, distorted patch", "a region bent out of shape"]))
    else:  # ripple along one direction
        t = rng.uniform(0, np.pi)
        wave = np.sin((dx * np.cos(t) + dy * np.sin(t)) * 2 * np.pi / max(4.0, sigma))
        mx, my = xs + amp * 0.5 * wave * fall * -np.sin(t), ys + amp * 0.5 * wave * fall * np.cos(t)
        what = str(rng.choice(["a wavy, buckled area", "a rippled, bent region"]))
    warped = cv2.remap(roi, mx.astype(np.float32), my.astype(np.float32),
                       cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    light = rng.uniform(0, 2 * np.pi)
    slope = -(dx * np.cos(light) + dy * np.sin(light)) / sigma * fall  # dent shading
    target = warped * (1.0 + 0.5 * np.clip(slope, -1, 1))[..., None]
    alpha = np.clip(fall * 2.0 - 0.55, 0, 1)
    return alpha, target, what


_INKS = {"blue": (50, 80, 220), "red": (230, 40, 45), "purple": (140, 50, 180), "green": (40, 160, 70)}
_TINTS = {"reddish": (1.35, 0.8, 0.75), "yellowish": (1.25, 1.15, 0.6), "bluish": (0.75, 0.9, 1.35),
          "greenish": (0.8, 1.25, 0.8)}


@renders("color", 1.6, (0.1, 0.35))
def _color(roi: np.ndarray, site: _Site, rng: np.random.Generator, ctx: _Context):
    h, w = roi.shape[:2]
    mode = rng.random()
    if mode < 0.3:
        alpha = _blob(rng, h, w, site, roughness=rng.uniform(0.1, 0.35))
        name = str(rng.choice(list(_INKS)))
        ink = np.array(_INKS[name], np.float32) / 255.0
        # printed ink absorbs light: multiply, so the surface texture still shows through
        target = np.maximum(roi, 90.0) * ink * rng.uniform(0.8, 1.1)
        alpha = alpha * rng.uniform(0.8, 0.95)
        what = f"a {name} ink blot"
    else:
        alpha = _blob(rng, h, w, site, roughness=rng.uniform(0.05, 0.3))
        k = max(3, int(site.size / 6)) * 2 + 1
        alpha = cv2.GaussianBlur(alpha, (k, k), 0)
        alpha = np.clip(alpha * 1.4, 0, 1)
        if mode < 0.7:
            name = str(rng.choice(list(_TINTS)))
            lum = roi.mean(axis=2, keepdims=True)
            target = np.maximum(lum, 60) * np.array(_TINTS[name], np.float32)
            what = str(rng.choice([f"a {name} discoloured patch", f"a {name} tint in one area"]))
        elif mode < 0.85:
            target = _shade(roi, "bright", rng.uniform(0.45, 0.7))
            what = str(rng.choice(["a faded pale area", "a bleached, lighter patch"]))
        else:
            target = roi * rng.uniform(0.35, 0.55)
            what = str(rng.choice(["a darker discoloured area", "a dull darkened patch"]))
    return alpha, target, what


_UNPAINTED = [label for label in DEFECT_LABELS if label not in RENDERERS]
if _UNPAINTED:  # a kind declared in core.defect_kinds needs a renderer here
    raise RuntimeError(f"no renderer for defect kind(s) {_UNPAINTED}: add one with @renders")


def _pick_site(rng: np.random.Generator, label: str, obj: np.ndarray | None,
               h: int, w: int, grow: float) -> tuple[float, float, float]:
    """Centre (x, y) and extent in image pixels, on the object when a mask is given."""
    lo, hi = RENDERERS[label].size_range
    if obj is None:
        ref = float(min(h, w))
    else:
        ys, xs = np.nonzero(obj[:: 4, :: 4])
        ref = float(max(np.ptp(xs) if len(xs) else 1, np.ptp(ys) if len(ys) else 1) * 4 + 4)
        ref = min(ref, float(min(h, w)))
    size = max(6.0, ref * float(np.exp(rng.uniform(np.log(lo), np.log(hi)))) * grow)
    if obj is None:
        m = 0.15 * size
        return rng.uniform(m, w - m), rng.uniform(m, h - m), size
    region = obj
    if label == "missing_part" and rng.random() < 0.9:  # parts lose material at their outline
        edge = obj & ~cv2.erode(obj.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
        region = edge if edge.any() else obj
    idx = np.flatnonzero(region)
    i = int(idx[int(rng.integers(len(idx)))])
    return float(i % w) + rng.uniform(-0.5, 0.5), float(i // w) + rng.uniform(-0.5, 0.5), size


def _bbox(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if len(rows) == 0:
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def synthesize_defect(
    image: Image.Image,
    rng: np.random.Generator,
    label: str | None = None,
    object_mask: np.ndarray | None = None,
) -> tuple[Image.Image, np.ndarray, Defect]:
    """Paint one synthetic defect onto ``image``.

    Works on any RGB image. When ``object_mask`` (H x W, non-zero on the object) is given, the
    defect lies entirely on the object. Returns the new image, the defect mask (H x W uint8,
    255 where pixels were painted) and the :class:`Defect` whose box is the mask's tight box.
    """
    if label is None:
        label = DEFECT_LABELS[int(rng.integers(len(DEFECT_LABELS)))]
    if label not in RENDERERS:
        raise ValueError(f"unknown defect label {label!r}; expected one of {DEFECT_LABELS}")
    arr = np.asarray(image.convert("RGB"), dtype=np.uint8)
    h, w = arr.shape[:2]
    obj = None
    if object_mask is not None:
        obj = np.asarray(object_mask) > 0
        if obj.shape != (h, w):
            raise ValueError(f"object_mask shape {obj.shape} does not match image {(h, w)}")
        if obj.sum() < 16:
            raise ValueError("object_mask covers fewer than 16 pixels")
    renderer = RENDERERS[label]
    render, reach = renderer.paint, renderer.reach
    subtle = rng.random() < 0.3
    opaque = renderer.opaque
    for attempt in range(12):
        grow = (0.6 if subtle and opaque else 1.0) + 0.25 * attempt
        cx, cy, size = _pick_site(rng, label, obj, h, w, grow=grow)
        ext = int(np.ceil(size / 2 * reach)) + 3
        x0, y0 = max(0, int(cx) - ext), max(0, int(cy) - ext)
        x1, y1 = min(w, int(cx) + ext + 1), min(h, int(cy) + ext + 1)
        strength = float(rng.uniform(0.4, 0.6) if subtle and not opaque else rng.uniform(0.85, 1.0))
        site = _Site(cx - x0, cy - y0, size, strength)
        roi = arr[y0:y1, x0:x1].astype(np.float32)
        ctx = _Context(arr, obj, (x0, y0, x1, y1))
        alpha, target, appearance = render(roi, site, rng, ctx)
        alpha = alpha.astype(np.float32) * strength
        if obj is not None:
            alpha *= obj[y0:y1, x0:x1]
        keep = alpha >= _ALPHA_FLOOR
        box = _bbox(keep)
        if box is None or keep.sum() < 12:
            continue
        if box[2] - box[0] < _MIN_BOX_SIDE or box[3] - box[1] < _MIN_BOX_SIDE:
            continue
        alpha = np.where(keep, alpha, 0.0)[..., None]
        out = arr.copy()
        painted = roi * (1.0 - alpha) + np.clip(target, 0, 255) * alpha
        out[y0:y1, x0:x1] = np.clip(np.rint(painted), 0, 255).astype(np.uint8)
        mask = np.zeros((h, w), np.uint8)
        mask[y0:y1, x0:x1] = keep.astype(np.uint8) * 255
        bx = (box[0] + x0, box[1] + y0, box[2] + x0, box[3] + y0)
        defect = Defect(label, bx, appearance, "subtle" if subtle else "obvious")
        return Image.fromarray(out), mask, defect
    raise ValueError(f"could not place a {label} defect on a {w}x{h} image (object too small?)")
