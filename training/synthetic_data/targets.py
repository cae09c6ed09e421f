"""Training targets: a synthetic sample → prompt + completion in the grammar, boxes in the model frame."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from lriad_desktop.core.inspection.coordinates import ModelGeometry, model_input_size, to_model_frame
from lriad_desktop.core.inspection.finding import Box
from lriad_desktop.core.inspection.prompting import format_completion
from lriad_desktop.core.inspection.references import ReferenceImage, prompt_images
from lriad_desktop.core.inspection.side_by_side import to_composite
from training.synthetic_data.reasoning import reasoning_steps
from training.synthetic_data.samples import Sample, model_view


def model_frame_defects(sample: Sample, geometry: ModelGeometry) -> list[tuple[str, tuple[int, int, int, int]]]:
    """`(label, box)` for each defect, the box in the model's frame and rounded to integers."""
    out = []
    for d in sample.defects:
        b = to_model_frame(Box(*map(float, d.box)), sample.image.size, geometry)
        x1, y1 = int(np.floor(b.x1)), int(np.floor(b.y1))
        x2, y2 = max(x1 + 1, int(np.ceil(b.x2))), max(y1 + 1, int(np.ceil(b.y2)))
        out.append((d.label, (x1, y1, x2, y2)))
    return out


def completion_for(sample: Sample, geometry: ModelGeometry, rng: np.random.Generator,
                   object_name: str | None = None, style: str = "full") -> str:
    """The full target completion: `<think>Step 1: …</think><answer>{…}</answer>`.

    The reasoning names `object_name` (what the prompt called the object; the sample's own name
    when None) and is about the sample itself; the boxes are in the frame of what the model is
    shown (`model_view`: the side-by-side composite when the sample carries a golden sample).
    """
    steps = reasoning_steps(sample, rng, object_name, style)
    return format_completion(steps, sample.anomalous, model_frame_defects(model_view(sample), geometry))


def box_occupancy(sample: Sample, geometry: ModelGeometry) -> np.ndarray:
    """Fraction of each patch of the model input covered by a defect box, shape (rows, cols).

    Dense per-patch targets for the auxiliary loss that teaches the vision tower where
    defects are (the synthetic data gives them for free; inspectors never draw masks).
    """
    w, h = model_input_size(sample.image.size, geometry)
    p = geometry.patch_size
    rows, cols = h // p, w // p
    occ = np.zeros((rows, cols), np.float32)
    for _label, (x1, y1, x2, y2) in model_frame_defects(sample, geometry):
        xs = np.clip(np.minimum(np.arange(cols) * p + p, x2) - np.maximum(np.arange(cols) * p, x1), 0, p) / p
        ys = np.clip(np.minimum(np.arange(rows) * p + p, y2) - np.maximum(np.arange(rows) * p, y1), 0, p) / p
        occ = np.maximum(occ, np.outer(ys, xs).astype(np.float32))
    return occ.astype(np.float32)


def token_targets(sample: Sample, grid_hw: tuple[int, int], geometry: ModelGeometry,
                  labels: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Per merged image token (raster order): box occupancy of its merge×merge patches, and
    the defect-type index under it (0 = none, else 1 + index in `labels`)."""
    gh, gw = grid_hw
    merge = geometry.merge_size
    occ = box_occupancy(sample, geometry)[:gh, :gw]
    mh, mw = gh // merge, gw // merge
    blocks = occ.reshape(mh, merge, mw, merge).transpose(0, 2, 1, 3).reshape(mh * mw, merge * merge)
    label = labels.index(sample.defects[0].label) + 1 if sample.defects else 0
    return np.ascontiguousarray(blocks), (blocks.max(axis=1) > 0.25).astype(np.int64) * label


def grpo_row(image, object_name: str, defects: list[tuple[str, tuple[float, float, float, float]]],
             geometry: ModelGeometry, anomalous: bool | None = None,
             references: Sequence[ReferenceImage] = ()) -> dict:
    """One GRPO dataset row: prompt + images + truth columns (boxes given in the image's original pixels).

    Inspectors' flags and synthetic samples both come through here, so the rewards see one format. With
    golden samples (`references`) the row shows the model what inspection shows it (`core.inspection.references`):
    the references before the image, or one side-by-side composite whose right half holds the image (its
    boxes then lie there). `images` is trl's list column: one entry per image placeholder of the prompt.
    """
    view = prompt_images(image, references, geometry.references)
    shown = view.answer_size
    frame_w, frame_h = (1000, 1000) if geometry.frame.value == "norm1000" else model_input_size(shown, geometry)
    boxes = []
    for _label, box in defects:
        b = Box(*map(float, box))
        if view.composite is not None:
            b = to_composite(b, view.composite)
        b = to_model_frame(b, shown, geometry)
        boxes.append([round(b.x1, 1), round(b.y1, 1), round(b.x2, 1), round(b.y2, 1)])
    is_bad = bool(defects) if anomalous is None else anomalous
    labels = [label for label, _ in defects if label.strip()]  # a box whose type is not chosen yet: no label
    return {
        "prompt": view.messages(object_name),
        "images": list(view.images),
        "anomalous": is_bad,
        "defect_labels": labels,
        "boxes": boxes,
        "frame_size": [frame_w, frame_h],
        "defect_class": (labels[0] if labels else "defect") if is_bad else "good",
    }


def grpo_row_from_sample(sample: Sample, geometry: ModelGeometry) -> dict:
    """A GRPO row from a synthetic sample (beside its rendered golden sample when it has one)."""
    refs = [ReferenceImage("synthetic golden sample", sample.reference)] if sample.reference is not None else []
    return grpo_row(sample.image, sample.object_name, [(d.label, d.box) for d in sample.defects], geometry,
                    references=refs)
