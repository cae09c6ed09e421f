"""How long training takes: a pace measured from the steps that settles, the time left, a time budget that a
real GRPO run stops at, and the pace of earlier runs."""

import math
import random

import numpy as np

from lriad_desktop.core.training_runs.step_time import (FALLBACK_S_PER_STEP, StepClock, measured_s_per_step, minutes_for_steps,
                                          steps_for_minutes)
from lriad_desktop.core.store.versions import TrainingRun


def _clock_run(durations):
    clock, now, etas = StepClock(started=0.0), 0.0, []
    for d in durations:
        now += d
        clock.step_done(now)
        etas.append(clock.eta_s(len(durations)))
    return clock, etas


def test_the_time_left_settles_where_elapsed_over_steps_wanders():
    """A slow first step (warm-up), then 4 s steps on a shared machine: some 2x slower now and then."""
    rng = random.Random(0)
    durations = [40.0] + [4.0 * rng.uniform(0.85, 1.15) * (2.0 if rng.random() < 0.1 else 1.0) for _ in range(149)]
    clock, etas = _clock_run(durations)
    true_left = [sum(durations[i + 1:]) for i in range(len(durations))]
    errors = [abs(e - t) / max(t, 1.0) for e, t in zip(etas, true_left)]
    naive = [sum(durations[:i + 1]) / (i + 1) * (len(durations) - i - 1) for i in range(len(durations))]
    naive_errors = [abs(e - t) / max(t, 1.0) for e, t in zip(naive, true_left)]
    assert max(errors[5:100]) < 0.2  # within a fifth from step 6 on
    assert max(naive_errors[5:30]) > 0.5  # the mean since the start is still carrying the warm-up
    assert 3.6 < clock.s_per_step < 4.6
    # it settles: from step 10 on, one step (a slow one included) moves the estimate by less than 15 %
    assert all(abs(etas[i] - etas[i + 1]) < 0.15 * etas[i] for i in range(10, 140))


def test_budget_and_what_comes_after():
    clock = StepClock(started=0.0)
    assert clock.s_per_step is None and clock.eta_s(10) is None and not clock.out_of_time(5)
    for t in (3.0, 5.0, 7.0):
        clock.step_done(t)
    assert clock.s_per_step == 2.0 and clock.eta_s(10, after_s=30) == 7 * 2.0 + 30
    assert clock.eta_s(100, budget_s=60.0) == 53.0  # the budget's rest, not 97 steps
    assert not clock.out_of_time(9.0) and clock.out_of_time(8.5)
    assert steps_for_minutes(10, 4.0) == 188 and steps_for_minutes(1, None) == math.ceil(60 / FALLBACK_S_PER_STEP * 1.25)
    assert round(minutes_for_steps(150, 4.4), 1) == 11.0


def test_the_pace_of_the_newest_finished_run_of_that_model():
    def run(i, status, pace, base="/m"):
        return TrainingRun(i, status, None, None, None, {}, {"s_per_step": pace, "base_path": base}, "", "t", None)

    runs = [run(1, "done", 3.0), run(2, "done", 4.5), run(3, "failed", 9.0), run(4, "done", 1.0, base="/other")]
    assert measured_s_per_step(runs, "/m") == 4.5 and measured_s_per_step(runs, "/new") is None


def test_a_real_grpo_run_stops_at_its_time_budget(tmp_path):
    """A 50-step ceiling and a budget shorter than one step: the run ends after its first step."""
    from lriad_desktop.core.inspection.coordinates import read_model_geometry
    from lriad_desktop.core.paths import bundled_model_dir
    from lriad_desktop.core.training_runs.protocol import Step, TrainingSetUp
    from training.recipes.grpo import GRPORecipe, run_grpo
    from training.synthetic_data.samples import generate_sample
    from training.synthetic_data.targets import grpo_row_from_sample

    model_dir = bundled_model_dir()
    geo = read_model_geometry(model_dir)
    rows = [grpo_row_from_sample(generate_sample(np.random.default_rng([5, i]), size=(96, 80)), geo) for i in range(8)]
    events = []
    recipe = GRPORecipe.cpu_tiny(max_steps=50, batch_size=4, max_completion_length=8)
    summary = run_grpo(model_dir, rows, recipe, tmp_path / "v1", emit=events.append, budget_s=0.01, after_s=12.0)
    setup = next(e for e in events if isinstance(e, TrainingSetUp))
    steps = [e for e in events if isinstance(e, Step)]
    assert setup.budget_s == 0.01 and setup.max_steps == 50
    assert summary["steps"] == 1 and len(steps) == 1 and not summary["cancelled"]
    assert steps[0].elapsed_s is not None and steps[0].s_per_step > 0
    assert steps[0].eta_s == 12.0  # nothing left of the budget; the evaluation after it still is
    assert (tmp_path / "v1" / "adapter_model.safetensors").is_file()
