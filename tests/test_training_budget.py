"""Issue 33 #16: a run "for about 1 minute" keeps the warm start inside the minutes, and a run that trained less
than it was asked says so plainly (Qt-free sentences; a real `improve` run of the tiny model on a real store)."""

from __future__ import annotations

import json

from lriad_desktop.core.plurals import count
from lriad_desktop.core.training_runs.recovery import EVAL_RECORD
from lriad_desktop.core.training_runs.step_time import StepClock
from lriad_desktop.core.training_runs.protocol import RunDone, decode_event, encode_event
from lriad_desktop.core.training_runs.budget import WARM_SHARE, TrainedLength, warm_budget_s
from test_improve_replay import _store
from training.recipes.grpo import GRPORecipe
from training.recipes.improve import improve


def test_counts_meet_their_units_in_the_singular_and_the_plural():
    assert [count(1, "minute"), count(2, "minute"), count(1.0, "minute"), count(0.5, "minute")] == [
        "1 minute", "2 minutes", "1 minute", "0.5 minutes"]
    assert [count(1, "box"), count(3, "box"), count(2, "held-out image"), count(2, "entry")] == [
        "1 box", "3 boxes", "2 held-out images", "2 entries"]


def test_the_budget_counts_what_came_before_the_first_step():
    clock = StepClock(started=100.0, before_s=50.0)
    clock.step_done(110.0)  # a 10-second step after 50 s of loading and warm start
    assert clock.used_s == 60.0
    assert clock.out_of_time(65.0) and not clock.out_of_time(70.0)
    assert clock.eta_s(max_steps=10, budget_s=65.0) == 5.0
    assert warm_budget_s(1) == 60 * WARM_SHARE and warm_budget_s(None) is None


def test_a_run_that_trained_less_than_asked_says_so_plainly():
    issue = TrainedLength(asked_minutes=1, warm_labels=("colour",), warm_steps=12, warm_planned=120, grpo_steps=1,
                          training_s=187.0)
    said = issue.shortfalls()
    assert said == [
        "The warm start that teaches “colour” did only 12 of its 120 steps in 1 minute: the new version may still "
        "not name it. Train for about 10 minutes to teach it.",
        "Only 1 GRPO step fit in 1 minute: too few to learn much from your flags.",
        "Training took 3 minutes, more than the 1 minute asked: loading the model and a single step take that long "
        "on this machine."]
    assert TrainedLength(asked_minutes=10, grpo_steps=120, training_s=590).shortfalls() == []  # what it was asked
    assert TrainedLength(asked_steps=150, grpo_steps=150, warm_steps=2, warm_planned=2).shortfalls() == []
    assert TrainedLength(asked_steps=150, grpo_steps=40).shortfalls() == ["It did 40 of the 150 GRPO steps asked."]
    assert TrainedLength.from_dict(issue.as_dict()) == issue and TrainedLength.from_dict({}) is None
    done = decode_event(encode_event(RunDone(version_id=3, adapter="/a", minutes=3.1, trained=issue.as_dict())))
    assert isinstance(done, RunDone) and TrainedLength.from_dict(done.trained) == issue


def test_the_warm_start_stays_inside_the_minutes_and_the_run_says_what_it_did(tmp_path, tiny_model_dir):
    """A flagged label the tiny model never says starts a warm start of 200 planned steps; a run of a few
    milliseconds can do one of them and one GRPO step of 50, and its record and `done` event say so."""
    store = _store(tmp_path, flagged=4, accepted_defects=("hole",), good=3)
    db = store.path
    store.close()
    out = tmp_path / "adapters" / "v2"
    recipe = GRPORecipe.cpu_tiny(max_steps=50, batch_size=4, max_completion_length=8, warm_start_steps=200,
                                replay_ratio=0.5)
    events = []
    assert improve(db, tiny_model_dir, out, recipe=recipe, emit=events.append, minutes=1e-4) == 0
    record = json.loads((out / EVAL_RECORD).read_text())
    assert record["warm_start"]["steps"] == 1 and record["warm_start"]["planned"] == 200
    trained = TrainedLength.from_dict(record["trained"])
    assert (trained.warm_steps, trained.warm_planned, trained.grpo_steps) == (1, 200, 1)
    assert trained.warm_labels == ("scratch",) and trained.asked_minutes == 1e-4
    done = [e for e in events if isinstance(e, RunDone)]
    assert done and TrainedLength.from_dict(done[0].trained) == trained
    said = trained.shortfalls()
    assert said[0].startswith("The warm start that teaches “scratch” did only 1 of its 200 steps")
    assert said[1].startswith("Only 1 GRPO step fit")
