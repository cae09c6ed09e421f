"""ROC and precision–recall curves as PNG files, drawn with Pillow (already a dependency: no plotting
library, no Qt, so `lriad evaluate --plot` works in a headless build)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from PIL import Image, ImageDraw, ImageFont

from lriad_desktop.core.evaluation.datasets import LabelledImage
from lriad_desktop.core.evaluation.metrics import ranked_pair, scored_truth
from lriad_desktop.core.inspection.finding import Finding
from lriad_desktop.core.evaluation.score_curves import auroc, average_precision, pr_curve, pr_steps, roc_curve

SIZE = (760, 600)
MARGIN = (70, 40, 230, 60)  # left, top, right (the legend), bottom
COLOURS = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
           (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207))


@dataclass(frozen=True)
class CurveSeries:
    """One curve: its name in the legend, its points (x, y in [0, 1]) and its figure ("AUROC 0.93")."""

    name: str
    points: tuple[tuple[float, float], ...]
    figure: str


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow before 10.1: one bitmap size
        return ImageFont.load_default()


def draw_curves(series: Sequence[CurveSeries], title: str, x_label: str, y_label: str,
                diagonal: bool = False) -> Image.Image:
    """A chart of `series` on a unit square with a grid, axis labels and a legend; `diagonal`: the chance line."""
    image = Image.new("RGB", SIZE, "white")
    d = ImageDraw.Draw(image)
    left, top, right, bottom = MARGIN
    x0, y0, x1, y1 = left, top, SIZE[0] - right, SIZE[1] - bottom
    small, normal = _font(13), _font(16)

    def at(x: float, y: float) -> tuple[float, float]:
        return x0 + x * (x1 - x0), y1 - y * (y1 - y0)

    for i in range(6):
        v = i / 5
        d.line([at(v, 0), at(v, 1)], fill=(230, 230, 230))
        d.line([at(0, v), at(1, v)], fill=(230, 230, 230))
        d.text((at(v, 0)[0], y1 + 6), f"{v:.1f}", fill="black", font=small, anchor="mt")
        d.text((x0 - 6, at(0, v)[1]), f"{v:.1f}", fill="black", font=small, anchor="rm")
    d.rectangle([x0, y0, x1, y1], outline="black")
    if diagonal:
        d.line([at(0, 0), at(1, 1)], fill=(170, 170, 170), width=1)
    d.text(((x0 + x1) / 2, 12), title, fill="black", font=normal, anchor="mt")
    d.text(((x0 + x1) / 2, SIZE[1] - 22), x_label, fill="black", font=normal, anchor="mm")
    label = Image.new("RGB", (int(d.textlength(y_label, font=normal)) + 8, 22), "white")
    ImageDraw.Draw(label).text((4, 2), y_label, fill="black", font=normal)
    image.paste(label.rotate(90, expand=True), (8, int((y0 + y1) / 2 - label.width / 2)))
    for n, s in enumerate(series):
        colour = COLOURS[n % len(COLOURS)]
        width = 3 if s.name == "all" else 2
        if len(s.points) > 1:
            d.line([at(x, y) for x, y in s.points], fill=colour, width=width, joint="curve")
        ly = y0 + 8 + n * 22
        d.line([(x1 + 14, ly + 7), (x1 + 38, ly + 7)], fill=colour, width=width)
        d.text((x1 + 44, ly), f"{s.name}  {s.figure}", fill="black", font=small)
    if not series:
        d.text(((x0 + x1) / 2, (y0 + y1) / 2), "undefined: needs good and defective images with scores",
               fill=(120, 120, 120), font=small, anchor="mm")
    return image


def _by_category(pairs: Sequence[tuple[LabelledImage, Finding]]) -> dict[str, tuple[list[float], list[bool]]]:
    cats = sorted({t.category for t, _ in pairs})
    groups = {c: [p for p in pairs if p[0].category == c] for c in cats}
    groups["all"] = list(pairs)
    return {name: scored_truth([ranked_pair(t, f) for t, f in group]) for name, group in groups.items()}


def _figure(name: str, value: float | None) -> str:
    return f"{name} —" if value is None else f"{name} {value:.3f}"


def write_curve_plots(pairs: Sequence[tuple[LabelledImage, Finding]], folder: str | os.PathLike) -> list[Path]:
    """`roc.png` and `pr.png` in `folder`: one curve per category and one for all (the figures in the legend)."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    rocs, prs = [], []
    for name, (scores, truth) in _by_category(pairs).items():
        roc = roc_curve(scores, truth)
        if roc:
            rocs.append(CurveSeries(name, tuple((x, y) for x, y, _ in roc), _figure("AUROC", auroc(scores, truth))))
        pr = pr_curve(scores, truth) if roc else []  # PR too needs good images to mean anything
        if pr:
            prs.append(CurveSeries(name, pr_steps(pr), _figure("AP", average_precision(scores, truth))))
    written = []
    for fname, image in (("roc.png", draw_curves(rocs, "ROC (image level)", "false positive rate",
                                                 "true positive rate", diagonal=True)),
                         ("pr.png", draw_curves(prs, "Precision-recall (image level)", "recall", "precision"))):
        image.save(out / fname)
        written.append(out / fname)
    return written
