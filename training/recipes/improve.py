""""Improve model": GRPO on the inspector's flags, evaluated before and after, registered as a
new (inactive) model version. Run as `lriad train …` in its own process, never inside the UI.

A run first reconciles what earlier runs left (`core.training_runs.recovery`), then holds the lock on its
adapter folder's name (`core.file_locks`) to its end. Its version is registered as soon as the
adapter is saved, before the "after" evaluation (minutes on a large model), and gets the "after"
figures when they are in: a kill at any moment leaves nothing the next start can't put right.
"""

from __future__ import annotations

import errno
import json
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Sequence

from lriad_desktop.core.atomic_files import FileWriteError, write_text_atomically
from lriad_desktop.core.inspection.coordinates import read_model_geometry
from lriad_desktop.core.backends.engine import ModelFolderError, validate_adapter_folder, validate_model_folder
from lriad_desktop.core.evaluation.metrics import score_by_category
from lriad_desktop.core.inspection.finding import Finding, Verdict
from lriad_desktop.core.paths import model_folder
from lriad_desktop.core.backends.pipeline import InspectionBackend, InspectionRequest, inspect_requests
from lriad_desktop.core.file_locks import RunLock
from lriad_desktop.core.training_runs.recovery import EVAL_RECORD, reconcile_training, temp_prefix
from lriad_desktop.core.store.review_store import ReviewStore, StoreError, TrainingRun, default_store_path
from lriad_desktop.core.training_runs.step_time import measured_s_per_step, steps_for_minutes
from lriad_desktop.core.training_runs.budget import TrainedLength, warm_budget_s
from lriad_desktop.core.training_runs.protocol import (DataPrepared, Emit, Evaluated, ExitCode, RunCancelled, RunDone, RunFailed,
                                               print_event)
from lriad_desktop.core.store.adapter_versions import ModelVersion
from training.recipes.flags import (NothingToLearn, ReviewedImage, balance_verdicts, collect, repeat_to,
                            training_rows)
from training.recipes.distributed import GRPOJob, RankGroup, quiet
from training.recipes.grpo import GRPORecipe, _Cancel, evaluation_device, resolve_recipe, run_grpo
from training.recipes.warm_start import never_named, warm_start


class Cancelled(Exception):
    """The run was asked to stop (SIGTERM / Cancel)."""


def evaluate_reviewed(backend: InspectionBackend, items: Sequence[ReviewedImage], cancel: _Cancel | None = None,
                      batch_size: int = 8) -> dict[str, dict]:
    """Inspect `items` with a backend through the inspection pipeline; score them per defect class and overall.

    The backend stays loaded, so one model serves several sets; an image that can't be read or inspected
    counts as unparsed.
    """
    if not items:
        return {}

    def checkpoint() -> None:
        if cancel is not None and cancel.requested:
            raise Cancelled()

    requests = [InspectionRequest(str(item.image.path), item.image.object_name or None, tag=item,
                                  references=item.references) for item in items]
    pairs = []
    for result in inspect_requests(backend, requests, batch_size, checkpoint=checkpoint):
        finding = result.finding or Finding(Verdict.UNPARSED, parse_error=result.error)
        pairs.append((_by_class(result.request.tag), finding))
    return {name: s.as_dict() for name, s in score_by_category(pairs).items()}


def evaluate_sets(base: Path, adapter: Path | None, sets: dict[str, Sequence[ReviewedImage]], device: str = "cpu",
                  max_new_tokens: int = 128, cancel: _Cancel | None = None) -> dict[str, dict]:
    """Evaluate base (+ adapter) on each named set with one loaded model, released afterwards."""
    from lriad_desktop.core.backends.engine import Inspector

    inspector = Inspector(base, adapter, device=device, max_new_tokens=max_new_tokens)
    try:
        return {name: evaluate_reviewed(inspector, items, cancel) for name, items in sets.items()}
    finally:
        inspector.close()


def _by_class(item: ReviewedImage):
    return replace(item.as_labelled(), category=item.defect_class)


def _why(cancel: _Cancel) -> dict:
    """What stopped a cancelled run, for the store (nothing to add for a plain Cancel)."""
    return {"reason": cancel.reason} if cancel.reason else {}


def warm_start_if_new(base: Path, rows: list[dict], before_flagged: dict, recipe: GRPORecipe, out: Path,
                      adapter_from: Path | None, budget_s: float | None = None) -> dict:
    """The SFT warm start (`training.recipes.warm_start`) when a flagged label is one the model never named before
    training, stopping at `budget_s` seconds (its share of a run by minutes); returns what it did (`adapter`: the
    warm-started adapter's temporary folder), or `{}`."""
    labels = never_named(before_flagged)
    if not labels or recipe.warm_start_steps <= 0:
        return {}
    out.parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=temp_prefix(out, "warm-"), dir=out.parent))
    print(f"warm start: the model never says {', '.join(labels)}; {recipe.warm_start_steps} supervised steps first",
          file=sys.stderr, flush=True)
    try:
        summary = warm_start(base, rows, [r.get("object_name", "") for r in rows], recipe, folder, adapter_from,
                             budget_s)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return {"labels": labels, **summary, "adapter": str(folder)}


def improve(db: Path, base: Path, out: Path, adapter_from: Path | None = None,
            recipe: GRPORecipe | None = None, emit: Emit = print_event, device: str = "cpu",
            synthetic_per_good: int = 0, seed: int = 0, stop_with_parent: bool = False,
            minutes: float | None = None, ranks: RankGroup | None = None) -> ExitCode:
    """Run one "Improve model" job end to end; returns a process exit status.

    With `minutes`, training stops when one more step would pass that budget (the recipe's steps, sized by
    `train_from_options` from the pace measured on earlier runs, are then only a ceiling). The budget holds the
    warm start (at most its `WARM_SHARE`) and GRPO, loading included; the checks before and after come on top.
    What it trained of what it was asked (`TrainedLength`) goes into the `done` event and the version's record.

    The active model version is never changed here: the result is registered inactive, and
    the app (or `lriad versions activate`) activates it after the inspector sees the figures.
    With `stop_with_parent`, end of file on stdin (the app is gone) cancels the run like SIGTERM.
    With `ranks` (the main process of a multi-process run) the other processes get the GRPO job when it is
    ready and train beside this one; everything else here is this process's alone.
    """
    recipe = recipe or GRPORecipe.cpu_tiny()
    cancel = _Cancel()
    cancel.install()
    if stop_with_parent:
        cancel.watch_stdin()
    out = Path(out)
    if out.exists():
        emit(RunFailed(f"{out} already exists; choose a new adapter folder"))
        return ExitCode.BAD_INPUT
    store = ReviewStore.open(db)
    lock = RunLock(out)
    run = version = None
    t0 = time.perf_counter()
    try:
        found = reconcile_training(store, [out.parent], "found when the next training run started")
        if found.summary():
            print(f"before this run: {found.summary()}", file=sys.stderr, flush=True)
        if not lock.acquire(wait_s=2.0):
            emit(RunFailed(f"Another training run is writing {out}; choose a new adapter folder"))
            return ExitCode.BAD_INPUT
        validate_model_folder(base)  # a damaged base or adapter: one line before any work
        if adapter_from is not None:
            validate_adapter_folder(adapter_from)
        data = collect(store, replay_ratio=recipe.replay_ratio, seed=seed, references=recipe.references)
        geometry = read_model_geometry(base)
        rows, skipped = training_rows(data, geometry, synthetic_per_good, seed)
        emit(DataPrepared(flagged=len(data.flagged), replay=len(data.replay), holdout=len(data.holdout),
                          rows=len(rows), data_revision=data.data_revision, skipped=tuple(skipped)))
        if not rows:
            emit(RunFailed("None of the flagged images can be read any more"))
            return ExitCode.BAD_INPUT
        if recipe.balance_verdicts:
            rows = balance_verdicts(rows)
        parent = store.active_model_version()
        run = store.add_training_run(parent.id if parent else None, data.data_revision,
                                     {"recipe": asdict(recipe), "out": str(out)})
        max_tokens = recipe.max_completion_length
        sets = {"flagged": data.flagged, "holdout": data.holdout}
        t_eval = time.perf_counter()
        before = evaluate_sets(base, adapter_from, sets, device, max_tokens, cancel)
        emit(Evaluated("before", **before))
        eval_s = time.perf_counter() - t_eval  # the evaluation after training takes about as long: in the time left
        t_training = time.perf_counter()  # the budget counts from here: the warm start, then GRPO
        warm = warm_start_if_new(base, rows, before.get("flagged", {}), recipe, out, adapter_from,
                                 warm_budget_s(minutes))
        n_rows = recipe.max_steps * recipe.batch_size // recipe.num_generations
        try:
            job = GRPOJob(str(base), repeat_to(rows, n_rows), recipe, str(out),
                          str(warm.get("adapter") or adapter_from or "") or None,
                          budget_s=minutes * 60 if minutes else None, after_s=eval_s,
                          spent_s=time.perf_counter() - t_training)
            if ranks is not None:
                ranks.handoff(job)
            summary = run_grpo(job.base, job.rows, recipe, out, job.adapter_from, emit, cancel, budget_s=job.budget_s,
                               after_s=job.after_s, spent_s=job.spent_s, ranks=ranks)
        finally:
            if warm.get("adapter"):
                shutil.rmtree(warm["adapter"], ignore_errors=True)
        if summary.get("cancelled"):
            store.finish_training_run(run.id, "cancelled", metrics={"before": before, **_why(cancel)})
            return ExitCode.CANCELLED
        warm.pop("adapter", None)
        trained = TrainedLength(minutes, None if minutes else recipe.max_steps, tuple(warm.get("labels", ())),
                                int(warm.get("steps", 0)), int(warm.get("planned", 0)), int(summary["steps"]),
                                round(time.perf_counter() - t_training, 1))
        for line in trained.shortfalls():
            print(f"trained less than asked: {line}", file=sys.stderr, flush=True)
        metrics = {"before": before, "steps": summary["steps"], "classes": summary["classes"], "warm_start": warm,
                   "s_per_step": summary.get("s_per_step"), "base_path": str(base), "trained": trained.as_dict(),
                   **data.summary()}
        # registered before the "after" evaluation: a kill during it leaves a listed, usable version
        version = store.add_model_version(out.name, str(base), str(out), parent.id if parent else None,
                                          data.data_revision, metrics)
        store.set_training_run_result(run.id, version.id)
        after = evaluate_sets(base, out, sets, device, max_tokens, cancel)
        emit(Evaluated("after", **after))
        metrics = {**metrics, "after": after, "minutes": round((time.perf_counter() - t0) / 60, 2)}
        write_text_atomically(out / EVAL_RECORD, json.dumps(metrics, indent=2) + "\n")
        store.update_model_version_metrics(version.id, metrics)
        store.finish_training_run(run.id, "done", version.id, metrics)
        emit(RunDone(version_id=version.id, adapter=str(out), minutes=metrics["minutes"], trained=trained.as_dict()))
        return ExitCode.DONE
    except NothingToLearn as err:
        emit(RunFailed(str(err)))
        return ExitCode.BAD_INPUT
    except StoreError as err:
        _finish(store, run, version, "failed", {"error": str(err)})
        emit(RunFailed(str(err)))
        return ExitCode.FAILED
    except ModelFolderError as err:
        _finish(store, run, version, "failed", {"error": str(err)})
        emit(RunFailed(str(err)))
        return ExitCode.BAD_INPUT
    except Cancelled:
        _finish(store, run, version, "cancelled", _why(cancel))
        emit(RunCancelled())
        return ExitCode.CANCELLED
    except OSError as err:
        if isinstance(err, FileWriteError):
            message = str(err)
        elif err.errno == errno.ENOSPC:
            message = f"Not enough disk space to finish the training run ({err.filename or out})"
        else:
            message = f"{type(err).__name__}: {err}"
        _finish(store, run, version, "failed", {"error": message})
        emit(RunFailed(message))
        return ExitCode.FAILED
    except Exception as err:  # the UI shows this one line; the traceback is on stderr
        import traceback

        traceback.print_exc()
        _finish(store, run, version, "failed", {"error": str(err)})
        emit(RunFailed(f"{type(err).__name__}: {err}"))
        return ExitCode.FAILED
    finally:
        lock.release()
        store.close()


def _finish(store: ReviewStore, run: TrainingRun | None, version: ModelVersion | None, status: str,
            metrics: dict) -> None:
    """Close the run's row (if it has one yet) with how it ended; a version it registered stays listed. A store
    that can't take it (the same full disk) leaves the row `running`, for the next start to reconcile."""
    if run is None:
        return
    try:
        store.finish_training_run(run.id, status, version.id if version is not None else None, metrics)
    except StoreError as err:
        print(f"the run's end isn't recorded: {err}", file=sys.stderr, flush=True)


def train_from_options(out: Path, db: Path | None = None, base: Path | None = None, adapter_from: Path | None = None,
                       preset: str | None = None, recipe_file: Path | None = None, recipe_json: str | None = None,
                       steps: int | None = None, device: str = "auto", synthetic_per_good: int = 0,
                       stop_with_parent: bool = False, emit: Emit = print_event,
                       minutes: float | None = None) -> ExitCode:
    """`lriad train` with its options as given: the app's store and the bundled model unless told
    otherwise, the recipe resolved from the preset and overrides, the evaluation where the recipe trains.
    With `minutes` (and no `steps`), the step ceiling comes from the pace measured on this store's earlier
    runs of the same base model. A bad recipe or a missing store is one `RunFailed` event and
    `ExitCode.BAD_INPUT`."""
    if minutes is not None and minutes <= 0:
        emit(RunFailed("the training time must be more than 0 minutes"))
        return ExitCode.BAD_INPUT
    try:
        recipe = resolve_recipe(preset, recipe_file, recipe_json, steps)
    except ValueError as err:
        emit(RunFailed(f"bad recipe: {err}"))
        return ExitCode.BAD_INPUT
    ranks = RankGroup.join(recipe.use_cpu)  # None in a one-process run
    if ranks is not None and not ranks.is_main:
        return follow_main(ranks, stop_with_parent)
    try:
        return _main_process(out, db, base, adapter_from, preset, recipe_file, recipe_json, steps, device,
                             synthetic_per_good, stop_with_parent, emit, minutes, recipe, ranks)
    finally:
        if ranks is not None:
            ranks.release_followers()


def follow_main(ranks: RankGroup, stop_with_parent: bool = False) -> ExitCode:
    """A rank other than the main one: wait for the main process's GRPO job, train its share of every step,
    leave. It never opens the review store or writes the adapter, and prints nothing on stdout (the protocol
    is the main process's)."""
    sys.stdout = sys.stderr  # a library's print here must not reach the app as a protocol line
    cancel = _Cancel()
    cancel.install()
    if stop_with_parent:
        cancel.watch_stdin()
    job = ranks.handoff()
    if job is None:  # the main process ended before training (nothing to learn, a Cancel, an error)
        return ExitCode.DONE
    summary = run_grpo(job.base, job.rows, job.recipe, job.out_dir, job.adapter_from, quiet, cancel,
                       budget_s=job.budget_s, after_s=job.after_s, ranks=ranks)
    return ExitCode.CANCELLED if summary.get("cancelled") else ExitCode.DONE


def _main_process(out: Path, db: Path | None, base: Path | None, adapter_from: Path | None, preset: str | None,
                  recipe_file: Path | None, recipe_json: str | None, steps: int | None, device: str,
                  synthetic_per_good: int, stop_with_parent: bool, emit: Emit, minutes: float | None,
                  recipe: GRPORecipe, ranks: RankGroup | None) -> ExitCode:
    if ranks is not None and recipe.batch_size % ranks.world_size:
        emit(RunFailed(f"bad recipe: batch_size {recipe.batch_size} can't be split evenly over "
                       f"{ranks.world_size} training processes"))
        return ExitCode.BAD_INPUT
    db = Path(db) if db is not None else default_store_path()
    if not db.is_file():
        emit(RunFailed(f"No review store at {db}: review some images first"))
        return ExitCode.BAD_INPUT
    base = model_folder(base)
    if minutes is not None and steps is None:  # the step ceiling for the budget, at the pace measured here
        with ReviewStore.open(db) as store:
            steps = steps_for_minutes(minutes, measured_s_per_step(store.training_runs(), str(base)))
        recipe = resolve_recipe(preset, recipe_file, recipe_json, steps)
    return improve(db, base, Path(out), adapter_from, recipe,
                   emit=emit, device=evaluation_device(recipe, device), synthetic_per_good=synthetic_per_good,
                   seed=recipe.seed, stop_with_parent=stop_with_parent, minutes=minutes, ranks=ranks)
