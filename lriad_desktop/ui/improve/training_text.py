"""How training reads in the app: log lines for the protocol's events, the status line, metrics,
durations and a version's key figures as people read them. Plain functions of core values (no
widgets), tested without Qt."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lriad_desktop.core.training_runs.protocol import (AdapterSaved, DataPrepared, Evaluated, Output, RunCancelled, RunDone,
                                               RunFailed, Step, TrainingEvent, TrainingSetUp)
from lriad_desktop.core.training_runs.progress import (MIN_HELD_OUT, SPLITS, Fall, MetricChange, RunJudgement,
                                                  TrainingProgress, judge)
from lriad_desktop.core.store.adapter_versions import ModelVersion


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{v * 100:.0f}%"


def _num(v: float | None) -> str:
    return "–" if v is None else f"{v:.2f}"


def format_metric(name: str, value: float | None) -> str:
    """A metric as people read it: accuracy and label accuracy in percent, the others with two decimals."""
    return _pct(value) if name in ("accuracy", "label_accuracy") else _num(value)


def change_text(change: MetricChange) -> str:
    """'0% → 67%' for one metric of the before/after table."""
    return f"{format_metric(change.name, change.before)} → {format_metric(change.name, change.after)}"


def format_duration(seconds: float) -> str:
    """'40 s', '3 min', '1 h 5 min'."""
    if seconds < 60:
        return f"{max(seconds, 0):.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


def scores_summary(scores: dict[str, Any]) -> str:
    """'acc 67% · F1 0.80 · IoU 0.41 (n 12)' for a scores dict."""
    if not scores:
        return "no images"
    return (f"acc {_pct(scores.get('accuracy'))} · F1 {_num(scores.get('f1'))} · "
            f"IoU {_num(scores.get('mean_iou'))} (n {scores.get('n', 0)})")


def event_line(event: TrainingEvent) -> str:
    """The run's log line for one event."""
    if isinstance(event, DataPrepared):
        extra = f", {len(event.skipped)} unreadable skipped" if event.skipped else ""
        return (f"Data: {event.flagged} flagged, {event.replay} replayed, {event.holdout} held out → "
                f"{event.rows} training rows{extra}")
    if isinstance(event, Evaluated):
        return (f"{event.when.capitalize()}: held out {scores_summary(event.holdout.get('all', {}))}; "
                f"flagged (trained on) {scores_summary(event.flagged.get('all', {}))}")
    if isinstance(event, TrainingSetUp):
        start = Path(event.adapter_from).name if event.adapter_from else "the base model"
        on = f", {event.processes} processes" if event.processes > 1 else ""
        return f"Training from {start}: {event.rows} rows, {event.max_steps} steps{on}"
    if isinstance(event, Step):
        return (f"Step {event.step}/{event.max_steps} · reward {event.reward:.3f} · KL {event.kl:.4f} · "
                f"{event.s_per_step or 0:.1f} s/step")
    if isinstance(event, AdapterSaved):
        return f"Adapter saved to {event.adapter}; evaluating it"
    if isinstance(event, RunDone):
        return f"Done in {format_duration((event.minutes or 0) * 60)}: new version {Path(event.adapter).name}"
    if isinstance(event, RunCancelled):
        return CANCELLED_LINE
    if isinstance(event, RunFailed):
        return f"Error: {event.message}"
    assert isinstance(event, Output)
    return event.text


CANCELLED_LINE = "Cancelled: the active model is unchanged"


def status_text(progress: TrainingProgress) -> str:
    """One line for the progress bar."""
    p = progress
    if p.phase == "training" and p.max_steps:
        if p.step < 3:  # the first steps carry the warm-up: no pace to go by yet
            eta = " · measuring the pace…"
        else:
            eta = f" · about {format_duration(p.eta_s)} left" if p.eta_s is not None else ""
            eta += f" ({p.s_per_step:.1f} s a step)" if p.s_per_step else ""
        if p.budget_s:
            done = format_duration(p.elapsed_s or 0)
            return f"Step {p.step} · {done} of {format_duration(p.budget_s)}{eta}"
        return f"Step {p.step} / {p.max_steps}{eta}"
    return {"starting": "Starting…", "evaluating": "Evaluating before training…" if not p.rewards
            else "Evaluating the new adapter…", "saving": "Registering the new version…",
            "done": "Finished", "cancelled": "Cancelled", "failed": "Failed"}.get(p.phase, p.phase)


def _images(n: int) -> str:
    return f"{n} image{'s' if n != 1 else ''}"


METRIC_WORDS = {"accuracy": "accuracy", "label_accuracy": "label accuracy", "f1": "F1", "mean_iou": "mean IoU",
                "success": "success"}
WHERE = {"holdout": "On held-out images", "flagged": "On the flagged images it trained on",
         "training": "During training"}


def held_out_headline(judgement: RunJudgement, changes: tuple[MetricChange, ...] = ()) -> str:
    """The run's headline: its held-out figures with their image count, or "can't judge yet"."""
    n = judgement.held_out
    if not judgement.judgeable:
        few = "no held-out images" if n == 0 else f"only {_images(n)} held out"
        return (f"Can't judge yet: {few} ({MIN_HELD_OUT} needed). Images you accept are set aside to measure "
                "runs on: accept more of the model's findings before trusting these figures.")
    figures = " · ".join(f"{METRIC_WORDS[c.name]} {change_text(c)}" for c in changes)
    return f"On the {n} held-out images (accepted, never trained on): {figures}"


def trained_on_title(judgement: RunJudgement, what: str = "") -> str:
    """The title over the flagged figures, which say how well it learned, not how good it is; `what` says
    what they are ('1 flag, 1 box correction', from `reviews_in_words`)."""
    if what:
        return (f"TRAINED ON THESE: the {_images(judgement.flagged)} you flagged or corrected ({what}; it learned "
                "from them, so they flatter it)")
    return (f"TRAINED ON THESE: the {_images(judgement.flagged)} you flagged (it learned from them, so they "
            "flatter it)")


REVIEW_WORDS = {"flag": ("flag", "flags"), "label": ("type correction", "type corrections"),
                "box": ("box correction", "box corrections")}


def reviews_in_words(kinds: dict[str, int]) -> str:
    """'1 flag, 1 box correction' from how many current reviews of each kind ('flag', 'label', 'box')."""
    parts = []
    for kind, words in REVIEW_WORDS.items():
        n = kinds.get(kind, 0)
        if n:
            parts.append(f"{n} {words[n != 1]}")
    return ", ".join(parts)


def _fall_sentence(where: str, falls: list[Fall]) -> str:
    cls = falls[0].defect_class
    what = "overall" if cls == "all" else cls
    if where == "training":
        f = falls[0]
        return f"{WHERE[where]}, {what}'s success fell from {_pct(f.before)} to {_pct(f.after)}."
    figures = ", ".join(f"{METRIC_WORDS[f.metric]} {format_metric(f.metric, f.before)} → "
                        f"{format_metric(f.metric, f.after)}" for f in falls)
    return f"{WHERE[where]}, {what} fell: {figures}."


def warnings(judgement: RunJudgement) -> list[str]:
    """What the table alone would hide, in words: boxes that vanished, every figure that fell."""
    lines = []
    j = judgement
    if j.boxes_gone and j.boxes_before is not None:
        lines.append(f"No boxes any more: the new version draws no boxes (the one before drew {j.boxes_before} "
                     "on the same images), so it can't show where a defect is.")
    elif j.boxes_gone:
        lines.append("No boxes any more: mean IoU fell to 0, so its boxes miss every defect.")
    elif j.draws_no_boxes:
        lines.append("The new version draws no boxes on these images (nor did the one before).")
    groups: dict[tuple[str, str], list[Fall]] = {}
    for fall in j.falls:
        if j.boxes_gone and fall.metric == "mean_iou" and fall.after == 0:
            continue  # said once above
        groups.setdefault((fall.split, fall.defect_class), []).append(fall)
    lines += [_fall_sentence(where, falls) for (where, _), falls in groups.items()]
    return lines


def key_metrics(version: ModelVersion) -> str:
    """'held out F1 0.90 → 0.91 (12 images) · trained on F1 0.20 → 0.65' from a version's metrics (or ''); the
    held-out figure reads "can't judge" on too few images, and vanished boxes are said."""
    before, after = version.metrics.get("before") or {}, version.metrics.get("after") or {}
    if not after:
        return ""
    j = judge(before, after)
    bits = []
    for key, title in SPLITS:
        b = ((before.get(key) or {}).get("all") or {}).get("f1")
        a = ((after.get(key) or {}).get("all") or {}).get("f1")
        if key == "holdout" and not j.judgeable:
            bits.append(f"held out: can't judge ({_images(j.held_out)})")
        elif a is not None:
            where = f"held out F1 {_num(b)} → {_num(a)} ({_images(j.held_out)})" if key == "holdout" else \
                f"trained on F1 {_num(b)} → {_num(a)}"
            bits.append(where)
    if j.boxes_gone:
        bits.append("no boxes any more")
    return " · ".join(bits)
