"""The guard on "Improve model" (Qt-free): a run whose held-out images lose more than the tolerance on accuracy,
label accuracy or mean IoU is recommended for Discard and the verdict names the figure; within it, Activate; too
few held-out images, no recommendation. The figures are real scores (`score_by_category` on real findings)."""

from pathlib import Path

import pytest

from lriad_desktop.core.evaluation.datasets import LabelledImage
from lriad_desktop.core.evaluation.metrics import score_by_category
from lriad_desktop.core.inspection.finding import Box, Defect, Finding, Verdict
from lriad_desktop.core.training_runs.verdict import ACTIVATE, DISCARD, UNSURE, run_verdict, version_verdict

A, N = Verdict.ANOMALOUS, Verdict.NORMAL
TRUE_BOX, NEAR, FAR = Box(30, 30, 60, 60), Box(32, 32, 62, 62), Box(200, 200, 220, 220)


def _scores(items) -> dict:
    """Per class and 'all' for (class, truly defective, verdict, said label, box) items."""
    pairs = []
    for i, (cls, defective, verdict, label, box) in enumerate(items):
        truth = LabelledImage(Path(f"/p/{i}.png"), cls, cls if defective else "good", (TRUE_BOX,) if defective else ())
        pairs.append((truth, Finding(verdict, (Defect(label, box),) if verdict is A else ())))
    return {name: s.as_dict() for name, s in score_by_category(pairs).items()}


GOOD = [("good", False, N, "", None)] * 6
SCRATCHES = [("scratch", True, A, "scratch", NEAR)] * 4


def _run(held_after, held_before=GOOD + SCRATCHES):
    return {"holdout": _scores(held_before)}, {"holdout": _scores(held_after)}


def test_a_run_that_keeps_the_others_is_recommended_for_activation():
    before, after = _run(GOOD + SCRATCHES)
    v = run_verdict(before, after)
    assert (v.recommendation, v.drops, v.held_out) == (ACTIVATE, (), 10)
    assert v.sentence() == "Recommended: Activate. On the 10 held-out images no figure fell by more than 2 points."


def test_labels_that_collapse_on_the_others_recommend_discard_and_say_which_figure():
    # the failure: the boxes stay, the verdicts stay, but every defect is now called "hole"
    before, after = _run(GOOD + [("scratch", True, A, "hole", NEAR)] * 4)
    v = run_verdict(before, after)
    assert v.recommendation == DISCARD and v.discard
    assert [(d.metric, d.before, d.after) for d in v.drops] == [("label_accuracy", 1.0, 0.0)]
    assert v.sentence() == ("Recommended: Discard. On the 10 held-out images the new version lost more than 2 points: "
                            "label accuracy 100% → 0% (−100 points).")


def test_every_figure_that_fell_is_named():
    before, after = _run(GOOD + [("scratch", True, A, "hole", FAR)] * 3 + [("scratch", True, N, "", None)])
    v = run_verdict(before, after)
    assert [d.metric for d in v.drops] == ["accuracy", "label_accuracy", "mean_iou"]
    assert v.fell() == ("accuracy 100% → 90% (−10 points), label accuracy 100% → 0% (−100 points) and mean "
                               "IoU 0.77 → 0.00 (−0.77)")


def test_the_tolerance_is_in_points_and_a_fall_of_exactly_it_is_within():
    # 50 held-out images, one verdict lost: accuracy falls exactly 2 points
    good = [("good", False, N, "", None)] * 50
    before, after = _run(good[:-1] + [("good", False, A, "dent", NEAR)], good)
    assert run_verdict(before, after).recommendation == ACTIVATE
    assert run_verdict(before, after, tolerance_points=1.5).recommendation == DISCARD
    assert run_verdict(before, after, tolerance_points=1.5).drops[0].describe() == "accuracy 100% → 98% (−2 points)"
    # a rise is never a fall, whatever the tolerance
    assert run_verdict(after, before, tolerance_points=0).recommendation == ACTIVATE


def test_too_few_held_out_images_give_no_recommendation_and_undefined_figures_are_left_out():
    before, after = _run(GOOD[:2] + [("scratch", True, A, "hole", FAR)], GOOD[:2] + SCRATCHES[:1])
    v = run_verdict(before, after)
    assert (v.recommendation, v.held_out) == (UNSURE, 3)
    assert v.sentence() == ("No recommendation: 3 held-out images are too few to tell (8 needed). Activate only if "
                            "the flagged images below convince you.")
    one = run_verdict(*_run(GOOD[:1], GOOD[:1]))  # issue 33 #16: one held-out image
    assert one.recommendation == UNSURE and one.sentence().startswith("No recommendation: 1 held-out image is too few")
    # only good images held out: no label accuracy or IoU to compare, accuracy alone decides
    before, after = _run(GOOD * 2, GOOD * 2)
    assert run_verdict(before, after).recommendation == ACTIVATE
    assert run_verdict({}, {}).recommendation == UNSURE


def test_a_version_is_judged_from_its_stored_metrics():
    before, after = _run(GOOD + [("scratch", True, A, "hole", NEAR)] * 4)
    assert version_verdict({"before": before, "after": after}).discard
    assert version_verdict({"before": before}) is None
    assert not version_verdict({"before": before, "after": after}, tolerance_points=100).discard


@pytest.mark.parametrize("tolerance", [0.0, 2.0, 10.0])
def test_no_change_is_never_a_discard(tolerance):
    before, after = _run(GOOD + SCRATCHES)
    assert not run_verdict(before, after, tolerance).discard
