"""GRPO rewards: plain functions `f(completions, **columns) -> list[float]` in a registry.

Columns each reward reads (one value per completion, as trl passes dataset columns):
- `anomalous` (bool): the truth verdict;
- `defect_labels` (list[str]) and `boxes` (list of [x1, y1, x2, y2] in the model's frame);
- `frame_size` ([width, height] of the model frame) for the location words of the reasoning;
- `defect_class` (str, "good" for normal parts) for the rare-defect emphasis.
Completions may be strings or trl's conversational form `[{"role": "assistant", "content": ...}]`.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Callable, Iterable, Sequence

from lriad_desktop.core.defect_kinds import NEAR_KINDS, normalise_label
from lriad_desktop.core.inspection.finding import Box
from lriad_desktop.core.inspection.parsing import ParsedOutput, parse_completion
from training.synthetic_data.reasoning import label_of_text, location_of_text, location_words

RewardFunc = Callable[..., list[float]]
REWARDS: dict[str, RewardFunc] = {}



def reward(name: str) -> Callable[[RewardFunc], RewardFunc]:
    """Register a reward function under `name`."""
    def register(fn: RewardFunc) -> RewardFunc:
        REWARDS[name] = fn
        fn.__name__ = name  # trl logs rewards by function name
        return fn
    return register


def completion_text(completion: Any) -> str:
    """The text of a completion given as a string or as trl's list of messages ("" for anything else)."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion and isinstance(completion[-1], dict):
        content = completion[-1].get("content", "")
        if isinstance(content, list):
            return "".join(part["text"] for part in content if isinstance(part, dict) and isinstance(part.get("text"), str))
        return content if isinstance(content, str) else ""
    return ""


def _parsed(completions: Iterable[Any]) -> list[ParsedOutput]:
    return [parse_completion(completion_text(c)) for c in completions]


@reward("format")
def format_reward(completions: Sequence[Any], **_: Any) -> list[float]:
    """1 for reasoning then answer as valid JSON; 0.5 when it parses only after repairs; else 0."""
    out = []
    for c in completions:
        text = completion_text(c)
        p = parse_completion(text)
        think, answer = text.find("<think>"), text.find("<answer>")
        in_order = 0 <= think < text.find("</think>") < answer < text.find("</answer>")
        if p.ok and p.valid_json and in_order and p.steps:
            out.append(1.0)
        elif p.ok:
            out.append(0.5)
        else:
            out.append(0.0)
    return out


@reward("verdict")
def verdict_reward(completions: Sequence[Any], anomalous: Sequence[bool], **_: Any) -> list[float]:
    """1 when anomalous-vs-normal is right (unparsed output is wrong)."""
    return [float(p.ok and p.anomaly == bool(truth)) for p, truth in zip(_parsed(completions), anomalous)]


def label_credit(predicted: str, truth: str) -> float:
    """1 for the same (normalised) label, 0.5 for a near one (`DefectKind.near`), else 0."""
    a, b = normalise_label(predicted), normalise_label(truth)
    if a == b:
        return 1.0
    return 0.5 if frozenset({a, b}) in NEAR_KINDS else 0.0


@reward("label")
def label_reward(completions: Sequence[Any], anomalous: Sequence[bool], defect_labels: Sequence[Sequence[str]],
                 **_: Any) -> list[float]:
    """Defect type: best credit of the predicted labels per true label; a good part wants none."""
    out = []
    for p, truth, labels in zip(_parsed(completions), anomalous, defect_labels):
        if not p.ok:
            out.append(0.0)
        elif not truth:
            out.append(float(not p.anomaly))
        elif not p.defects or not labels:
            out.append(0.0)
        else:
            credits = [max(label_credit(d.label, t) for d in p.defects) for t in labels]
            out.append(sum(credits) / len(credits))
    return out


def matched_iou(truth: Sequence[Sequence[float]], predicted: Sequence[Sequence[float]]) -> float:
    """Greedy one-to-one IoU matching; the sum over matches divided by max(#truth, #predicted)."""
    t_boxes = [Box.from_corners(*b) for b in truth]
    p_boxes = [Box.from_corners(*b) for b in predicted]
    if not t_boxes and not p_boxes:
        return 1.0
    pairs = sorted(((t.iou(p), i, j) for i, t in enumerate(t_boxes) for j, p in enumerate(p_boxes)), reverse=True)
    used_t, used_p, total = set(), set(), 0.0
    for iou, i, j in pairs:
        if i in used_t or j in used_p or iou <= 0:
            continue
        used_t.add(i)
        used_p.add(j)
        total += iou
    return total / max(len(t_boxes), len(p_boxes))


@reward("localisation")
def localisation_reward(completions: Sequence[Any], boxes: Sequence[Sequence[Sequence[float]]], **_: Any) -> list[float]:
    """IoU of matched boxes in the model frame; extra or missing boxes lower it; a good part wants none."""
    out = []
    for p, truth in zip(_parsed(completions), boxes):
        if not p.ok:
            out.append(0.0)
            continue
        predicted = [d.box for d in p.defects if d.box is not None]
        out.append(matched_iou(truth or [], predicted))
    return out


@reward("consistency")
def consistency_reward(completions: Sequence[Any], frame_size: Sequence[Sequence[float]], **_: Any) -> list[float]:
    """The reasoning agrees with the answer: the location words match the first box, the label is named.

    A normal answer should name no defect and no location in its reasoning.
    """
    out = []
    for p, size in zip(_parsed(completions), frame_size):
        if not p.ok:
            out.append(0.0)
            continue
        named_place, named_label = location_of_text(p.think), label_of_text(p.think)
        if not p.anomaly:
            out.append(float(named_place is None and named_label is None))
            continue
        checks = []
        first_box = next((d.box for d in p.defects if d.box is not None), None)
        if first_box is not None:
            want = location_words(first_box, int(size[0]), int(size[1]))
            checks.append(named_place is not None and want.startswith(named_place))
        if p.defects:
            checks.append(named_label is not None and normalise_label(named_label) == normalise_label(p.defects[0].label))
        out.append(sum(checks) / len(checks) if checks else 0.0)
    return out


class RareDefectEmphasis:
    """The paper's dynamic rare-defect reward: correctness scaled by α·(1−p_c)^γ · rarity_c.

    `p_c` is a running success rate of the sample's class (updated from every GRPO batch with
    momentum), `rarity_c` grows with how rare the class is in the training set (normalised
    so the mean over classes is 1, capped at `max_rarity`). Success = right verdict and, for a
    defect, the right label. Per-class figures are kept in `stats()` and sent to trl's
    `log_metric` when it is given.
    """

    __name__ = "rare_defect"

    def __init__(self, class_counts: dict[str, int], alpha: float = 1.0, gamma: float = 2.0,
                 momentum: float = 0.8, max_rarity: float = 5.0, initial_success: float = 0.5) -> None:
        self.alpha, self.gamma, self.momentum = alpha, gamma, momentum
        total = sum(class_counts.values()) or 1
        inv = {c: total / max(n, 1) for c, n in class_counts.items()}
        mean_inv = sum(inv.values()) / max(len(inv), 1)
        self.rarity = {c: min(max_rarity, v / mean_inv) for c, v in inv.items()}
        self.success = {c: initial_success for c in class_counts}
        self.seen: Counter[str] = Counter()

    def weight(self, cls: str) -> float:
        p = self.success.get(cls, 0.5)
        return self.alpha * (1.0 - p) ** self.gamma * self.rarity.get(cls, 1.0)

    def __call__(self, completions: Sequence[Any], anomalous: Sequence[bool], defect_labels: Sequence[Sequence[str]],
                 defect_class: Sequence[str], log_metric: Callable[[str, float], None] | None = None,
                 **_: Any) -> list[float]:
        correct = []
        for p, truth, labels in zip(_parsed(completions), anomalous, defect_labels):
            ok = p.ok and p.anomaly == bool(truth)
            if ok and truth and labels:
                ok = any(label_credit(d.label, labels[0]) == 1.0 for d in p.defects)
            correct.append(float(ok))
        rewards = [c * self.weight(cls) for c, cls in zip(correct, defect_class)]
        by_class: dict[str, list[float]] = {}
        for c, cls in zip(correct, defect_class):
            by_class.setdefault(cls, []).append(c)
        for cls, values in by_class.items():
            rate = sum(values) / len(values)
            old = self.success.get(cls, rate)
            self.success[cls] = self.momentum * old + (1 - self.momentum) * rate
            self.seen[cls] += len(values)
            if log_metric is not None:
                log_metric(f"success/{cls}", rate)
                log_metric(f"weight/{cls}", self.weight(cls))
        return rewards

    def stats(self) -> dict[str, dict[str, float]]:
        """Per class: running success, current weight, rarity factor, completions seen."""
        return {c: {"success": round(self.success[c], 4), "weight": round(self.weight(c), 4),
                    "rarity": round(self.rarity.get(c, 1.0), 4), "seen": float(self.seen[c])}
                for c in sorted(self.success)}


def class_counts(classes: Iterable[str]) -> dict[str, int]:
    """How often each class occurs (the input of `RareDefectEmphasis`)."""
    return dict(Counter(classes))


def reward_functions(names: Sequence[str]) -> list[RewardFunc]:
    """The registered rewards called `names`, in order (a clear error for an unknown name)."""
    unknown = [n for n in names if n not in REWARDS]
    if unknown:
        raise KeyError(f"unknown reward(s) {unknown}; known: {sorted(REWARDS)}")
    return [REWARDS[n] for n in names]
