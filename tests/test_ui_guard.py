"""The guard in the Improve panel (real widgets, a real training process printing real scores): a run whose
held-out images lost more than the tolerance is recommended for Discard, naming the figure; Discard is the
primary button; Activate still works but asks once, naming what fell; Discard keeps the version listed as
discarded (not "(deleted)") and it can't be activated until restored; the tolerance is the setting; what the
run learned from is said by kind, and a flag with no type reads "(no label)"."""

from __future__ import annotations

from pathlib import Path

import os

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

import test_run_results as rr
import test_run_verdict as rv
from lriad_desktop.core.inspection.finding import Box, Defect, Verdict
from lriad_desktop.core.paths import bundled_model_dir
from lriad_desktop.core.store.review import Review, ReviewKind
from lriad_desktop.core.training_runs.protocol import DataPrepared, Evaluated, RunDone, Step, TrainingSetUp
from lriad_desktop.core.training_runs.budget import TrainedLength
from lriad_desktop.core.store.adapter_versions import adapters_dir, version_state
from lriad_desktop.ui.improve.training_text import reviews_in_words
from lriad_desktop.ui.theme import style_sheet
from test_ui_helpers import UI_MARKS, make_window, no_leaked_windows, part_image  # noqa: F401

pytestmark = UI_MARKS
# the screenshot goes to the test's tmp folder, or to LRIAD_SCREENSHOT_DIR (docs/screenshots to refresh the README's)
SCREENSHOT_ENV = "LRIAD_SCREENSHOT_DIR"


def _regressed():
    """Better on the flags (a missing part nobody typed, and a hole), but every held-out scratch is now a hole."""
    flagged_before = [("defect", True, Verdict.NORMAL, "", None), ("hole", True, Verdict.NORMAL, "", None)]
    flagged_after = [("defect", True, Verdict.ANOMALOUS, "hole", rv.NEAR), ("hole", True, Verdict.ANOMALOUS, "hole",
                                                                             rv.NEAR)]
    held_after = rv.GOOD + [("scratch", True, Verdict.ANOMALOUS, "hole", rv.NEAR)] * 4
    return ({"flagged": rv._scores(flagged_before), "holdout": rv._scores(rv.GOOD + rv.SCRATCHES)},
            {"flagged": rv._scores(flagged_after), "holdout": rv._scores(held_after)})


@pytest.fixture
def regressed(make_window, qtbot, tmp_path):
    """A window whose store has a base version (active) and the run's new version with its adapter folder, one
    flag and one box correction; `run()` feeds the panel the finished run and returns it."""
    window = make_window(load_model=False)
    store = window.controller.store
    for i, kind in enumerate((ReviewKind.FLAG, ReviewKind.BOX)):
        img = store.add_image(part_image(tmp_path / f"{i}.png", size=(64, 48), seed=i), "washer")
        store.save_review(img.id, Review(kind, Verdict.ANOMALOUS, (Defect("", Box(2, 2, 20, 20)),)), reviewer="ann")
    base = store.add_model_version("lriad-tiny", str(bundled_model_dir()))
    store.activate_model_version(base.id)
    folder = adapters_dir() / "lriad-tiny-v1"
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text("{}")
    before, after = _regressed()
    new = store.add_model_version("lriad-tiny-v1", str(bundled_model_dir()), str(folder), base.id,
                                  metrics={"before": before, "after": after})

    def run():
        steps = [Step(step=i, max_steps=6, reward=0.2 + 0.1 * i, kl=0.002 * i * i,
                      classes={"hole": {"success": i / 6, "seen": 2 * i}}) for i in range(1, 7)]
        return rr._feed(qtbot, window, tmp_path, [
            DataPrepared(flagged=2, replay=4, holdout=10, rows=6), Evaluated("before", **before),
            TrainingSetUp(rows=6, max_steps=6), *steps, Evaluated("after", **after),
            RunDone(version_id=new.id, adapter=str(folder), minutes=0.4)])

    return window, base, new, folder, run


def _asked(monkeypatch, answer):
    asked = []

    def question(parent, title, text, *a, **k):
        asked.append(text)
        return answer

    monkeypatch.setattr(QMessageBox, "question", question)
    return asked


def test_a_regressed_run_recommends_discard_and_activate_asks_once_naming_the_figure(qtbot, regressed, monkeypatch,
                                                                                     tmp_path):
    window, base, new, folder, run = regressed
    panel = run()
    results = panel.results_box
    said = results.recommendation.text()
    assert said == ("Recommended: Discard. On the 10 held-out images the new version lost more than 2 points: "
                    "label accuracy 100% → 0% (−100 points).")
    assert results.recommendation.isVisible() and results.recommendation.property("recommend") == "discard"
    assert panel.discard_button.objectName() == "primary" and panel.activate_button.objectName() == ""
    # what it learned from, by kind: a box correction is no flag
    assert panel.title.text() == "Improving base on 1 flag, 1 box correction"
    assert "you flagged or corrected (1 flag, 1 box correction;" in results.trained_title.text()
    # the flag nobody gave a type reads "(no label)", not the placeholder class "defect"
    assert [row[0] for row in rr._cells(results.trained_on)] == ["all classes", "(no label)", "hole"]
    shot = Path(os.environ.get(SCREENSHOT_ENV) or tmp_path) / "improve-discard.png"
    panel.setStyleSheet(style_sheet("light"))  # as the app shows it (the tests run without the app's theme)
    panel.resize(980, 900)
    qtbot.wait(50)
    assert panel.grab().save(str(shot))
    asked = _asked(monkeypatch, QMessageBox.StandardButton.No)
    qtbot.mouseClick(panel.activate_button, Qt.MouseButton.LeftButton)
    assert len(asked) == 1 and "lost label accuracy 100% → 0% (−100 points), more than the 2 points" in asked[0]
    assert window.controller.store.active_model_version().id == base.id  # No: nothing changed
    asked = _asked(monkeypatch, QMessageBox.StandardButton.Yes)
    qtbot.mouseClick(panel.activate_button, Qt.MouseButton.LeftButton)
    assert len(asked) == 1  # asked once, then it works
    assert window.controller.store.active_model_version().id == new.id
    assert not panel.activate_button.isEnabled()
    panel.close()
    window.close()


def test_within_the_tolerance_setting_it_recommends_activate_and_does_not_ask(qtbot, regressed, monkeypatch):
    window, base, new, folder, run = regressed
    c = window.controller
    c.update_settings(c.settings.with_changes(improve_tolerance=100.0))
    panel = run()
    assert panel.results_box.recommendation.text().startswith("Recommended: Activate. On the 10 held-out images no "
                                                               "figure fell by more than 100 points")
    assert panel.activate_button.objectName() == "primary" and panel.discard_button.objectName() == ""
    asked = _asked(monkeypatch, QMessageBox.StandardButton.No)
    qtbot.mouseClick(panel.activate_button, Qt.MouseButton.LeftButton)
    assert asked == [] and c.store.active_model_version().id == new.id
    panel.close()
    window.close()


def test_discard_keeps_the_version_listed_as_discarded_and_it_needs_restoring(qtbot, regressed, monkeypatch,
                                                                              tmp_path):
    window, base, new, folder, run = regressed
    c = window.controller
    panel = run()
    asked = _asked(monkeypatch, QMessageBox.StandardButton.Yes)
    qtbot.mouseClick(panel.discard_button, Qt.MouseButton.LeftButton)
    assert len(asked) == 1 and "stays listed as discarded" in asked[0]
    assert c.store.model_version(new.id).discarded  # recorded at once, before the folder goes
    qtbot.waitUntil(lambda: not folder.exists(), timeout=20000)
    assert not panel.discard_button.isEnabled() and not panel.activate_button.isEnabled()
    window.actions_["versions"].trigger()
    dialog = window.versions.dialog()
    row = next(r for r, v in enumerate(dialog.versions) if v.id == new.id)
    dialog.table.selectRow(row)
    assert dialog.table.item(row, 0).text() == "discarded"
    assert "(deleted)" not in dialog.table.item(row, 3).text()
    assert dialog.table.item(row, 7).text().endswith("· held out: label accuracy fell")  # why it was set aside
    assert "discarded on" in dialog.details.text() and "adapter folder deleted" in dialog.details.text()
    assert not dialog.activate_button.isEnabled()
    assert dialog.restore_button.isVisible() and not dialog.restore_button.isEnabled()  # its files are gone
    assert not c.activate_version(new.id) and c.store.active_model_version().id == base.id
    assert not c.restore_version(new.id) and c.store.model_version(new.id).discarded  # nothing left to restore
    assert version_state(c.store.model_version(new.id)) == "discarded"
    dialog.setStyleSheet(style_sheet("light"))
    assert dialog.grab().save(str(Path(os.environ.get(SCREENSHOT_ENV) or tmp_path) / "versions-discarded.png"))
    dialog.close()
    panel.close()
    window.close()


def test_a_discarded_version_whose_folder_is_kept_can_be_restored_from_the_dialog(qtbot, regressed, monkeypatch):
    window, base, new, folder, run = regressed
    c = window.controller
    c.store.discard_model_version(new.id)  # e.g. `lriad versions discard --keep-files`
    window.actions_["versions"].trigger()
    dialog = window.versions.dialog()
    row = next(r for r, v in enumerate(dialog.versions) if v.id == new.id)
    dialog.table.selectRow(row)
    assert dialog.restore_button.isEnabled() and not dialog.activate_button.isEnabled()
    qtbot.mouseClick(dialog.restore_button, Qt.MouseButton.LeftButton)
    row = next(r for r, v in enumerate(dialog.versions) if v.id == new.id)
    assert dialog.table.item(row, 0).text() == "" and not c.store.model_version(new.id).discarded
    dialog.table.selectRow(row)
    asked = _asked(monkeypatch, QMessageBox.StandardButton.Yes)  # its figures still say Discard: it asks once
    qtbot.mouseClick(dialog.activate_button, Qt.MouseButton.LeftButton)
    assert len(asked) == 1 and "label accuracy" in asked[0]
    assert c.store.active_model_version().id == new.id
    dialog.close()
    window.close()


def test_reviews_are_said_by_kind():
    assert reviews_in_words({"flag": 1, "box": 1}) == "1 flag, 1 box correction"
    assert reviews_in_words({"flag": 2, "label": 1, "box": 3}) == "2 flags, 1 type correction, 3 box corrections"
    assert reviews_in_words({}) == ""


def test_the_kl_axis_never_goes_below_zero_and_its_labels_fit(qtbot):
    from lriad_desktop.ui.improve.charts import LineChart

    chart = LineChart("KL to the starting model", "warn", floor=0.0)
    qtbot.addWidget(chart)
    chart.resize(300, 170)
    chart.set_values([0.000123, 0.0362, 0.0776], 3)
    labels = chart.axis_labels()
    assert labels[0] == "0" and not any(t.startswith("-") for t in labels)
    metrics = chart.fontMetrics()
    for values in ([0.000123, 0.0362, 0.0776], [-123.456, 0.00012345], [1e-7, 2.5e-7]):
        chart.floor = None
        chart.set_values(values, 3)
        room = chart.plot_rect(metrics).left() - 0.5 - 10  # the label box: from the card's edge + 4 to the plot - 6
        assert all(metrics.horizontalAdvance(t) <= room for t in chart.axis_labels()), chart.axis_labels()
    chart.show()
    qtbot.waitExposed(chart)
    assert not chart.grab().isNull()


def test_one_held_out_image_and_a_run_cut_short_recommend_nothing_and_say_so(qtbot, make_window, tmp_path):
    """Issue 33 #16: "about 1 minute" whose warm start did 12 of 120 steps and GRPO 1 step, judged on one held-out
    image: the panel says it trained less than asked, recommends nothing, and makes neither button the primary."""
    window = make_window(load_model=False)
    one = [("good", False, Verdict.NORMAL, "", None)]
    before = {"flagged": rv._scores([("colour", True, Verdict.NORMAL, "", None)]), "holdout": rv._scores(one)}
    after = {"flagged": rv._scores([("colour", True, Verdict.ANOMALOUS, "hole", rv.NEAR)]), "holdout": rv._scores(one)}
    trained = TrainedLength(asked_minutes=1, warm_labels=("colour",), warm_steps=12, warm_planned=120, grpo_steps=1,
                            training_s=187.0)
    panel = rr._feed(qtbot, window, tmp_path, [
        DataPrepared(flagged=1, replay=2, holdout=1, rows=3), Evaluated("before", **before),
        TrainingSetUp(rows=3, max_steps=40, budget_s=60.0), Step(step=1, max_steps=40, reward=0.1, elapsed_s=187.0),
        Evaluated("after", **after),
        RunDone(version_id=2, adapter=str(tmp_path / "v1"), minutes=3.4, trained=trained.as_dict())])
    results = panel.results_box
    assert results.shortfall.isVisible()
    assert results.shortfall.text().startswith("Trained less than asked. The warm start that teaches “colour” did "
                                               "only 12 of its 120 steps in 1 minute")
    assert "Only 1 GRPO step fit in 1 minute" in results.shortfall.text()
    assert results.recommendation.text().startswith("No recommendation: 1 held-out image is too few to tell")
    assert panel.activate_button.isVisible() and panel.discard_button.isVisible()  # the inspector still decides
    assert panel.activate_button.objectName() == "" and panel.discard_button.objectName() == ""  # nothing pushed
    assert panel.status.text() == "Finished in 3 min · trained less than asked"
    assert panel.grab().save(str(tmp_path / "cut-short.png"))
    panel.close()
    window.close()
