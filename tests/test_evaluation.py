"""Dataset layouts and metrics, checked on hand-made findings."""

import csv

import numpy as np
import pytest
from PIL import Image

from lriad_desktop.core.datasets import DatasetError, LabelledImage, boxes_from_mask, read_dataset
from lriad_desktop.core.evaluation import best_iou, format_table, normalise_label, score, score_by_category
from lriad_desktop.core.finding import Box, Defect, Finding, Verdict


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
