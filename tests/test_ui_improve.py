""""Improve model" from the window: a real `lriad train` subprocess on a real store with flags and the
tiny random model; progress, before/after, Activate (hot swap), Discard, Cancel, closing while
training, the versions dialog and roll back. Plus the Qt-free protocol pieces (`core.training_runs.protocol`,
`core.training_runs.progress`, `ui.improve.training_text`).
"""

import json
import os
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from lriad_desktop.core.backends.engine import Inspector
from lriad_desktop.core.inspection.finding import Box, Defect, Verdict
from lriad_desktop.core.settings import Settings
from lriad_desktop.core.store.review import Review, ReviewKind
from lriad_desktop.core.store.review_store import ReviewStore
from lriad_desktop.core.training_runs.protocol import (RECIPE_ENV, DataPrepared, Evaluated, ExitCode, Output, RunCancelled,
                                               RunDone, RunFailed, Step, TrainingSetUp, decode_event, encode_event,
                                               train_command)
from lriad_desktop.core.training_runs.progress import TrainingProgress, compare
from lriad_desktop.core.store.adapter_versions import adapters_dir, next_adapter_dir, rollback_target, sync_active_version
from lriad_desktop.ui.improve.training_text import change_text, event_line, status_text
from lriad_desktop.ui.improve.charts import LineChart
from lriad_desktop.ui.review.inspection import ModelState
from lriad_desktop.ui.improve.training_length import TrainingLength
from lriad_desktop.ui.improve.training_process import TrainingPlan, plan_improvement
from test_ui_helpers import UI_MARKS, add_and_wait, make_window, no_leaked_windows, part_image  # noqa: F401

pytestmark = UI_MARKS
TINY_RECIPE = {"preset": "cpu_tiny", "max_steps": 2, "batch_size": 4, "max_completion_length": 8}
RUN_TIMEOUT_MS = 400_000  # a real training process on a busy machine: generous, never asserted as a time


def _flag_store(folder: Path, n_flag: int = 3, n_accept: int = 5) -> Path:
    """The app's store (in the test's data dir) with flagged and accepted images, written as an inspector would."""
    folder.mkdir(parents=True, exist_ok=True)
    with ReviewStore.open() as store:
        for i in range(n_flag + n_accept):
            path = part_image(folder / f"{i:03d}.png", size=(96, 80), scratch=i < n_flag, seed=i)
            img = store.add_image(path, "washer")
            if i < n_flag:
                review = Review(ReviewKind.FLAG, Verdict.ANOMALOUS, (Defect("scratch", Box(38, 28, 58, 44)),),
                                note="model missed it")
            else:
                review = Review(ReviewKind.ACCEPT, Verdict.NORMAL)
            store.save_review(img.id, review)
        return store.path


@pytest.fixture
def improve_window(make_window, tiny_model_dir, tmp_path, monkeypatch, qtbot):
    """A main window on a store with 3 flags, the tiny model from the settings (adapter honoured), tiny recipe."""
    monkeypatch.setenv(RECIPE_ENV, json.dumps(TINY_RECIPE))
    _flag_store(tmp_path / "line3")

    def factory(s: Settings) -> Inspector:
        return Inspector(s.model_dir, s.adapter_dir or None, device="cpu", max_new_tokens=s.max_new_tokens)

    def make(**kw):
        settings = Settings(model_dir=str(tiny_model_dir), device="cpu", max_new_tokens=16)
        window = make_window(settings, factory=factory, **kw)
        qtbot.waitUntil(lambda: window.controller.inspection.state is ModelState.READY, timeout=60000)
        return window

    return make


def _start(qtbot, window):
    action = window.actions_["improve"]
    qtbot.mouseClick(window.toolbar.widgetForAction(action), Qt.MouseButton.LeftButton)
    panel = window.improving.panel()
    qtbot.waitExposed(panel)
    assert not window.controller.training.running and panel.setup_box.isVisible()  # first: what and how long
    assert panel.status.text() == "Not started"
    steps = json.loads(os.environ[RECIPE_ENV])["max_steps"]
    assert panel.length.length() == ("steps", steps)  # the environment's recipe fixes the steps
    qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    assert window.controller.training.running and not panel.setup_box.isVisible()
    return panel


def _run_to_the_end(qtbot, window):
    panel = _start(qtbot, window)
    with qtbot.waitSignal(window.controller.training.finished, timeout=RUN_TIMEOUT_MS) as finished:
        pass
    tail = "\n".join(window.controller.training.stderr_tail[-8:])
    assert finished.args == ["done"], f"{window.controller.training.progress.error}\n{tail}"
    return panel


def _inspect(qtbot, window, path):
    add_and_wait(qtbot, window, [path], window.controller.queue.rowCount() + 1)
    row = window.controller.queue.row_of(str(Path(path).resolve()))
    window.set_current(row)
    with qtbot.waitSignal(window.controller.inspection.batchFinished, timeout=120000):
        window.inspect_current()
    return window.controller.queue.entry(row).finding


def test_improve_then_activate_hot_swaps_and_the_versions_dialog_rolls_back(qtbot, improve_window, tmp_path,
                                                                            tiny_model_dir):
    window = improve_window()
    c = window.controller
    action = window.actions_["improve"]
    assert action.isEnabled() and action.text() == "Improve Model (3)"
    panel = _run_to_the_end(qtbot, window)
    p = c.training.progress
    assert panel.progress.maximum() == 2 and panel.progress.value() == 2 and p.step == 2
    assert len(panel.reward_chart.values) == 2 and len(panel.kl_chart.values) == 2
    assert panel.classes.rowCount() >= 1 and "Step 2/2" in panel.log.toPlainText()
    # before/after: the held-out images first (5 accepted: too few to judge), the 3 flags apart, "all" first
    results = panel.results_box
    assert results.isVisible() and results.headline.text().startswith("Can't judge yet")
    trained = results.trained_on
    cells = [[trained.item(r, k).text() for k in range(trained.columnCount())] for r in range(trained.rowCount())]
    assert cells[0][:2] == ["all classes", "3"] and "→" in cells[0][2]
    assert results.trained_title.text().startswith("TRAINED ON THESE: the 3 images you flagged")
    # the run registered an inactive version on top of the base model (registered on first use)
    adapter = adapters_dir() / f"{tiny_model_dir.name}-v1"
    assert Path(p.adapter) == adapter and adapter.is_dir()
    base, new = c.store.model_versions()
    assert base.active and base.adapter_path is None and not new.active and new.parent_id == base.id
    assert panel.activate_button.isVisible() and panel.discard_button.isVisible()
    assert action.text() == "Improve Model (3)" and action.isEnabled()
    # Activate: the very next inspection uses base + adapter, no restart
    qtbot.mouseClick(panel.activate_button, Qt.MouseButton.LeftButton)
    assert c.store.active_model_version().id == new.id and c.settings.adapter_dir == str(adapter)
    assert not panel.activate_button.isEnabled()
    finding = _inspect(qtbot, window, part_image(tmp_path / "after.png", seed=40))
    assert finding is not None and finding.model_version.endswith(f"+{adapter.name}")
    qtbot.waitUntil(lambda: c.inspection.state is ModelState.READY)
    assert adapter.name in window.inspection_status.model_label.text()
    # the versions dialog: newest first, the active one marked; Roll back activates the parent
    window.actions_["versions"].trigger()
    dialog = window.versions.dialog()
    qtbot.waitExposed(dialog)
    assert dialog.table.rowCount() == 2
    assert dialog.table.item(0, 0).text() == "● active" and dialog.table.item(0, 1).text() == adapter.name
    assert dialog.table.item(0, 4).text() == base.name and "F1" in dialog.table.item(0, 7).text()
    assert dialog.rollback_button.isEnabled()
    qtbot.mouseClick(dialog.rollback_button, Qt.MouseButton.LeftButton)
    assert c.store.active_model_version().id == base.id and c.settings.adapter_dir == ""
    assert dialog.table.item(1, 0).text() == "● active" and not dialog.rollback_button.isEnabled()
    finding = _inspect(qtbot, window, part_image(tmp_path / "rolled-back.png", seed=41))
    assert finding.model_version == tiny_model_dir.name
    # and forward again from the dialog
    dialog.table.selectRow(0)
    qtbot.mouseClick(dialog.activate_button, Qt.MouseButton.LeftButton)
    assert c.store.active_model_version().id == new.id
    dialog.close()
    panel.close()
    window.close()


def test_discard_deletes_the_adapter_and_keeps_the_version_listed_as_discarded(qtbot, improve_window, monkeypatch,
                                                                       tiny_model_dir):
    window = improve_window()
    c = window.controller
    panel = _run_to_the_end(qtbot, window)
    adapter = Path(c.training.progress.adapter)
    assert adapter.is_dir()
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    qtbot.mouseClick(panel.discard_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not adapter.exists(), timeout=20000)
    assert not panel.discard_button.isEnabled() and not panel.activate_button.isEnabled()
    assert c.store.active_model_version().adapter_path is None and c.settings.adapter_dir == ""
    window.actions_["versions"].trigger()
    dialog = window.versions.dialog()
    dialog.table.selectRow(0)
    # listed as discarded (the store says so), not "(deleted)" as a folder that merely vanished
    assert dialog.table.item(0, 0).text() == "discarded" and "(deleted)" not in dialog.table.item(0, 3).text()
    assert not dialog.activate_button.isEnabled() and c.store.model_versions()[-1].discarded
    assert not c.activate_version(c.store.model_versions()[-1].id)
    # the discarded version's name is never reused
    assert plan_improvement(c.store, c.settings, c.register_model_in_use()).out_dir.name == f"{tiny_model_dir.name}-v2"
    dialog.close()
    panel.close()
    window.close()


def test_cancel_stops_the_run_and_closing_the_window_stops_training(qtbot, improve_window, monkeypatch):
    monkeypatch.setenv(RECIPE_ENV, json.dumps({**TINY_RECIPE, "max_steps": 60}))
    window = improve_window()
    c = window.controller
    panel = _start(qtbot, window)
    pid = c.training.pid
    qtbot.waitUntil(lambda: c.training.progress.step >= 1, timeout=RUN_TIMEOUT_MS)
    assert window.actions_["improve"].text().startswith("Training ")
    with qtbot.waitSignal(c.training.finished, timeout=120000) as finished:
        qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)
    assert finished.args == ["cancelled"] and c.training.exit_code == 3
    assert panel.status.text() == "Cancelled" and not panel.cancel_button.isVisible()
    assert not c.training.plan.out_dir.exists() and not _alive(pid)
    (base,) = c.store.model_versions()  # the model in use, registered when the run started; nothing new
    assert base.active and base.adapter_path is None and c.settings.adapter_dir == ""
    # closing the window while a run is under way asks, then stops it and waits: no orphan, no zombie
    panel = _start(qtbot, window)
    pid = c.training.pid
    qtbot.waitUntil(lambda: c.training.progress.data != {}, timeout=RUN_TIMEOUT_MS)
    asked = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: asked.append(a) or QMessageBox.StandardButton.No)
    window.close()
    assert asked and window.isVisible() and c.training.running  # "No": the window and the run stay
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    window.close()
    assert not window.isVisible() and not panel.isVisible() and not c.training.running
    assert not _alive(pid)


def _alive(pid: int) -> bool:
    """True while the process exists (a zombie counts: it still has a /proc entry)."""
    return Path(f"/proc/{pid}").exists() if Path("/proc").is_dir() else False


def _plan(command):
    return TrainingPlan(tuple(command), Path("/nonexistent/out"), Path("/nonexistent/base"), None, 1, "base", 1)


@pytest.mark.parametrize("script, message", [
    ("print('{\"event\": \"data\", \"flagged\": 1}'); print('{\"event\": \"error\", \"message\": \"No flagged "
     "images\"}'); raise SystemExit(2)", "No flagged images"),
    ("import sys; sys.stderr.write('Traceback (most recent call last):\\n  File x\\nMemoryError: boom\\n'); "
     "raise SystemExit(1)", "The training process ended with exit code 1: MemoryError: boom"),
])
def test_a_failed_run_shows_one_clear_message(qtbot, make_window, script, message):
    window = make_window(load_model=False)
    c = window.controller
    panel = window.improving.panel()
    panel.show()
    with qtbot.waitSignal(c.training.finished, timeout=30000) as finished:
        c.training.start(_plan([sys.executable, "-c", script]))
    assert finished.args == ["failed"] and panel.error.isVisible() and panel.error.text() == message
    assert panel.status.text() == "Failed" and not panel.activate_button.isVisible()
    window.close()


def test_a_run_that_ignores_cancel_is_killed(qtbot, make_window):
    window = make_window(load_model=False)
    c = window.controller
    c.training.kill_after_ms = 300
    stubborn = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                "print('{\"event\": \"setup\", \"max_steps\": 5}', flush=True); time.sleep(120)")
    with qtbot.waitSignal(c.training.eventReceived, timeout=30000):
        c.training.start(_plan([sys.executable, "-c", stubborn]))
    pid = c.training.pid
    with qtbot.waitSignal(c.training.finished, timeout=30000) as finished:
        c.training.cancel()
    assert finished.args == ["cancelled"] and c.training.exit_code is None and not _alive(pid)
    window.close()


def test_a_training_command_that_cannot_start_is_a_message(qtbot, make_window):
    window = make_window(load_model=False)
    c = window.controller
    with qtbot.waitSignal(c.training.finished, timeout=10000) as finished:
        c.training.start(_plan(["/nonexistent/lriad"]))
    assert finished.args == ["failed"] and "Can't start the training process" in c.training.progress.error
    assert not c.training.running
    window.close()


def test_improve_is_disabled_without_flags(qtbot, make_window):
    window = make_window(load_model=False)
    action = window.actions_["improve"]
    assert not action.isEnabled() and action.text() == "Improve Model"
    window.close()


def test_the_training_length_says_what_it_comes_to_and_what_it_leaves_out(qtbot):
    length = TrainingLength(by="minutes", minutes=10, steps=150)
    qtbot.addWidget(length)
    assert "is a guess" in length.estimate.text()  # never trained here: the fallback pace, said as one
    length.set_pace(2.0)
    text = length.estimate.text()
    assert text.startswith("≈ 300 steps in 10 min (2.0 s a step, measured") and "warm start" in text
    assert length.length() == ("minutes", 10)
    length.by_steps.setChecked(True)
    assert length.estimate.text().startswith("≈ 5 min for 150 steps") and length.length() == ("steps", 150)
    assert not length.minutes.isEnabled() and length.steps.isEnabled()
    length.steps.setValue(1)  # issue 33 #19: a count meets its unit in the singular
    assert length.steps.text() == "1 step" and length.estimate.text().startswith("≈ 2 s for 1 step")
    length.by_minutes.setChecked(True)
    length.minutes.setValue(1)
    assert length.minutes.text() == "1 minute" and length.estimate.text().startswith("≈ 30 steps in 1 min")
    length.minutes.setValue(2)
    assert length.minutes.text() == "2 minutes"


# --- Qt-free pieces ---------------------------------------------------------------------------
def test_next_adapter_dir_skips_folders_and_known_names(tmp_path):
    assert next_adapter_dir(tmp_path, "lriad-tiny").name == "lriad-tiny-v1"
    (tmp_path / "lriad-tiny-v1").mkdir()
    (tmp_path / "other-v9").mkdir()
    assert next_adapter_dir(tmp_path, "lriad-tiny").name == "lriad-tiny-v2"
    assert next_adapter_dir(tmp_path, "lriad-tiny", ["lriad-tiny-v4", "lriad-tiny"]).name == "lriad-tiny-v5"


def test_train_command_relaunches_a_frozen_app(monkeypatch):
    cmd = train_command(Path("db"), Path("base"), Path("out"), Path("ad"), {"max_steps": 2}, "cpu")
    assert cmd[:4] == [sys.executable, "-m", "lriad_desktop", "train"]
    assert cmd[cmd.index("--adapter-from") + 1] == "ad" and json.loads(cmd[cmd.index("--recipe-json") + 1]) == {
        "max_steps": 2} and cmd[-2:] == ["--device", "cpu"]
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    frozen = train_command(Path("db"), Path("base"), Path("out"))
    assert frozen[:2] == [sys.executable, "train"] and "--adapter-from" not in frozen and "--recipe-json" not in frozen
    # The app's runs cancel themselves if the app dies (test_improve kills a stand-in app).
    assert "--stop-with-parent" in cmd and "--stop-with-parent" in frozen


def test_progress_folds_the_event_protocol():
    p = TrainingProgress()
    scores = {"n": 3, "accuracy": 0.0, "f1": 0.0, "mean_iou": None}
    better = {"n": 3, "accuracy": 2 / 3, "f1": 0.8, "mean_iou": 0.4}
    events = (DataPrepared(flagged=3, replay=2, holdout=1, rows=5),
              Evaluated("before", flagged={"scratch": scores, "all": scores}),
              TrainingSetUp(rows=5, max_steps=2),
              Step(step=1, max_steps=2, reward=0.5, kl=0.01, eta_s=90, s_per_step=90,
                   classes={"scratch": {"success": 0.25, "weight": 0.4, "rarity": 1.0, "seen": 4}}))
    lines = []
    for e in events:
        p.apply(e)
        lines.append(event_line(e))
    assert lines[0].startswith("Data: 3 flagged") and "acc 0%" in lines[1] and "2 steps" in lines[2]
    assert status_text(p) == "Step 1 / 2 · measuring the pace…" and p.rewards == [0.5] and "scratch" in p.classes
    p.apply(Step(step=3, max_steps=20, reward=0.5, kl=0.01, eta_s=90, s_per_step=5.3))
    assert status_text(p) == "Step 3 / 20 · about 2 min left (5.3 s a step)"
    timed = TrainingProgress()
    timed.apply(TrainingSetUp(rows=5, max_steps=300, budget_s=600))
    timed.apply(Step(step=40, max_steps=300, reward=0.5, kl=0.01, eta_s=420, s_per_step=4.4, elapsed_s=180))
    assert status_text(timed) == "Step 40 · 3 min of 10 min · about 7 min left (4.4 s a step)"
    p.apply(Evaluated("after", flagged={"scratch": better, "all": better}))
    p.apply(RunDone(version_id=7, adapter="/a/lriad-tiny-v1", minutes=0.5))
    assert p.finished and p.version_id == 7
    rows = compare(p.before, p.after)
    assert [(r.split, r.defect_class) for r in rows] == [("Flagged", "all"), ("Flagged", "scratch")]
    acc, label, f1, iou = rows[0].changes
    assert change_text(label) == "– → –"  # no label accuracy in these figures
    assert change_text(acc) == "0% → 67%" and f1.delta == pytest.approx(0.8) and change_text(iou) == "– → 0.40"
    failed = TrainingProgress()
    failed.apply(RunFailed("disk full"))
    assert event_line(RunFailed("disk full")) == "Error: disk full" and failed.phase == "failed"


def test_every_event_survives_its_encoding_and_anything_else_is_output():
    events = [DataPrepared(flagged=3, replay=2, holdout=1, rows=5, data_revision=9, skipped=("a.png: truncated",)),
              Evaluated("after", flagged={"all": {"n": 1, "f1": 0.5}}), TrainingSetUp("base", "", 5, 2, {"beta": 0.1}),
              Step(step=1, max_steps=2, reward=0.5, kl=0.01, rewards={"format": 1.0}), RunCancelled(step=4),
              RunDone(version_id=7, adapter="/a/v1", minutes=0.5), RunFailed("disk full")]
    for event in events:
        line = encode_event(event)
        assert line.startswith(f'{{"event": "{event.kind}"') and decode_event(line + "\n") == event
    # the wire is plain JSON lines: one object per line, the kind under "event"
    assert json.loads(encode_event(RunDone(version_id=7)))["event"] == "done"
    for stray in ("Some library said hello", '{"not": "an event"}', '{"event": "launch"}', "{broken",
                  '{"event": "step", "step": "one"}', '{"event": "error", "message": null}'):
        assert decode_event(stray) == Output(stray)
    assert event_line(Output("loading weights")) == "loading weights"
    assert event_line(RunDone(version_id=7, adapter="/a/lriad-tiny-v1", minutes=0.5)) == (
        "Done in 30 s: new version lriad-tiny-v1")
    assert event_line(RunCancelled(step=4)) == "Cancelled: the active model is unchanged"
    assert event_line(Step(step=3, max_steps=5, reward=0.25, kl=0.001, s_per_step=2.0)) == (
        "Step 3/5 · reward 0.250 · KL 0.0010 · 2.0 s/step")
    assert [int(c) for c in ExitCode] == [0, 1, 2, 3] and ExitCode.CANCELLED == 3


def test_versions_register_on_first_use_and_roll_back_to_the_parent(tmp_path, tiny_model_dir):
    with ReviewStore.open(tmp_path / "s.sqlite3") as store:
        base = sync_active_version(store, tiny_model_dir, None)
        assert base.active and base.name == tiny_model_dir.name
        assert sync_active_version(store, tiny_model_dir, None).id == base.id  # idempotent
        gone = store.add_model_version("x-v1", str(tiny_model_dir), str(tmp_path / "deleted"), base.id)
        kept_dir = tmp_path / "x-v2"
        kept_dir.mkdir()
        kept = store.add_model_version("x-v2", str(tiny_model_dir), str(kept_dir), gone.id)
        store.activate_model_version(kept.id)
        versions = store.model_versions()
        # the parent's adapter is gone: roll back to the newest usable older version
        assert rollback_target(versions, store.active_model_version()).id == base.id
        assert rollback_target(versions, versions[0]) is None


def test_line_chart_draws_a_series(qtbot):
    chart = LineChart("Reward")
    qtbot.addWidget(chart)
    chart.resize(300, 160)
    chart.set_values([0.1, 0.4, 0.35, float("nan"), 0.8], max_steps=10)
    assert chart.values == [0.1, 0.4, 0.35, 0.8] and "0.8" in chart.toolTip()
    assert not chart.grab().toImage().isNull()
    chart.set_values([])
    assert not chart.grab().isNull()

