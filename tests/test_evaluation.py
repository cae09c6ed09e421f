"""Dataset layouts and metrics, checked on hand-made findings."""

import csv
import json

import numpy as np
import pytest
from PIL import Image

from lriad_desktop.core.evaluation.datasets import DatasetError, LabelledImage, boxes_from_mask, read_dataset
from lriad_desktop.core.evaluation.metrics import best_iou, format_table, normalise_label, score, score_by_category
from lriad_desktop.core.inspection.finding import Box, Defect, Finding, Verdict


def _mask(path, boxes, size=(64, 48)):
    arr = np.zeros((size[1], size[0]), np.uint8)
    for x1, y1, x2, y2 in boxes:
        arr[y1:y2, x1:x2] = 255
    Image.fromarray(arr).save(path)


def make_mvtec(root, category="washer"):
    cat = root / category
    for sub in ["train/good", "test/good", "test/scratch", "ground_truth/scratch"]:
        (cat / sub).mkdir(parents=True)
    for i in range(2):
        Image.new("RGB", (64, 48), (100, 100, 100)).save(cat / "test/good" / f"{i:03d}.png")
        Image.new("RGB", (64, 48), (100, 100, 100)).save(cat / "test/scratch" / f"{i:03d}.png")
        _mask(cat / "ground_truth/scratch" / f"{i:03d}_mask.png", [(5, 5, 15, 10), (40, 30, 60, 45)][: i + 1])
    return root


def test_boxes_from_mask_one_per_component(tmp_path):
    _mask(tmp_path / "m.png", [(5, 5, 15, 10), (40, 30, 60, 45)])
    assert boxes_from_mask(tmp_path / "m.png") == (Box(5, 5, 15, 10), Box(40, 30, 60, 45))


def test_mvtec_layout(tmp_path):
    items = read_dataset(make_mvtec(tmp_path))
    assert len(items) == 4
    bad = [i for i in items if i.anomalous]
    assert {i.defect_type for i in bad} == {"scratch"} and bad[1].boxes[1] == Box(40, 30, 60, 45)
    assert all(i.category == "washer" for i in items)
    # a single category folder works too
    assert len(read_dataset(tmp_path / "washer")) == 4


def test_visa_layout(tmp_path):
    (tmp_path / "split_csv").mkdir()
    img_dir = tmp_path / "pcb1" / "Data" / "Images"
    (img_dir / "Normal").mkdir(parents=True)
    (img_dir / "Anomaly").mkdir()
    mask_dir = tmp_path / "pcb1" / "Data" / "Masks" / "Anomaly"
    mask_dir.mkdir(parents=True)
    Image.new("RGB", (64, 48)).save(img_dir / "Normal" / "0001.JPG")
    Image.new("RGB", (64, 48)).save(img_dir / "Anomaly" / "0002.JPG")
    _mask(mask_dir / "0002.png", [(1, 2, 9, 9)])
    rows = [["object", "split", "label", "image", "mask"],
            ["pcb1", "train", "normal", "pcb1/Data/Images/Normal/0001.JPG", ""],
            ["pcb1", "test", "normal", "pcb1/Data/Images/Normal/0001.JPG", ""],
            ["pcb1", "test", "anomaly", "pcb1/Data/Images/Anomaly/0002.JPG", "pcb1/Data/Masks/Anomaly/0002.png"]]
    with open(tmp_path / "split_csv" / "1cls.csv", "w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    with open(tmp_path / "pcb1" / "image_anno.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([["image", "label", "mask"],
                                  ["pcb1/Data/Images/Anomaly/0002.JPG", "missing", "x"]])
    items = read_dataset(tmp_path)
    assert [(i.category, i.defect_type, i.boxes) for i in items] == [
        ("pcb1", "good", ()), ("pcb1", "missing", (Box(1, 2, 9, 9),))]


def test_plain_layout_and_unknown(tmp_path):
    (tmp_path / "good").mkdir()
    (tmp_path / "dent").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "good" / "a.png")
    Image.new("RGB", (8, 8)).save(tmp_path / "dent" / "b.png")
    items = read_dataset(tmp_path)
    assert [(i.defect_type, i.anomalous) for i in items] == [("dent", True), ("good", False)]
    with pytest.raises(DatasetError):
        read_dataset(tmp_path / "good")


def _finding(verdict, *defects, ms=10.0):
    return Finding(verdict, tuple(Defect(lab, box) for lab, box in defects), timings={"total_ms": ms})


def test_metrics_on_hand_made_findings(tmp_path):
    t_good = LabelledImage(tmp_path / "g.png", "washer", "good")
    t_bad = LabelledImage(tmp_path / "b.png", "washer", "scratch", (Box(0, 0, 10, 10),), True)
    t_bad2 = LabelledImage(tmp_path / "c.png", "screw", "missing_part", (Box(0, 0, 10, 10), Box(20, 20, 30, 30)), True)
    pairs = [
        (t_good, _finding(Verdict.NORMAL)),  # TN
        (t_good, _finding(Verdict.ANOMALOUS, ("scratch", Box(0, 0, 1, 1)))),  # FP
        (t_bad, _finding(Verdict.ANOMALOUS, ("Scratch", Box(0, 0, 10, 5)))),  # TP, IoU .5, label ok
        (t_bad, _finding(Verdict.UNPARSED, ms=30.0)),  # FN, IoU 0, label wrong
        (t_bad2, _finding(Verdict.ANOMALOUS, ("missing part", Box(0, 0, 10, 10)))),  # TP, IoU (1+0)/2
    ]
    s = score(pairs)
    assert s.n == 5 and s.accuracy == pytest.approx(3 / 5)
    assert s.precision == pytest.approx(2 / 3) and s.recall == pytest.approx(2 / 3)
    assert s.f1 == pytest.approx(2 / 3)
    assert s.mean_iou == pytest.approx((0.5 + 0 + 0.5) / 3)
    assert s.label_accuracy == pytest.approx(2 / 3)
    assert s.unparsed_rate == pytest.approx(1 / 5) and s.ms_per_image == pytest.approx(14.0)
    by_cat = score_by_category(pairs)
    assert set(by_cat) == {"washer", "screw", "all"} and by_cat["screw"].accuracy == 1.0
    table = format_table(by_cat)
    assert "washer" in table and "all" in table and "60.0" in table


def test_label_normalisation_and_best_iou():
    assert normalise_label("Missing_Part") == "missing part" == normalise_label("missing")
    assert normalise_label("colour") == "color"
    assert best_iou([Box(0, 0, 10, 10)], [None, Box(0, 0, 10, 10)]) == 1.0
    assert best_iou([Box(0, 0, 10, 10)], []) == 0.0


def test_mask_of_another_size_is_resized_to_its_image(tmp_path):
    """A mask at twice the image's size (same region) gives the same boxes as the same-size mask, with a note."""
    root = make_mvtec(tmp_path / "data")
    gt = root / "washer" / "ground_truth" / "scratch"
    same = [i.boxes for i in read_dataset(root, note=lambda line: None) if i.anomalous]
    _mask(gt / "001_mask.png", [(10, 10, 30, 20), (80, 60, 120, 90)], size=(128, 96))  # 2x the 64x48 image
    notes = []
    items = read_dataset(root, note=notes.append)
    assert [i.boxes for i in items if i.anomalous] == same
    assert len(notes) == 1 and "001_mask.png: mask is 128x96, its image 64x48: resized to the image" in notes[0]
    # scored against a finding that hits the region, the resized mask gives the IoU the right one gives
    finding = _finding(Verdict.ANOMALOUS, ("scratch", Box(5, 5, 15, 10)), ("scratch", Box(40, 30, 60, 45)))
    item = next(i for i in items if i.path.name == "001.png" and i.anomalous)
    assert score([(item, finding)]).mean_iou == pytest.approx(1.0)


def test_corrupt_mask_skips_that_image_with_a_line(tmp_path):
    root = make_mvtec(tmp_path / "data")
    (root / "washer" / "ground_truth" / "scratch" / "000_mask.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    notes = []
    items = read_dataset(root, note=notes.append)
    assert len(items) == 3 and not any(i.path.name == "000.png" and i.anomalous for i in items)
    assert len(notes) == 1 and "000_mask.png: mask can't be read" in notes[0] and "skipped" in notes[0]
    assert "\n" not in notes[0]


def test_undefined_metrics_are_none_and_a_dash(tmp_path):
    """On a good-only set recall and F1 are undefined (not 0.0); precision is undefined when nothing is called
    defective."""
    good = LabelledImage(tmp_path / "g.png", "washer", "good")
    bad = LabelledImage(tmp_path / "b.png", "washer", "scratch", (Box(0, 0, 10, 10),), True)
    clean = score([(good, _finding(Verdict.NORMAL)), (good, _finding(Verdict.NORMAL))])
    assert clean.accuracy == 1.0 and clean.precision is None and clean.recall is None and clean.f1 is None
    flagged = score([(good, _finding(Verdict.ANOMALOUS, ("scratch", None))), (good, _finding(Verdict.NORMAL))])
    assert flagged.precision == 0.0 and flagged.recall is None and flagged.f1 is None
    missed = score([(bad, _finding(Verdict.NORMAL))])
    assert missed.precision is None and missed.recall == 0.0 and missed.f1 == 0.0  # defects exist, none found
    table = format_table({"washer": clean, "all": clean})
    row = table.splitlines()[2].split()
    assert row[:6] == ["washer", "2", "100.0", "—", "—", "—"]
    assert json.loads(json.dumps(clean.as_dict()))["recall"] is None


# --- ranking figures of the anomaly score ---------------------------------------------------------------

def test_auroc_and_ap_on_hand_made_scores():
    from lriad_desktop.core.evaluation.score_curves import auroc, average_precision, confusion_at, pr_curve, roc_curve

    scores, truth = [0.9, 0.8, 0.7, 0.6], [True, False, True, False]
    assert auroc(scores, truth) == pytest.approx(3 / 4)  # 0.7 < 0.8 is the one pair ranked wrong
    assert average_precision(scores, truth) == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    # ties: a tied defective/good pair counts half; AP takes the tied group at once
    assert auroc([0.5] * 4, truth) == 0.5 and average_precision([0.5] * 4, truth) == 0.5
    assert auroc([0.9, 0.5, 0.5, 0.1], [True, True, False, False]) == pytest.approx((1 + 1 + 0.5 + 1) / 4)
    assert average_precision([0.9, 0.5, 0.5, 0.1], [True, True, False, False]) == pytest.approx(
        0.5 * 1 + 0.5 * 2 / 3)
    assert auroc([0.1, 0.9], [True, False]) == 0.0 and auroc([0.9, 0.1], [True, False]) == 1.0
    # undefined without both kinds of image
    assert auroc([0.2, 0.3], [True, True]) is None and average_precision([0.2], [False]) is None
    assert roc_curve([0.2], [True]) == [] and pr_curve([0.2], [False]) == []
    roc = roc_curve(scores, truth)
    assert [(x, y) for x, y, _ in roc] == [(0, 0), (0, 0.5), (0.5, 0.5), (0.5, 1), (1, 1)]
    assert [(r, p) for r, p, _ in pr_curve(scores, truth)][1:] == [(0.5, 1), (0.5, 0.5), (1, 2 / 3), (1, 0.5)]
    c = confusion_at(scores, truth, 0.7)  # 0.7 itself is called defective
    assert (c.tp, c.fp, c.tn, c.fn) == (2, 1, 1, 0) and c.precision == pytest.approx(2 / 3) and c.recall == 1.0


def test_scores_carry_auroc_and_ap_and_missing_scores_rank_worst():
    good = LabelledImage(path="g.png", category="nut", defect_type="good")
    bad = LabelledImage(path="b.png", category="nut", defect_type="scratch")
    pairs = [(good, Finding(Verdict.NORMAL, anomaly_score=0.2)), (good, Finding(Verdict.NORMAL, anomaly_score=0.4)),
             (bad, Finding(Verdict.ANOMALOUS, (Defect("scratch"),), anomaly_score=0.3)),
             (bad, Finding(Verdict.UNPARSED, anomaly_score=0.99))]  # unparsed: its score is not trusted
    s = score(pairs)
    # the unparsed defective image ranks lowest (score 0): pairs right = (0.3 > 0.2) only, of 4
    assert s.image_auroc == pytest.approx(1 / 4) and s.unscored_rate == 0.25
    assert "image_auroc" in s.as_dict() and "image_ap" in s.as_dict()
    no_scores = score([(good, Finding(Verdict.NORMAL)), (bad, Finding(Verdict.ANOMALOUS))])
    assert no_scores.image_auroc is None and no_scores.image_ap is None and no_scores.accuracy == 1.0
    table = format_table({"all": no_scores})
    assert "AUROC" in table and "AP" in table and table.splitlines()[2].split()[6:8] == ["—", "—"]


def test_curve_plots_are_pngs_with_the_curves_drawn(tmp_path):
    from lriad_desktop.core.evaluation.curve_plots import write_curve_plots

    good = LabelledImage(path="g.png", category="nut", defect_type="good")
    bad = LabelledImage(path="b.png", category="nut", defect_type="scratch")
    pairs = [(good, Finding(Verdict.NORMAL, anomaly_score=v)) for v in (0.1, 0.3, 0.6)] + \
            [(bad, Finding(Verdict.ANOMALOUS, anomaly_score=v)) for v in (0.5, 0.8, 0.9)]
    roc, pr = write_curve_plots(pairs, tmp_path / "plots")
    for path in (roc, pr):
        with Image.open(path) as im:
            assert im.format == "PNG" and im.size == (760, 600)
            colours = {c for _, c in im.convert("RGB").getcolors(1 << 20)}
            assert (31, 119, 180) in colours  # the first curve's colour is on the chart
    # a set that can't define them still writes charts that say so
    roc, _ = write_curve_plots([(good, Finding(Verdict.NORMAL, anomaly_score=0.1))], tmp_path / "empty")
    assert roc.is_file()
