"""The anomaly score in words: one number with one meaning, and how it was made for whoever wants to know.

The headline is the anomaly score the object's threshold decides with (0-1, `Finding.anomaly_score` of the
finding as decided: `map_decision.decided`), beside that threshold — the number the queue shows too. An answer
that could not be read and that the map doesn't decide has no score: the headline says so instead of showing
a number the verdict doesn't follow. Everything else — the model's own probability, the map's probability, its
normalised distance from the good images, its regions and bank, the fusion rule — is in `score_details`, one
line each, for the panel's *Details*.
"""

from __future__ import annotations

from lriad_desktop.core.anomaly_map.patch_map import map_probability
from lriad_desktop.core.inspection.confidence import format_score
from lriad_desktop.core.inspection.finding import Finding, Verdict
from lriad_desktop.core.anomaly_map.decision import MAP_RULE, map_led


def score_headline(model: Finding, decided: Finding, threshold: float, needs_review: bool = False) -> str:
    """"Anomaly score 0.47 · threshold 0.50 · needs review"; "No anomaly score: …" for an unreadable answer the
    map doesn't decide. `model` is the model's own finding, `decided` the same as its threshold decides it."""
    if decided.verdict is Verdict.UNPARSED:
        return "No anomaly score: the model's answer could not be read (set the verdict yourself)"
    text = f"Anomaly score {format_score(decided.anomaly_score)} · threshold {threshold:.2f}"
    if needs_review:
        text += " · needs review"
    if decided.verdict is not model.verdict and not map_led(model):
        text += f" (the model said {model.verdict.value})"
    return text


def score_details(model: Finding) -> list[str]:
    """How the anomaly score was made, one line each: the rule, the model's probability, the map's view."""
    lines = []
    if map_led(model):
        lines.append(f"Scored by: {MAP_RULE}")
    elif model.anomaly_map is not None and model.score_rule:
        lines.append(f"Scored by: {model.score_rule}")
    elif model.verdict_probability is not None:
        lines.append("Scored by: the model's own probability of a defect")
    if model.verdict is Verdict.UNPARSED:
        lines.append("Model: no probability (its answer could not be read)")
    else:
        lines.append(f"Model: probability of a defect {format_score(model.verdict_probability)}")
    m = model.anomaly_map
    if m is not None:
        regions = len(m.boxes)
        lines.append(f"Anomaly map: probability of a defect {map_probability(m.score):.2f} · "
                     f"{regions} region{'s' if regions != 1 else ''} · {m.bank_images} good images in its bank "
                     f"· M shows it")
        lines.append(f"Anomaly map distance: {m.score:.1f} spreads of the good images from their mean "
                     f"(about 0 on a good part)")
        if m.hint:
            lines.append("The map's region was named in the prompt")
    return lines


__all__ = ["score_details", "score_headline"]
