"""Golden samples on the command line: `lriad inspect --reference`, `lriad evaluate --shots K` (MVTec-AD, VisA
and plain layouts), on real files and a real random-init model in a subprocess."""

from __future__ import annotations

import csv
import json
import shutil

import pytest
from PIL import Image

from lriad_desktop.core.evaluation.datasets import DatasetError, pick_references, read_dataset
from test_cli import run_cli
from test_evaluation import make_mvtec


def _train_good(root, category="washer", n=3):
    for i in range(n):
        Image.new("RGB", (64, 48), (100 + i, 100, 100)).save(root / category / "train" / "good" / f"{i:03d}.png")


def test_inspect_beside_a_golden_sample_names_it_in_the_finding(tmp_path, tiny_model_dir):
    Image.new("RGB", (96, 72), (90, 90, 90)).save(tmp_path / "query.png")
    Image.new("RGB", (80, 80), (95, 95, 95)).save(tmp_path / "good.png")
    Image.new("RGB", (80, 60), (95, 90, 95)).save(tmp_path / "good2.png")
    res = run_cli("inspect", tmp_path / "query.png", "--reference", tmp_path / "good.png", "--model", tiny_model_dir,
                  "--max-new-tokens", "8", "--json")
    assert res.returncode == 0, res.stderr
    finding = json.loads(res.stdout)
    assert finding["references"] == [str((tmp_path / "good.png").resolve())]
    assert finding["image_size"] == [96, 72]
    res = run_cli("inspect", tmp_path / "query.png", "--reference", tmp_path / "good.png", "--reference",
                  tmp_path / "good2.png", "--model", tiny_model_dir, "--max-new-tokens", "8", "--json")
    assert json.loads(res.stdout)["references"] == [str(tmp_path / "good.png"), str(tmp_path / "good2.png")]
    res = run_cli("inspect", tmp_path / "query.png", "--model", tiny_model_dir, "--max-new-tokens", "8", "--json")
    assert json.loads(res.stdout)["references"] == []


def test_a_reference_that_cannot_be_read_is_one_error_line(tmp_path, tiny_model_dir):
    Image.new("RGB", (40, 40)).save(tmp_path / "query.png")
    (tmp_path / "notes.png").write_text("not an image")
    for bad, why in ((tmp_path / "missing.png", "missing.png"), (tmp_path / "notes.png", "not an image")):
        res = run_cli("inspect", tmp_path / "query.png", "--reference", bad, "--model", tiny_model_dir)
        assert res.returncode == 2 and "Traceback" not in res.stderr
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"error: --reference {bad}") and why in lines[0], lines


def test_a_side_by_side_model_without_a_reference_is_warned(tmp_path, tiny_model_dir):
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    (model / "lriad.json").write_text(json.dumps({"references": "side_by_side"}))
    Image.new("RGB", (40, 40)).save(tmp_path / "query.png")
    res = run_cli("inspect", tmp_path / "query.png", "--model", model, "--max-new-tokens", "4")
    assert res.returncode == 0 and "warning: this model was trained to compare" in res.stderr
    Image.new("RGB", (40, 40)).save(tmp_path / "good.png")
    res = run_cli("inspect", tmp_path / "query.png", "--reference", tmp_path / "good.png", "--model", model,
                  "--max-new-tokens", "4", "--json")
    assert res.returncode == 0 and "warning" not in res.stderr
    assert json.loads(res.stdout)["image_size"] == [40, 40]  # boxes and size in the query's pixels, not the composite's


def test_evaluate_one_shot_on_an_mvtec_layout_with_train_good(tmp_path, tiny_model_dir):
    root = make_mvtec(tmp_path / "data")
    _train_good(root)
    res = run_cli("evaluate", root, "--shots", "1", "--model", tiny_model_dir, "--max-new-tokens", "8")
    assert res.returncode == 0, res.stderr
    assert "protocol: 1-shot (1 normal training image per category beside each image, from <category>/train/good, " \
           "seed 0)" in res.stdout and "acc%" in res.stdout
    res = run_cli("evaluate", root, "--shots", "1", "--model", tiny_model_dir, "--max-new-tokens", "8", "--json")
    out = json.loads(res.stdout)
    assert out["all"]["n"] == 4  # every test image; the golden samples come from train/good
    refs = out["protocol"]["references"]["washer"]
    assert out["protocol"]["shots"] == 1 and len(refs) == 1 and "/washer/train/good/" in refs[0]
    again = json.loads(run_cli("evaluate", root, "--shots", "1", "--model", tiny_model_dir, "--max-new-tokens", "8",
                               "--json").stdout)
    assert again["protocol"]["references"] == out["protocol"]["references"]  # a fixed seed picks the same ones
    zero = run_cli("evaluate", root, "--model", tiny_model_dir, "--max-new-tokens", "8")
    assert "protocol: 0-shot" in zero.stdout


def test_more_shots_than_training_images_is_one_error_line(tmp_path, tiny_model_dir):
    root = make_mvtec(tmp_path / "data")
    _train_good(root, n=2)
    res = run_cli("evaluate", root, "--shots", "3", "--model", tiny_model_dir)
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [
        "error: washer: 2 normal training images where --shots 3 needs 3 (expected in <category>/train/good)"]


def test_a_plain_layout_keeps_its_golden_samples_out_of_the_test_items(tmp_path):
    for name in ("good", "dent"):
        (tmp_path / "set" / name).mkdir(parents=True)
    for i in range(4):
        Image.new("RGB", (8, 8)).save(tmp_path / "set" / "good" / f"{i}.png")
    Image.new("RGB", (8, 8)).save(tmp_path / "set" / "dent" / "d.png")
    items = read_dataset(tmp_path / "set")
    protocol = pick_references(tmp_path / "set", 2, {i.category for i in items}, seed=0)
    chosen = protocol.references["set"]
    assert len(chosen) == 2 and all(p.parent.name == "good" for p in chosen)
    left = protocol.remaining(items)
    assert len(left) == 3 and not set(chosen) & {i.path for i in left}
    assert pick_references(tmp_path / "set", 2, {"set"}, seed=0) == protocol  # the seed fixes the choice


def test_visa_golden_samples_come_from_its_normal_train_split(tmp_path):
    (tmp_path / "split_csv").mkdir()
    img = tmp_path / "pcb1" / "Data" / "Images"
    (img / "Normal").mkdir(parents=True)
    for i in range(3):
        Image.new("RGB", (16, 16)).save(img / "Normal" / f"{i:04d}.JPG")
    rows = [["object", "split", "label", "image", "mask"],
            ["pcb1", "train", "normal", "pcb1/Data/Images/Normal/0000.JPG", ""],
            ["pcb1", "train", "normal", "pcb1/Data/Images/Normal/0001.JPG", ""],
            ["pcb1", "test", "normal", "pcb1/Data/Images/Normal/0002.JPG", ""]]
    with open(tmp_path / "split_csv" / "1cls.csv", "w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    protocol = pick_references(tmp_path, 2, {"pcb1"})
    assert sorted(p.name for p in protocol.references["pcb1"]) == ["0000.JPG", "0001.JPG"]
    assert "normal train rows" in protocol.describe()
    with pytest.raises(DatasetError, match="pcb2: 0 normal training image"):
        pick_references(tmp_path, 1, {"pcb1", "pcb2"})
