"""An honest decision on the demo model: while the bundled demo model (trained on synthetic images only) is the
one that answered and the object has an anomaly map, the map decides and the model's answer is a guess.

`map_led(finding)` says whether that holds for a finding: the demo model's answer, with a map whose bank counts
(`map_banks.MIN_FUSED_BANK` good images or more). `decided(finding, threshold)` is then the map's verdict —
anomalous when the map's own probability (`map_probability` of its normalised score) reaches the object's
threshold, its regions as the boxes to review (no defect type: the map can't name one) — and the finding's
anomaly score is that probability; an unreadable demo answer is never the verdict once the map has spoken.
Every other finding is decided as always (`confidence.as_decided`: the fused score against the threshold).
The model's own answer stays on the finding's `raw_text`, `reasoning` and in `QueueEntry.model_finding`.
"""

from __future__ import annotations

from dataclasses import replace

from lriad_desktop.core.anomaly_map.patch_map import map_probability
from lriad_desktop.core.inspection.confidence import DEFAULT_THRESHOLD, as_decided
from lriad_desktop.core.inspection.finding import Defect, Finding, Verdict
from lriad_desktop.core.anomaly_map.banks import MIN_FUSED_BANK
from lriad_desktop.core.paths import BUNDLED_MODEL_NAME

MAP_RULE = "the anomaly map decides: the demo model's answer is only a guess"


def is_demo_model(model_version: str) -> bool:
    """Whether a finding's `model_version` names the bundled demo model (with or without an adapter trained
    on it: still a model of synthetic images)."""
    base, plus, _adapter = model_version.partition("+")
    return (base if plus else model_version) == BUNDLED_MODEL_NAME


def map_led(finding: Finding | None) -> bool:
    """Whether the anomaly map, not the model, decides this finding: the demo model answered and the map's
    bank counts (`MIN_FUSED_BANK` good images or more)."""
    return (finding is not None and finding.anomaly_map is not None and is_demo_model(finding.model_version)
            and finding.anomaly_map.bank_images >= MIN_FUSED_BANK)


def map_verdict(finding: Finding, threshold: float = DEFAULT_THRESHOLD) -> Finding:
    """The finding as its map decides it: verdict and anomaly score from the map alone, the map's regions as
    the defects to review (no type), `score_rule` saying so. The caller checks `map_led` first."""
    summary = finding.anomaly_map
    if summary is None:
        raise ValueError("a finding without an anomaly map can't be decided by it")
    score = map_probability(summary.score)
    anomalous = score >= threshold
    defects = tuple(Defect("", box) for box in summary.boxes) if anomalous else ()
    return replace(finding, verdict=Verdict.ANOMALOUS if anomalous else Verdict.NORMAL, defects=defects,
                   anomaly_score=score, score_rule=MAP_RULE)


def decided(finding: Finding, threshold: float = DEFAULT_THRESHOLD) -> Finding:
    """The verdict that stands for a finding at `threshold`: the map's on the demo model (`map_led`), else the
    fused score's (`as_decided`)."""
    if map_led(finding):
        return map_verdict(finding, threshold)
    return as_decided(finding, threshold)


__all__ = ["MAP_RULE", "decided", "is_demo_model", "map_led", "map_verdict"]
