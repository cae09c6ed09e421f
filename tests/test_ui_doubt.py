"""Review by doubt: the queue sorted least certain first, the *needs review* band, the score in the side
panel, and the object's threshold deciding the verdict shown and accepted (real widgets, a real store)."""

import os
from pathlib import Path

from PySide6.QtCore import Qt

from lriad_desktop.core.inspection.finding import Defect, Finding, Verdict
from lriad_desktop.core.store.review import ImageStatus, ReviewKind
from lriad_desktop.ui.review.verdict_banner import BADGES
from lriad_desktop.ui.review.queue_model import least_certain_first
from test_ui_helpers import UI_MARKS, add_and_wait, deliver, make_window, no_leaked_windows, part_image  # noqa: F401

pytestmark = UI_MARKS

SCORES = {"a": 0.95, "b": 0.10, "c": 0.56, "d": None, "e": 0.47}


def _finding(path, score):
    anomalous = score is not None and score >= 0.5
    return Finding(Verdict.ANOMALOUS if anomalous else Verdict.NORMAL,
                   (Defect("scratch"),) if anomalous else (), ("A look at the part.",), "<answer>…</answer>",
                   "hand-made", str(path), (320, 240), "washer", {"total_ms": 100.0}, anomaly_score=score,
                   verdict_probability=None if score is None else max(score, 1 - score),
                   score_source=None if score is None else "verdict_token")


def _queued(tmp_path, qtbot, window):
    folder = tmp_path / "washers"
    folder.mkdir()
    paths = {n: part_image(folder / f"{n}.png", seed=i) for i, n in enumerate(SCORES)}
    add_and_wait(qtbot, window, [folder], len(SCORES))
    for n, p in paths.items():
        deliver(window, p, _finding(p, SCORES[n]))
    q = window.controller.queue
    qtbot.waitUntil(lambda: all(e.finding is not None for e in q.entries()))
    return paths


def _names(window):
    return [Path(e.path).stem for e in window.controller.queue.entries()]


def test_the_queue_sorts_least_certain_first_and_keeps_the_current_image(qtbot, make_window, tmp_path):
    window = make_window(load_model=False)
    _queued(tmp_path, qtbot, window)
    q, c = window.controller.queue, window.controller
    window.set_current(1)  # b
    assert _names(window) == ["a", "b", "c", "d", "e"]
    assert [e.needs_review for e in q.entries()] == [False, False, True, False, True]  # within 0.15 of 0.5
    qtbot.keyClick(window, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)  # Least Certain First
    assert window.actions_["sort_by_doubt"].isChecked()
    assert _names(window) == ["e", "c", "b", "a", "d"]  # |score − 0.5| rising; no score last
    assert Path(window.current_entry().path).stem == "b" and window.current_row == 2
    assert window.queue_view.currentIndex().row() == 2
    # the side panel shows the score against the threshold
    assert window.finding_panel.score.text() == "Anomaly score 0.10 · threshold 0.50"
    window.set_current(4)
    assert window.finding_panel.score.text() == "Anomaly score — · threshold 0.50"
    qtbot.keyClick(window, Qt.Key.Key_R)  # next needs review, wrapping round
    assert Path(window.current_entry().path).stem == "e"
    assert "needs review" in window.finding_panel.score.text()
    # accepting a sorted row writes to the right image, and undo finds it again
    qtbot.keyClick(window, Qt.Key.Key_Space)
    e_entry = q.entries()[0]
    assert c.store.current_review(e_entry.image_id).review.kind is ReviewKind.ACCEPT and not e_entry.needs_review
    assert window.controller.undo() == 0
    window.set_current(0)
    shot = os.environ.get("LRIAD_SCREENSHOT_DIR")
    if shot:
        window.grab()  # paints the rows, which asks for their thumbnails
        qtbot.waitUntil(lambda: all(q.thumbnails.get(e.path) is not None for e in q.entries()))
        qtbot.waitUntil(lambda: window.view.image is not None)
        window.grab().save(str(Path(shot) / "queue-by-doubt.png"))
    # the filter: only the images that need review (e was accepted and undone: it needs review again)
    window.set_current(2)  # b: far from the threshold
    window.actions_["needs_review_only"].trigger()
    shown = [Path(e.path).stem for r, e in enumerate(q.entries()) if not window.queue_view.isRowHidden(r)]
    assert shown == ["e", "c"] and Path(window.current_entry().path).stem in ("e", "c")
    window.set_current(0)
    qtbot.keyClick(window, Qt.Key.Key_Space)  # accepting e takes it out of the filtered queue and moves on
    assert window.queue_view.isRowHidden(0) and Path(window.current_entry().path).stem == "c"
    qtbot.keyClick(window, Qt.Key.Key_D)  # nothing after c is shown
    assert Path(window.current_entry().path).stem == "c"
    assert window.controller.undo() == 0 and not window.queue_view.isRowHidden(0)
    window.actions_["needs_review_only"].trigger()
    assert not any(window.queue_view.isRowHidden(r) for r in range(q.rowCount()))
    window.set_current(0)
    qtbot.keyClick(window, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)  # off: the order they came in
    assert _names(window) == ["a", "b", "c", "d", "e"] and Path(window.current_entry().path).stem == "e"
    assert sorted(q.entries(), key=least_certain_first)[0].path.endswith("e.png")
    window.close()


def test_the_objects_threshold_decides_the_verdict_shown_and_accepted(qtbot, make_window, tmp_path):
    window = make_window(load_model=False)
    paths = _queued(tmp_path, qtbot, window)
    q, c = window.controller.queue, window.controller
    name = c.object_name_for(str(paths["c"]))
    assert c.set_threshold(name, 0.9)
    entry = q.entry(q.row_of(str(paths["c"])))
    assert entry.threshold == 0.9 and entry.model_finding.verdict is Verdict.ANOMALOUS
    assert entry.finding.verdict is Verdict.NORMAL and entry.finding.defects == ()
    assert entry.status is ImageStatus.NORMAL
    assert q.entry(q.row_of(str(paths["a"]))).needs_review  # 0.95 is now near the threshold
    assert c.store.threshold_for(name) == 0.9
    window.set_current(q.row_of(str(paths["c"])))
    assert window.finding_panel.score.text() == ("Anomaly score 0.56 · threshold 0.90 (the model said anomalous)")
    assert window.finding_panel.badge.text() == BADGES[Verdict.NORMAL][0]
    assert window.finding_panel.defect_summary.text() == "Normal at this object's threshold"
    qtbot.keyClick(window, Qt.Key.Key_Space)
    accepted = c.store.current_review(entry.image_id).review
    assert accepted.verdict is Verdict.NORMAL and accepted.defects == ()
    # a new window on the same store starts with the saved threshold
    store_path = c.store.path
    window.close()
    again = make_window(load_model=False, store_path=store_path)
    add_and_wait(qtbot, again, [paths["c"].parent], len(SCORES))
    e2 = again.controller.queue.entry(again.controller.queue.row_of(str(paths["c"])))
    assert e2.threshold == 0.9 and e2.model_finding.anomaly_score == 0.56 and e2.finding.verdict is Verdict.NORMAL
    assert again.controller.set_threshold(name, None) and e2.threshold == 0.5
    assert e2.finding.verdict is Verdict.ANOMALOUS
    assert not again.controller.set_threshold("", 0.3)  # no object: one clear notice, nothing written
    again.close()


def test_the_threshold_dialog_shows_the_reviewed_evidence_and_saves_the_threshold(qtbot, make_window, tmp_path):
    from lriad_desktop.core.evaluation.score_curves import auroc
    from lriad_desktop.ui.dialogs.threshold_dialog import Evidence, ThresholdDialog

    window = make_window(load_model=False)
    paths = _queued(tmp_path, qtbot, window)
    q, c = window.controller.queue, window.controller
    rows = {n: q.row_of(str(p)) for n, p in paths.items()}
    for n in SCORES:
        assert c.accept(rows[n])
    assert c.set_verdict(rows["b"], Verdict.ANOMALOUS)  # the model missed b: the inspector says defective
    assert c.set_verdict(rows["c"], Verdict.NORMAL)  # and c (0.56) is a good part
    window.set_current(rows["a"])
    qtbot.keyClick(window, Qt.Key.Key_T, Qt.KeyboardModifier.ControlModifier)
    dialog = window.threshold_dialog
    assert isinstance(dialog, ThresholdDialog) and dialog.isVisible()
    qtbot.waitExposed(dialog)
    # d has no score: four images of evidence, a and b defective
    assert dialog.evidence == Evidence((0.95, 0.10, 0.56, 0.47), (True, True, False, False))
    assert "4 reviewed images" in dialog.summary.text() and "2 defective, 2 good" in dialog.summary.text()
    assert dialog.roc.figure == f"AUROC {auroc([0.95, 0.10, 0.56, 0.47], [True, True, False, False]):.3f}" == "AUROC 0.500"
    counts = {k: dialog.counts[k].text() for k in ("tp", "fn", "fp", "tn")}
    assert counts == {"tp": "1", "fn": "1", "fp": "1", "tn": "1"} and dialog.spin.value() == 0.5
    assert dialog.roc.marker == (0.5, 0.5) and dialog.pr.marker == (0.5, 0.5)
    dialog.slider.setValue(60)  # above c's 0.56: one false alarm fewer
    assert dialog.spin.value() == 0.6 and dialog.counts["fp"].text() == "0" and dialog.counts["tn"].text() == "2"
    assert dialog.pr.marker == (0.5, 1.0) and "precision 100 %" in dialog.counts["rates"].text()
    shot = os.environ.get("LRIAD_SCREENSHOT_DIR")
    if shot:
        dialog.grab().save(str(Path(shot) / "threshold-dialog.png"))
    dialog.buttons.button(dialog.buttons.StandardButton.Save).click()
    assert not dialog.isVisible()
    name = c.object_name_for(str(paths["c"]))
    assert c.store.threshold_for(name) == 0.6 and q.entry(rows["c"]).finding.verdict is Verdict.NORMAL
    # with nothing reviewed the dialog says so and still sets a threshold
    empty = ThresholdDialog(c, "gear")
    qtbot.addWidget(empty)
    assert "No reviewed image of “gear”" in empty.summary.text() and empty.roc.points == []
    assert empty.counts["tp"].text() == "0" and empty.roc.marker is None
    empty.default_button.click()
    empty.spin.setValue(0.3)
    empty.save()
    assert c.store.threshold_for("gear") == 0.3
    window.close()
