"""Scoring findings against the truth: the paper's accuracy plus precision, recall, F1, IoU, and the
ranking figures of the anomaly score (image AUROC and average precision, `core.evaluation.score_curves`).

An image without an anomaly score (an unparsed answer, a failed image, a server without logprobs) ranks
as the worst case for its truth: lowest if defective, highest if good, as accuracy counts an unparsed
answer wrong. When no image of a set has a score, AUROC and AP are undefined.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterable, Sequence

from lriad_desktop.core.evaluation.datasets import LabelledImage
from lriad_desktop.core.defect_kinds import normalise_label
from lriad_desktop.core.inspection.finding import Box, Finding, Verdict
from lriad_desktop.core.evaluation.score_curves import auroc, average_precision

def best_iou(truth: Sequence[Box], predicted: Sequence[Box | None]) -> float:
    """Mean over truth boxes of the IoU of the best-matching predicted box (0 if none)."""
    preds = [b for b in predicted if b is not None]
    if not truth:
        return 0.0
    return sum(max((t.iou(p) for p in preds), default=0.0) for t in truth) / len(truth)


@dataclass(frozen=True)
class Scores:
    """Figures for one category (or all). A figure the set can't define is None ("—" in the table,
    null in JSON): recall and F1 on a set with no defective image, precision when nothing was
    called defective; AUROC and AP without both good and defective images, or without any score."""

    n: int
    accuracy: float
    precision: float | None
    recall: float | None
    f1: float | None
    mean_iou: float | None
    label_accuracy: float | None
    unparsed_rate: float
    ms_per_image: float
    image_auroc: float | None = None
    image_ap: float | None = None
    unscored_rate: float = 0.0
    boxes: int = 0  # boxes the model drew on the images it called defective (0: it draws none)

    def as_dict(self) -> dict:
        return asdict(self)


def score(pairs: Iterable[tuple[LabelledImage, Finding]]) -> Scores:
    """Score `(truth, finding)` pairs. Unparsed findings count as wrong verdicts."""
    tp = fp = tn = fn = unparsed = 0
    ious: list[float] = []
    label_hits: list[bool] = []
    ms: list[float] = []
    n = boxes = 0
    ranked: list[tuple[float | None, bool]] = []
    for truth, finding in pairs:
        n += 1
        if finding.verdict is Verdict.ANOMALOUS:
            boxes += sum(d.box is not None for d in finding.defects)
        ranked.append(ranked_pair(truth, finding))
        ms.append(finding.timings.get("total_ms", 0.0))
        if finding.verdict is Verdict.UNPARSED:
            unparsed += 1
            predicted = not truth.anomalous  # wrong by definition
        else:
            predicted = finding.verdict is Verdict.ANOMALOUS
        if truth.anomalous:
            tp += predicted
            fn += not predicted
            if truth.boxes:
                got = [d.box for d in finding.defects] if predicted and finding.verdict is not Verdict.UNPARSED else []
                ious.append(best_iou(truth.boxes, got))
            want = normalise_label(truth.defect_type)
            names = {normalise_label(d.label) for d in finding.defects} if finding.verdict is Verdict.ANOMALOUS else set()
            label_hits.append(want in names)
        else:
            fp += predicted
            tn += not predicted
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    # 2TP / (2TP + FP + FN): 0 when defects exist and none was found, undefined without any defect
    f1 = 2 * tp / (2 * tp + fp + fn) if recall is not None else None
    figures = ranking_figures(ranked)
    return Scores(
        n=n,
        accuracy=(tp + tn) / n if n else 0.0,
        precision=precision,
        recall=recall,
        f1=f1,
        mean_iou=sum(ious) / len(ious) if ious else None,
        label_accuracy=sum(label_hits) / len(label_hits) if label_hits else None,
        unparsed_rate=unparsed / n if n else 0.0,
        ms_per_image=sum(ms) / len(ms) if ms else 0.0,
        image_auroc=figures[0],
        image_ap=figures[1],
        unscored_rate=figures[2],
        boxes=boxes,
    )


def ranked_pair(truth: LabelledImage, finding: Finding) -> tuple[float | None, bool]:
    """(the finding's anomaly score, or None for an unparsed answer or none at all; truly defective)."""
    return (finding.anomaly_score if finding.verdict is not Verdict.UNPARSED else None, truth.anomalous)


def scored_truth(ranked: Sequence[tuple[float | None, bool]]) -> tuple[list[float], list[bool]]:
    """Scores and truths with every missing score put at the worst place for its truth (0 for a defective
    image, 1 for a good one); ([], []) when no score is known at all."""
    if all(score is None for score, _ in ranked):
        return [], []
    scores = [score if score is not None else (0.0 if anomalous else 1.0) for score, anomalous in ranked]
    return scores, [anomalous for _, anomalous in ranked]


def ranking_figures(ranked: Sequence[tuple[float | None, bool]]) -> tuple[float | None, float | None, float]:
    """(AUROC, AP, share of images without a score) of `(score or None, truly defective)` pairs."""
    scores, truth = scored_truth(ranked)
    missing = sum(1 for score, _ in ranked if score is None) / len(ranked) if ranked else 0.0
    if not scores:
        return None, None, missing
    return auroc(scores, truth), average_precision(scores, truth), missing


def score_by_category(pairs: Sequence[tuple[LabelledImage, Finding]]) -> dict[str, Scores]:
    """Scores per category, then `"all"`."""
    cats = sorted({t.category for t, _ in pairs})
    result = {c: score((t, f) for t, f in pairs if t.category == c) for c in cats}
    result["all"] = score(pairs)
    return result


UNDEFINED = "—"  # a figure the set can't define


def format_table(scores: dict[str, Scores]) -> str:
    """A plain-text table of scores, one row per category."""
    def pct(v: float | None) -> str:
        return UNDEFINED if v is None else f"{v * 100:5.1f}"

    def num(v: float | None, width: int = 5) -> str:
        return UNDEFINED.rjust(width) if v is None else f"{v:{width}.3f}"

    head = (f"{'category':<16} {'n':>5} {'acc%':>6} {'prec%':>6} {'rec%':>6} {'F1':>5} {'AUROC':>6} {'AP':>6} "
            f"{'IoU':>5} {'label%':>6} {'unparsed%':>9} {'ms/img':>7}")
    lines = [head, "-" * len(head)]
    for name, s in scores.items():
        iou = UNDEFINED if s.mean_iou is None else f"{s.mean_iou:5.2f}"
        f1 = UNDEFINED if s.f1 is None else f"{s.f1:5.2f}"
        lines.append(
            f"{name:<16} {s.n:>5} {pct(s.accuracy):>6} {pct(s.precision):>6} {pct(s.recall):>6} {f1:>5} "
            f"{num(s.image_auroc, 6)} {num(s.image_ap, 6)} {iou:>5} "
            f"{pct(s.label_accuracy):>6} {pct(s.unparsed_rate):>9} {s.ms_per_image:7.0f}"
        )
    return "\n".join(lines)
