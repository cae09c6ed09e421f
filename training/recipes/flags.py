"""Training data from the review store: the inspector's flags, a replay of accepted findings,
optional synthetic defects on good images, and a held-out slice for before/after evaluation.

Each image carries its object's golden samples (the first K, as the app inspects it), so a row shows
the model what inspection shows it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from lriad_desktop.core.inspection.coordinates import ModelGeometry
from lriad_desktop.core.evaluation.datasets import GOOD, LabelledImage
from lriad_desktop.core.inspection.finding import Box, Verdict
from lriad_desktop.core.inspection.images import ImageLoadError, load_image
from lriad_desktop.core.inspection.prompting import DEFAULT_OBJECT
from lriad_desktop.core.inspection.references import ReferenceImage
from lriad_desktop.core.store.review import ReviewKind, ReviewRecord
from lriad_desktop.core.store.review_store import ImageRecord, ReviewStore
from training.synthetic_data.targets import grpo_row


class NothingToLearn(Exception):
    """The store has no flagged images to train on."""


@dataclass(frozen=True)
class ReviewedImage:
    """An image with the inspector's truth (boxes in original pixels)."""

    image: ImageRecord
    review: ReviewRecord
    references: tuple[str, ...] = ()  # golden samples of its object (paths), shown beside it

    @property
    def anomalous(self) -> bool:
        return self.review.review.verdict is Verdict.ANOMALOUS

    @property
    def defects(self) -> list[tuple[str, tuple[float, float, float, float]]]:
        return [(d.label, tuple(d.box.as_list(None))) for d in self.review.review.defects if d.box is not None]

    @property
    def kind(self) -> ReviewKind:
        """Verdict flag, label or box correction (or an acceptance, for replay and held-out images)."""
        return self.review.review.kind

    @property
    def defect_class(self) -> str:
        labels = [d.label for d in self.review.review.defects if d.label.strip()]
        return (labels[0] if labels else "defect") if self.anomalous else GOOD

    def as_labelled(self) -> LabelledImage:
        """The truth in `core.evaluation.metrics`'s terms."""
        boxes = tuple(Box(*box) for _, box in self.defects)
        return LabelledImage(Path(self.image.path), self.image.object_name or DEFAULT_OBJECT,
                             self.defect_class, boxes, bool(boxes))


@dataclass(frozen=True)
class FlagDataset:
    """What one "Improve model" run learns from and is judged on."""

    flagged: list[ReviewedImage]
    replay: list[ReviewedImage]
    holdout: list[ReviewedImage]
    data_revision: int
    skipped: list[str]

    def summary(self) -> dict:
        kinds = {k: sum(1 for item in self.flagged if item.kind is k) for k in (ReviewKind.FLAG, ReviewKind.LABEL,
                                                                                ReviewKind.BOX)}
        return {"flagged": len(self.flagged), "replay": len(self.replay), "holdout": len(self.holdout),
                "data_revision": self.data_revision, "skipped": len(self.skipped),
                "verdict_flags": kinds[ReviewKind.FLAG], "label_corrections": kinds[ReviewKind.LABEL],
                "box_corrections": kinds[ReviewKind.BOX]}


def references_of(store: ReviewStore, image: ImageRecord, count: int,
                  cache: dict[str, list[str]] | None = None) -> tuple[str, ...]:
    """The first `count` golden samples of the image's object, other than the image itself."""
    name = image.object_name or DEFAULT_OBJECT
    cache = {} if cache is None else cache
    if name not in cache:
        cache[name] = [g.path for g in store.golden_samples(name)]
    return tuple(p for p in cache[name] if p != image.path)[:max(0, count)]


def collect(store: ReviewStore, replay_ratio: float = 0.5, holdout_fraction: float = 0.2,
            seed: int = 0, references: int = 1) -> FlagDataset:
    """Flagged images (all trained on), a replay sample of accepted ones, and a held-out slice.

    "Flagged" is every image whose current review disagrees with the model: verdict flags, label corrections
    and box corrections. Each is trained on as the inspector reviewed it, so a box correction teaches the
    box (localisation) under the verdict the model already gave; nothing flips it. The held-out slice comes
    from accepted images not used for replay, so "no regression" is measured on images the run never saw.
    Each image carries the first `references` golden samples of its object.

    Replay keeps what the model already does right from being forgotten: accepted images of every class
    in turn (each defect type the inspector accepted, and good parts), each with its truth as accepted
    (verdict, labels and boxes), so the label and localisation rewards hold them as well as the verdict.
    """
    flagged, accepted = [], []
    reviews = {}
    golden: dict[str, list[str]] = {}
    for state in store.reviewed_states():
        if state.review is None:
            continue
        item = ReviewedImage(state.image, state.review, references_of(store, state.image, references, golden))
        reviews[state.image.id] = item
        (flagged if state.review.review.disagrees else accepted).append(item)
    if not flagged:
        raise NothingToLearn("No flagged images yet: flag the findings you disagree with, then improve the model")
    rng = random.Random(seed)
    by_class: dict[str, list[ReviewedImage]] = {}
    for item in accepted:
        by_class.setdefault(item.defect_class, []).append(item)
    holdout, rest = [], {}
    for cls in sorted(by_class):  # every accepted class in the held-out slice, in proportion
        items = by_class[cls]
        rng.shuffle(items)
        n = int(len(items) * holdout_fraction + 0.5)  # half up: two of a class at 0.25 hold one out
        holdout += items[:n]
        rest[cls] = items[n:]
    replay = _round_robin(rest, int(round(len(flagged) * replay_ratio)))
    return FlagDataset(flagged, replay, holdout, store.data_revision(), [])


def _round_robin(buckets: dict[str, list[ReviewedImage]], n: int) -> list[ReviewedImage]:
    """Up to `n` items taken one per class in turn (defect classes before good parts)."""
    order = sorted(buckets, key=lambda cls: (cls == GOOD, cls))
    queues = [list(buckets[cls]) for cls in order]
    out: list[ReviewedImage] = []
    while len(out) < n and any(queues):
        for queue in queues:
            if queue and len(out) < n:
                out.append(queue.pop(0))
    return out


def training_rows(data: FlagDataset, geometry: ModelGeometry, synthetic_per_good: int = 0,
                  seed: int = 0) -> tuple[list[dict], list[str]]:
    """GRPO rows for the flagged + replay images; optional synthetic defects on good ones.

    Returns the rows and the paths that could not be read (skipped with a reason).
    """
    rows, skipped = [], []
    rng = np.random.default_rng(seed)
    golden: dict[str, ReferenceImage | None] = {}
    replayed = {id(item) for item in data.replay}
    for item in data.flagged + data.replay:
        try:
            image = load_image(item.image.path).image
        except ImageLoadError as err:
            skipped.append(str(err))
            continue
        refs = []
        for path in item.references:
            if path not in golden:
                try:
                    golden[path] = ReferenceImage(path, load_image(path).image)
                except ImageLoadError as err:
                    golden[path] = None
                    skipped.append(f"golden sample {err} (the rows of its object go without it)")
            if golden[path] is not None:
                refs.append(golden[path])
        name = item.image.object_name or DEFAULT_OBJECT
        rows.append({**grpo_row(image, name, item.defects, geometry, anomalous=item.anomalous, references=refs),
                     "object_name": name, "source": "replay" if id(item) in replayed else "flag"})
        if synthetic_per_good and not item.anomalous:
            from training.synthetic_data.samples import synthesize_defect

            for _ in range(synthetic_per_good):
                painted, _mask, defect = synthesize_defect(image, rng)
                rows.append({**grpo_row(painted, name, [(defect.label, defect.box)], geometry, references=refs),
                             "object_name": name, "source": "synthetic"})
    return rows, skipped


def balance_verdicts(rows: Sequence[dict]) -> list[dict]:
    """`rows` with the normal ones repeated until they are about as many as the anomalous ones, spread
    evenly among them. Flags are mostly defects, so without this a run's rows are mostly "defective" and
    the model learns to say it of good parts too (bench_improve: the other types' accuracy fell 78 -> 69 %).
    Unchanged when there are no normal rows or they are already as many."""
    normal = [r for r in rows if not r.get("anomalous")]
    anomalous = [r for r in rows if r.get("anomalous")]
    if not normal or len(normal) >= len(anomalous):
        return list(rows)
    out: list[dict] = []
    for i, row in enumerate(anomalous):  # one normal row after each anomalous one, the normals cycled
        out += [row, normal[i % len(normal)]]
    return out


def repeat_to(rows: Sequence[dict], n: int) -> list[dict]:
    """`rows` cycled to at least `n` entries (small flag sets still fill a run)."""
    if not rows:
        return []
    out = list(rows)
    while len(out) < n:
        out.extend(rows[: n - len(out)])
    return out
