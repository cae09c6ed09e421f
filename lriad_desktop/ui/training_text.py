"""How training reads in the app: log lines for the protocol's events, the status line, metrics,
durations and a version's key figures as people read them. Plain functions of core values (no
widgets), tested without Qt."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lriad_desktop.core.train_protocol import (AdapterSaved, DataPrepared, Evaluated, Output, RunCancelled, RunDone,
                                               RunFailed, Step, TrainingEvent, TrainingSetUp)
from lriad_desktop.core.training_progress import SPLITS, MetricChange, TrainingProgress
from lriad_desktop.core.versions import ModelVersion


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{v * 100:.0f}%"


def _num(v: float | None) -> str:
    return "–" if v is None else f"{v:.2f}"


def format_metric(name: str, value: float | None) -> str:
    """A metric as people read it: accuracy in percent, the others with two decimals."""
    return _pct(value) if name == "accuracy" else _num(value)


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
        return (f"{event.when.capitalize()}: flagged {scores_summary(event.flagged.get('all', {}))}; "
                f"held out {scores_summary(event.holdout.get('all', {}))}")
    if isinstance(event, TrainingSetUp):
        start = Path(event.adapter_from).name if event.adapter_from else "the base model"
        return f"Training from {start}: {event.rows} rows, {event.max_steps} steps"
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


def key_metrics(version: ModelVersion) -> str:
    """'flagged F1 0.20 → 0.65 · held out F1 0.90 → 0.91' from a version's metrics (or '')."""
    before, after = version.metrics.get("before") or {}, version.metrics.get("after") or {}
    bits = []
    for key, title in SPLITS:
        b = ((before.get(key) or {}).get("all") or {}).get("f1")
        a = ((after.get(key) or {}).get("all") or {}).get("f1")
        if a is not None:
            bits.append(f"{title.lower()} F1 {_num(b)} → {_num(a)}")
    return " · ".join(bits)
