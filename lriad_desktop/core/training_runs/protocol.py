"""The `lriad train --events jsonl` protocol, defined once: the events a run prints (one JSON object per
line on stdout), their encoder and decoder, the exit codes, and the command line the app starts.

Writers (`training.recipes.improve`, `training.recipes.grpo`, `lriad train` in `cli/commands.py`) build the event classes
below and print them with `print_event`; readers (the app) turn each stdout line back into one
with `decode_event`. Nothing on either side reads or writes the JSON by hand, and nothing matches
on log text.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Any, Callable, ClassVar, Union

RECIPE_ENV = "LRIAD_TRAIN_RECIPE"  # a JSON recipe ({"preset": …, overrides}) for every run of this app


class ExitCode(IntEnum):
    """How `lriad train` ends."""

    DONE = 0
    FAILED = 1  # an error in the run (the last `RunFailed` event says which)
    BAD_INPUT = 2  # nothing to train on, a bad recipe, no store, an existing output folder
    CANCELLED = 3  # SIGTERM, Cancel, or the app that started it has gone


# --- the events ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class DataPrepared:
    """The flagged, replayed and held-out images the run will use."""

    kind: ClassVar[str] = "data"
    flagged: int = 0
    replay: int = 0
    holdout: int = 0
    rows: int = 0
    data_revision: int | None = None
    skipped: tuple[str, ...] = ()  # why each unreadable image was left out


@dataclass(frozen=True)
class Evaluated:
    """Scores before or after training: per split (`flagged`, `holdout`), per defect class and 'all'."""

    kind: ClassVar[str] = "eval"
    when: str = "before"  # "before" | "after"
    flagged: dict[str, dict[str, Any]] = field(default_factory=dict)
    holdout: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def scores(self) -> dict[str, dict[str, dict[str, Any]]]:
        """`{"flagged": …, "holdout": …}` as stored in a version's metrics."""
        return {"flagged": self.flagged, "holdout": self.holdout}


@dataclass(frozen=True)
class TrainingSetUp:
    """The trainer is built and about to run `max_steps` steps."""

    kind: ClassVar[str] = "setup"
    base: str = ""
    adapter_from: str = ""  # "" when training starts from the base model
    rows: int = 0
    max_steps: int = 0
    recipe: dict[str, Any] = field(default_factory=dict)
    budget_s: float | None = None  # a run for so many minutes: training stops there (max_steps is a ceiling)
    processes: int = 1  # training processes (data-parallel under accelerate; 1: the one-process run)


@dataclass(frozen=True)
class Step:
    """One optimiser step: mean reward, KL, time left, the rewards' means, per-class success."""

    kind: ClassVar[str] = "step"
    step: int = 0
    max_steps: int = 0
    reward: float = 0.0
    kl: float = 0.0
    eta_s: float | None = None  # the steps left at the measured pace (or the budget's rest) + the evaluation after
    s_per_step: float | None = None  # the measured pace: the median of the recent steps
    elapsed_s: float | None = None  # training time so far
    rewards: dict[str, float] = field(default_factory=dict)
    classes: dict[str, dict[str, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class AdapterSaved:
    """The adapter is in place (written atomically); its evaluation follows."""

    kind: ClassVar[str] = "saved"
    adapter: str = ""
    steps: int = 0
    minutes: float | None = None
    classes: dict[str, dict[str, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class RunDone:
    """The run finished: the new version is registered (inactive)."""

    kind: ClassVar[str] = "done"
    version_id: int | None = None
    adapter: str = ""
    minutes: float | None = None
    trained: dict[str, Any] = field(default_factory=dict)  # `TrainedLength.as_dict()`: what it trained of what was asked


@dataclass(frozen=True)
class RunCancelled:
    """The run stopped on request; the active model is unchanged."""

    kind: ClassVar[str] = "cancelled"
    step: int | None = None


@dataclass(frozen=True)
class RunFailed:
    """The run can't go on; `message` is one line for the user."""

    kind: ClassVar[str] = "error"
    message: str = "unknown error"


@dataclass(frozen=True)
class Output:
    """A stdout line that is no event (a library's print); readers show it in the log as it is."""

    kind: ClassVar[str] = "output"
    text: str = ""


TrainingEvent = Union[DataPrepared, Evaluated, TrainingSetUp, Step, AdapterSaved, RunDone, RunCancelled, RunFailed,
                      Output]
Emit = Callable[[TrainingEvent], None]
EVENT_TYPES: dict[str, type] = {cls.kind: cls for cls in (DataPrepared, Evaluated, TrainingSetUp, Step, AdapterSaved,
                                                          RunDone, RunCancelled, RunFailed)}  # kind → class


# --- encoding and decoding -----------------------------------------------------------------------
def encode_event(event: TrainingEvent) -> str:
    """One line of the protocol: `{"event": kind, ...fields}` as JSON (no newline)."""
    fields = {f.name: getattr(event, f.name) for f in dataclasses.fields(event)}
    return json.dumps({"event": event.kind, **fields})


_SHAPES: dict[str, tuple[type, ...]] = {"int": (int,), "float": (int, float), "str": (str,), "dict": (dict,),
                                        "tuple": (list, tuple), "None": (type(None),)}


def _fits(annotation: str, value: Any) -> bool:
    """Whether a decoded JSON value has the shape a field's annotation (`int | None`, `dict[…]`) names."""
    shapes = [_SHAPES[part.split("[")[0].strip()] for part in annotation.split("|")]
    return any(isinstance(value, shape) and not isinstance(value, bool) for shape in shapes)


def decode_event(line: str) -> TrainingEvent:
    """The event on a stdout line; anything else (a library's stray print, an unknown kind, fields of
    the wrong shape) comes back as `Output` holding the line."""
    text = line.strip()
    try:
        value = json.loads(text) if text.startswith("{") else None
    except ValueError:
        value = None
    cls = EVENT_TYPES.get(value.get("event")) if isinstance(value, dict) else None
    if cls is None:
        return Output(text)
    known = {f.name: str(f.type) for f in dataclasses.fields(cls)}
    kwargs = {k: v for k, v in value.items() if k in known}
    if not all(_fits(known[k], v) for k, v in kwargs.items()):
        return Output(text)
    if "skipped" in kwargs:
        kwargs["skipped"] = tuple(str(v) for v in kwargs["skipped"])
    return cls(**kwargs)


def print_event(event: TrainingEvent) -> None:
    """Write one event per line on stdout (the `--events jsonl` protocol).

    If the reader is gone (the app was killed), the event is dropped rather than failing the run.
    """
    try:
        print(encode_event(event), flush=True)
    except (BrokenPipeError, ValueError):  # ValueError: stdout already closed
        try:
            sys.stdout = open(os.devnull, "w", encoding="utf-8")  # so the interpreter's exit flush is quiet
        except OSError:
            pass


# --- the command line ----------------------------------------------------------------------------
def recipe_from_env() -> dict[str, Any] | None:
    """The recipe override in `LRIAD_TRAIN_RECIPE`, or None (then `lriad train` picks its preset)."""
    text = os.environ.get(RECIPE_ENV, "").strip()
    if not text:
        return None
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError(f"{RECIPE_ENV} must hold a JSON object")
    return value


def train_command(db: Path, base: Path, out: Path, adapter_from: Path | None = None,
                  recipe: dict[str, Any] | None = None, device: str | None = None, steps: int | None = None,
                  minutes: float | None = None, processes: int = 1, sharding: str = "ddp") -> list[str]:
    """The `lriad train` command for this app: `python -m lriad_desktop train …`, or the frozen app
    re-launched with `train …` (a frozen build has no separate Python). `steps` or `minutes`: how long.
    `processes` > 1: data-parallel under accelerate, with `sharding` its config (ddp, zero2, zero3)."""
    if getattr(sys, "frozen", False):
        head = [sys.executable, "train"]
    else:
        head = [sys.executable, "-m", "lriad_desktop", "train"]
    # --stop-with-parent: the run cancels itself if the app dies (its stdin pipe from the app closes).
    args = ["--db", str(db), "--base", str(base), "--out", str(out), "--events", "jsonl", "--stop-with-parent"]
    if adapter_from is not None:
        args += ["--adapter-from", str(adapter_from)]
    if recipe:
        args += ["--recipe-json", json.dumps(recipe)]
    if device and device != "auto":
        args += ["--device", device]
    if steps is not None:
        args += ["--steps", str(steps)]
    if minutes is not None:
        args += ["--minutes", f"{minutes:g}"]
    if processes > 1:
        args += ["--num-processes", str(processes)]
        if sharding != "ddp":
            args += ["--accelerate-config", sharding]
    return head + args
