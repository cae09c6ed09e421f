"""A finished run's before/after figures don't flatter: the held-out images are the headline (with their
count, or "can't judge yet" on too few), the flagged images it trained on are shown apart and labelled so,
and boxes that vanished or a class's success that fell are said in words. The figures are real scores
(`score_by_category` on real findings, the very dicts `lriad train` reports), fed to the real panel
through a real training process that prints them as protocol events."""

import sys
from pathlib import Path


from lriad_desktop.core.evaluation.datasets import LabelledImage
from lriad_desktop.core.evaluation.metrics import score, score_by_category
from lriad_desktop.core.inspection.finding import Box, Defect, Finding, Verdict
from lriad_desktop.core.training_runs.protocol import (AdapterSaved, DataPrepared, Evaluated, RunDone, Step, TrainingSetUp,
                                               encode_event)
from lriad_desktop.core.training_runs.progress import MIN_HELD_OUT, TrainingProgress, judge
from lriad_desktop.core.store.adapter_versions import ModelVersion
from lriad_desktop.ui.theme import colour
from lriad_desktop.ui.improve.training_process import TrainingPlan
from lriad_desktop.ui.improve.training_text import key_metrics, warnings
from test_ui_helpers import UI_MARKS, make_window, no_leaked_windows  # noqa: F401

pytestmark = UI_MARKS

TRUE_BOX = Box(30, 30, 60, 60)


def _scores(items) -> dict:
    """Scores per class and 'all' for (class, truly defective, the model's verdict, its box or None) items."""
    pairs = []
    for i, (cls, defective, verdict, box) in enumerate(items):
        truth = LabelledImage(Path(f"/parts/{i}.png"), cls, cls if defective else "good",
                              (TRUE_BOX,) if defective else ())
        defects = (Defect(cls, box),) if verdict is Verdict.ANOMALOUS else ()
        pairs.append((truth, Finding(verdict, defects)))
    return {name: s.as_dict() for name, s in score_by_category(pairs).items()}


A, N = Verdict.ANOMALOUS, Verdict.NORMAL
NEAR = Box(32, 32, 62, 62)


def _boxes_vanish():
    """The issue's run: 4 flagged missing parts learned (0 % → 100 %) but drawn without boxes, 3 held out."""
    before = {"flagged": _scores([("missing_part", True, N, None)] * 4),
              "holdout": _scores([("contamination", True, A, NEAR)] * 2 + [("good", False, N, None)])}
    after = {"flagged": _scores([("missing_part", True, A, None)] * 4),
             "holdout": _scores([("contamination", True, A, None)] * 2 + [("good", False, N, None)])}
    return before, after


def _held_out_class_falls():
    """Ten held-out images: better overall, but scratch now missed on one of its two."""
    held_before = [("scratch", True, A, NEAR)] * 2 + [("good", False, A, NEAR)] * 3 + [("good", False, N, None)] * 5
    held_after = ([("scratch", True, A, NEAR), ("scratch", True, N, None)] + [("good", False, N, None)] * 8)
    return ({"flagged": _scores([("crack", True, N, None)] * 2), "holdout": _scores(held_before)},
            {"flagged": _scores([("crack", True, A, NEAR)] * 2), "holdout": _scores(held_after)})


# --- Qt-free: the scores and the judgement ---------------------------------------------------------------
def test_scores_count_the_boxes_the_model_drew():
    truth = LabelledImage(Path("/p.png"), "washer", "scratch", (TRUE_BOX,))
    drawn = Finding(A, (Defect("scratch", NEAR), Defect("dent", None), Defect("scratch", TRUE_BOX)))
    assert score([(truth, drawn)]).boxes == 2
    assert score([(truth, Finding(A, (Defect("scratch", None),)))]).boxes == 0
    assert score([(truth, Finding(N))]).boxes == 0


def test_judge_sees_vanished_boxes_too_few_held_out_and_what_fell():
    before, after = _boxes_vanish()
    j = judge(before, after)
    assert (j.held_out, j.flagged, j.judgeable) == (3, 4, False)
    assert j.boxes_before == 2 and j.boxes_after == 0 and j.boxes_gone and j.draws_no_boxes
    # held-out IoU fell from a real overlap to 0; the flagged accuracy rose, which is no fall
    assert any(f.split == "holdout" and f.metric == "mean_iou" and f.after == 0 for f in j.falls)
    assert not any(f.split == "flagged" for f in j.falls)
    said = warnings(j)
    assert said[0].startswith("No boxes any more: the new version draws no boxes (the one before drew 2")
    b2, a2 = _held_out_class_falls()
    j2 = judge(b2, a2)
    assert j2.judgeable and j2.held_out == 10 >= MIN_HELD_OUT and not j2.boxes_gone
    assert "On held-out images, scratch fell: accuracy 100% → 50%, label accuracy 100% → 50%, F1 1.00 → 0.67, mean IoU 0.77 → 0.39." in warnings(j2)
    assert not any(f.defect_class == "all" and f.metric == "accuracy" for f in j2.falls)  # overall it rose


def test_figures_from_before_boxes_were_counted_still_say_boxes_vanished():
    before, after = _boxes_vanish()
    for scores in (before, after):
        for split in scores.values():
            for figures in split.values():
                figures.pop("boxes")
    j = judge(before, after)
    assert j.boxes_before is None and j.boxes_gone and not j.draws_no_boxes  # from the IoU: > 0, then 0
    assert warnings(j)[0] == "No boxes any more: mean IoU fell to 0, so its boxes miss every defect."


def test_a_class_whose_success_fell_during_the_run_is_noted():
    p = TrainingProgress()
    for step, (cont, scratch) in enumerate([(0.32, 0.4), (0.2, 0.45), (0.02, 0.5)], start=1):
        p.apply(Step(step=step, max_steps=3, classes={"contamination": {"success": cont},
                                                      "scratch": {"success": scratch}}))
    falls = p.training_falls()
    assert [(f.defect_class, f.before, f.after) for f in falls] == [("contamination", 0.32, 0.02)]
    before, after = _held_out_class_falls()
    assert "During training, contamination's success fell from 32% to 2%." in warnings(judge(before, after, falls))


def test_a_version_reads_held_out_first_and_never_green_on_too_few():
    before, after = _boxes_vanish()
    v = ModelVersion(2, "lriad-tiny-v1", "/b", "/a", 1, 3, {"before": before, "after": after}, "", False)
    assert key_metrics(v) == "held out: can't judge (3 images) · trained on F1 0.00 → 1.00 · no boxes any more"
    before, after = _held_out_class_falls()
    v = ModelVersion(3, "lriad-tiny-v2", "/b", "/a", 2, 4, {"before": before, "after": after}, "", False)
    assert key_metrics(v).startswith("held out F1 0.57 → 0.67 (10 images) · trained on F1 0.00 → 1.00")
    assert key_metrics(ModelVersion(4, "v3", "/b", "/a", 3, 5, {"before": before}, "", False)) == ""


# --- the real panel, fed by a real process --------------------------------------------------------------
def _feed(qtbot, window, tmp_path, events):
    """Run a training process that prints these events and exits as a finished run does."""
    lines = tmp_path / "events.jsonl"
    lines.write_text("".join(encode_event(e) + "\n" for e in events))
    script = f"import sys; sys.stdout.write(open({str(lines)!r}).read()); sys.stdout.flush()"
    plan = TrainingPlan((sys.executable, "-c", script), tmp_path / "out", tmp_path / "base", None, 4, "base", 1)
    panel = window.improving.panel()
    panel.show()
    qtbot.waitExposed(panel)
    with qtbot.waitSignal(window.controller.training.finished, timeout=30000) as finished:
        window.controller.training.start(plan)
    assert finished.args == ["done"]
    return panel


def _cells(table):
    return [[table.item(r, c).text() for c in range(table.columnCount())] for r in range(table.rowCount())]


def test_the_panel_says_cant_judge_boxes_gone_and_a_falling_class(qtbot, make_window, tmp_path):
    window = make_window(load_model=False)
    before, after = _boxes_vanish()
    classes = [{"contamination": {"success": 0.32, "seen": 4}}, {"contamination": {"success": 0.02, "seen": 8}}]
    panel = _feed(qtbot, window, tmp_path, [
        DataPrepared(flagged=4, replay=2, holdout=3, rows=6), Evaluated("before", **before),
        TrainingSetUp(rows=6, max_steps=2),
        Step(step=1, max_steps=2, reward=0.2, kl=0.01, classes=classes[0]),
        Step(step=2, max_steps=2, reward=0.3, kl=0.02, classes=classes[1]),
        AdapterSaved(adapter=str(tmp_path / "out"), steps=2), Evaluated("after", **after),
        RunDone(version_id=2, adapter=str(tmp_path / "out"), minutes=0.5)])
    results = panel.results_box
    assert results.isVisible()
    assert results.headline.text().startswith("Can't judge yet: only 3 images held out (8 needed)")
    # the held-out figures are there, but nothing in them is green or red on three images
    held = _cells(results.held_out)
    assert held[0][:2] == ["all classes", "3"]
    assert all(results.held_out.item(r, c).foreground().color() not in (colour("ok"), colour("danger"))
               for r in range(results.held_out.rowCount()) for c in range(2, 6))
    # the flags it trained on: apart, labelled, and not green though they went 0 % → 100 %
    assert results.trained_title.text().startswith("TRAINED ON THESE: the 4 images you flagged")
    trained = _cells(results.trained_on)
    assert trained[0] == ["all classes", "4", "0% → 100%", "0% → 100%", "0.00 → 1.00", "0.00 → 0.00"]
    assert results.trained_on.item(0, 2).foreground().color() != colour("ok")
    said = results.warnings.text()
    assert results.warnings.isVisible() and "No boxes any more" in said
    assert "During training, contamination's success fell from 32% to 2%." in said
    assert panel.activate_button.isVisible()  # the inspector still decides: the panel just says it plainly
    panel.close()
    window.close()


def test_the_panel_headlines_enough_held_out_images_and_colours_them(qtbot, make_window, tmp_path):
    window = make_window(load_model=False)
    before, after = _held_out_class_falls()
    panel = _feed(qtbot, window, tmp_path, [
        DataPrepared(flagged=2, replay=2, holdout=10, rows=4), Evaluated("before", **before),
        Evaluated("after", **after), RunDone(version_id=2, adapter=str(tmp_path / "out"), minutes=0.2)])
    results = panel.results_box
    assert results.headline.text() == ("On the 10 held-out images (accepted, never trained on): accuracy 70% → "
                                       "90% · label accuracy 100% → 50% · F1 0.57 → 0.67 · mean IoU 0.77 → 0.39")
    held = _cells(results.held_out)
    assert [row[:2] for row in held] == [["all classes", "10"], ["good", "8"], ["scratch", "2"]]
    assert results.held_out.item(0, 2).foreground().color() == colour("ok")  # accuracy rose on enough images
    assert results.held_out.item(2, 2).foreground().color() == colour("danger")  # scratch fell
    assert "On held-out images, scratch fell: accuracy 100% → 50%, label accuracy 100% → 50%, F1 1.00 → 0.67, mean IoU 0.77 → 0.39." in results.warnings.text()
    assert "No boxes" not in results.warnings.text()
    panel.close()
    window.close()
