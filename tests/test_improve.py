""""Improve model" end to end on a real SQLite store and a real tiny model: data from flags,
before/after evaluation, an inactive model version; cancel and kill leave the active model alone.
"""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from lriad_desktop.core.inspection.finding import Box, Defect, Verdict
from lriad_desktop.core.store.review import Review, ReviewKind
from lriad_desktop.core.store.review_store import ReviewStore
from lriad_desktop.core.training_runs.protocol import Evaluated, ExitCode, RunFailed, decode_event
from training.recipes.flags import NothingToLearn, collect, repeat_to, training_rows
from training.recipes.grpo import GRPORecipe
from training.recipes.improve import improve, train_from_options
from training.synthetic_data.samples import generate_sample

RECIPE = GRPORecipe.cpu_tiny(max_steps=2, batch_size=4, max_completion_length=10, warm_start_steps=0)


def make_store(tmp_path, n_flag=3, n_accept=5):
    """A store with flagged (disagreed) and accepted images written as an inspector would."""
    folder = tmp_path / "line3"
    folder.mkdir()
    store = ReviewStore.open(tmp_path / "reviews.sqlite3")
    for i in range(n_flag + n_accept):
        s = generate_sample(np.random.default_rng([11, i]), defect="scratch" if i < n_flag else False, size=(96, 80))
        path = folder / f"{i:03d}.png"
        s.image.save(path)
        img = store.add_image(path, "metal washer")
        if i < n_flag:
            d = s.defects[0]
            review = Review(ReviewKind.FLAG, Verdict.ANOMALOUS, (Defect("scratch", Box(*map(float, d.box))),),
                            note="model missed it")
        else:
            review = Review(ReviewKind.ACCEPT, Verdict.NORMAL)
        store.save_review(img.id, review)
    return store


def test_collect_splits_flags_replay_and_holdout(tmp_path, tiny_model_dir):
    from lriad_desktop.core.inspection.coordinates import read_model_geometry

    store = make_store(tmp_path, n_flag=4, n_accept=10)
    data = collect(store, replay_ratio=0.5, holdout_fraction=0.2)
    assert len(data.flagged) == 4 and len(data.replay) == 2 and len(data.holdout) == 2
    assert not {i.image.id for i in data.replay} & {i.image.id for i in data.holdout}
    rows, skipped = training_rows(data, read_model_geometry(tiny_model_dir), synthetic_per_good=1)
    assert len(rows) == 4 + 2 + 2 and not skipped
    flagged = rows[0]
    assert flagged["anomalous"] and flagged["defect_labels"] == ["scratch"] and flagged["defect_class"] == "scratch"
    assert len(repeat_to(rows[:3], 7)) == 7
    empty = ReviewStore.open(tmp_path / "empty.sqlite3")
    with pytest.raises(NothingToLearn, match="No flagged images"):
        collect(empty)


def test_improve_registers_an_inactive_version_with_before_after(tmp_path, tiny_model_dir, monkeypatch):
    from lriad_desktop.core.backends.engine import Inspector

    loads = []  # (adapter) for each time the evaluation really loads weights
    real_load = Inspector.load

    def counting_load(self):
        if not self.loaded:
            loads.append(self.adapter_dir)
        return real_load(self)

    monkeypatch.setattr(Inspector, "load", counting_load)
    store = make_store(tmp_path)
    base_version = store.add_model_version("lriad-tiny", str(tiny_model_dir))
    store.activate_model_version(base_version.id)
    db = store.path
    store.close()
    events = []
    out = tmp_path / "adapters" / "v2"
    assert improve(db, tiny_model_dir, out, recipe=RECIPE, emit=events.append) == 0
    kinds = [e.kind for e in events]
    assert kinds[0] == "data" and "setup" in kinds and kinds.count("step") == 2 and kinds[-1] == "done"
    before = next(e for e in events if isinstance(e, Evaluated) and e.when == "before")
    assert before.flagged["all"]["n"] == 3 and "scratch" in before.flagged
    assert before.holdout["all"]["n"] >= 1
    assert loads == [None, out]  # one load per adapter: before (base) and after, each for flagged + held-out
    store = ReviewStore.open(db)
    versions = store.model_versions()
    assert [v.name for v in versions] == ["lriad-tiny", "v2"]
    assert store.active_model_version().id == base_version.id  # never activated behind the inspector's back
    assert versions[1].parent_id == base_version.id and versions[1].adapter_path == str(out)
    assert set(versions[1].metrics) >= {"before", "after", "steps"}
    assert [r.status for r in store.training_runs()] == ["done"]
    # the same output folder is refused: adapter versions are never overwritten
    errors = []
    assert improve(db, tiny_model_dir, out, recipe=RECIPE, emit=errors.append) == ExitCode.BAD_INPUT == 2
    assert isinstance(errors[-1], RunFailed) and "already exists" in errors[-1].message


def test_train_options_that_cannot_run_are_one_event_and_exit_2(tmp_path, tiny_model_dir):
    events = []
    missing = tmp_path / "none.sqlite3"
    assert train_from_options(tmp_path / "out", missing, tiny_model_dir, emit=events.append) == ExitCode.BAD_INPUT
    assert isinstance(events[-1], RunFailed) and events[-1].message.startswith(f"No review store at {missing}")
    assert train_from_options(tmp_path / "out", missing, recipe_json='{"lr": 1}', emit=events.append) == 2
    assert events[-1].message == "bad recipe: unknown recipe field(s) lr"
    cmd = [sys.executable, "-m", "lriad_desktop", "train", "--out", str(tmp_path / "o"), "--preset", "huge"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and decode_event(proc.stdout.splitlines()[-1]) == RunFailed(
        "bad recipe: unknown recipe preset 'huge' (cpu_tiny or gpu_large or multi_gpu)")
    assert not (tmp_path / "o").exists()


def _train_cmd(db, base, out, steps=40):
    recipe = {"preset": "cpu_tiny", "max_steps": steps, "batch_size": 4, "max_completion_length": 10,
              "warm_start_steps": 0}  # the warm start has its own test (test_improve_replay.py)
    return [sys.executable, "-m", "lriad_desktop", "train", "--db", str(db), "--base", str(base), "--out", str(out),
            "--events", "jsonl", "--recipe-json", json.dumps(recipe)]


def _wait_for_step(proc, timeout=240):
    deadline = time.time() + timeout
    lines = []
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if '"event": "step"' in line:
            return lines
    raise AssertionError("no step event: " + "".join(lines) + proc.stderr.read())


def test_cancel_stops_cleanly_and_kill_leaves_nothing(tmp_path, tiny_model_dir):
    store = make_store(tmp_path)
    db = store.path
    store.close()
    out = tmp_path / "adapters" / "cancelled"
    proc = subprocess.Popen(_train_cmd(db, tiny_model_dir, out), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    _wait_for_step(proc)
    proc.send_signal(signal.SIGTERM)
    rest, _ = proc.communicate(timeout=120)
    assert proc.returncode == 3 and '"event": "cancelled"' in rest
    assert not out.exists()
    killed = tmp_path / "adapters" / "killed"
    proc = subprocess.Popen(_train_cmd(db, tiny_model_dir, killed), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    _wait_for_step(proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    assert not killed.exists()
    store = ReviewStore.open(db)
    assert [v.name for v in store.model_versions()] == []
    assert {r.status for r in store.training_runs()} <= {"cancelled", "running"}


def _exited(pid: int) -> bool:
    """True once `pid` is gone or a zombie (a reparented child may never be reaped in a container)."""
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8") as fh:
            return any(line.startswith("State:") and "Z" in line.split()[1] for line in fh)
    except FileNotFoundError:
        return True


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads /proc to watch the orphaned run")
def test_a_run_cancels_itself_when_the_app_that_started_it_is_killed(tmp_path, tiny_model_dir):
    store = make_store(tmp_path)
    db = store.path
    store.close()
    out = tmp_path / "adapters" / "orphan"
    cmd = _train_cmd(db, tiny_model_dir, out) + ["--stop-with-parent"]
    # A stand-in for the app: like QProcess it gives the run pipes for stdin and stdout, relays the
    # run's events, and is then SIGKILLed, so the run's stdin reaches end of file and its stdout breaks.
    app = ("import subprocess, sys\n"
           f"child = subprocess.Popen({cmd!r}, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)\n"
           "print('pid', child.pid, flush=True)\n"
           "for line in child.stdout:\n"
           "    print(line, end='', flush=True)\n")
    proc = subprocess.Popen([sys.executable, "-c", app], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    child_pid = int(proc.stdout.readline().split()[1])
    _wait_for_step(proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    deadline = time.time() + 120
    while not _exited(child_pid) and time.time() < deadline:
        time.sleep(0.2)
    alive = not _exited(child_pid)
    if alive:
        os.kill(child_pid, signal.SIGKILL)
    assert not alive, "the run kept training after the app was killed"
    assert not out.exists()
    store = ReviewStore.open(db)
    (run,) = store.training_runs()
    assert run.status == "cancelled" and "app" in run.metrics["reason"]
    assert store.model_versions() == []


def test_stdin_watch_cancels_at_end_of_file_and_needs_a_stdin(monkeypatch):
    import io

    from training.recipes.grpo import _Cancel

    cancel = _Cancel()
    cancel.watch_stdin(io.BytesIO(b"stray input is read and ignored")).join(timeout=10)
    assert cancel.requested and cancel.reason
    monkeypatch.setattr(sys, "stdin", None)  # a windowed build without stdin: nothing to watch
    quiet = _Cancel()
    assert quiet.watch_stdin() is None and not quiet.requested


def _damaged_copy(src, dst, weights_name):
    import shutil

    shutil.copytree(src, dst)
    weights = dst / weights_name
    with open(weights, "r+b") as fh:
        fh.truncate(weights.stat().st_size // 2)
    return weights


def test_a_damaged_base_or_adapter_is_one_error_line_and_no_run(tmp_path, tiny_model_dir):
    """`lriad train` on a truncated base model, or continuing from a truncated adapter: one `error` event naming
    the file, exit 2, no traceback, no training run left `running`."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForImageTextToText

    from lriad_desktop.core.backends.engine import ModelFolderError
    from training.recipes.grpo import run_grpo

    store = make_store(tmp_path)
    db = store.path
    store.close()
    base = tmp_path / "base"
    base_weights = _damaged_copy(tiny_model_dir, base, "model.safetensors")
    proc = subprocess.run(_train_cmd(db, base, tmp_path / "out1", steps=1), capture_output=True, text=True, timeout=300)
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert proc.returncode == 2, proc.stderr
    assert [e["event"] for e in events] == ["error"] and events[0]["message"].startswith(f"{base_weights} is cut short")
    assert "Traceback" not in proc.stderr
    adapter = tmp_path / "good-adapter"
    model = AutoModelForImageTextToText.from_pretrained(tiny_model_dir)
    get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj"])).save_pretrained(adapter)
    broken = tmp_path / "adapter"
    adapter_weights = _damaged_copy(adapter, broken, "adapter_model.safetensors")
    proc = subprocess.run(_train_cmd(db, tiny_model_dir, tmp_path / "out2", steps=1) + ["--adapter-from", str(broken)],
                          capture_output=True, text=True, timeout=300)
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert proc.returncode == 2 and events[-1]["event"] == "error", proc.stderr
    assert events[-1]["message"].startswith(f"{adapter_weights} is cut short") and "Traceback" not in proc.stderr
    with ReviewStore.open(db) as store:
        assert store.training_runs() == []
    assert not (tmp_path / "out1").exists() and not (tmp_path / "out2").exists()
    # the training run itself checks too (the self-test and the recipe call it directly)
    with pytest.raises(ModelFolderError, match="is cut short"):
        run_grpo(base, [], RECIPE, tmp_path / "out3", emit=lambda e: None)
    with pytest.raises(ModelFolderError, match="is cut short"):
        run_grpo(tiny_model_dir, [], RECIPE, tmp_path / "out4", adapter_from=broken, emit=lambda e: None)
