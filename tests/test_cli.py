"""The `lriad` command on real files and a real (random-init) model, in a subprocess."""

import io
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import REPO
from test_evaluation import make_mvtec


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "lriad_desktop", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=300)


def test_inspect_folder_with_bad_files(tmp_path, tiny_model_dir):
    folder = tmp_path / "parts"
    folder.mkdir()
    Image.new("RGB", (120, 90), (80, 80, 80)).save(folder / "good.png")
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (100, 100, 3), dtype=np.uint8)).save(buf, "PNG")
    (folder / "truncated.png").write_bytes(buf.getvalue()[:400])
    (folder / "text.png").write_text("hello")
    Image.fromarray((np.arange(50 * 40).reshape(40, 50) * 30).astype(np.uint16)).save(folder / "gray16.png")
    Image.new("CMYK", (60, 40), (10, 200, 30, 0)).save(folder / "cmyk.jpg")
    res = run_cli("inspect", folder, "--model", tiny_model_dir, "--max-new-tokens", "8", "--json", "--batch-size", "2")
    assert res.returncode == 1, res.stderr
    rows = [json.loads(line) for line in res.stdout.splitlines()]
    ok = sorted(r["image_path"].rsplit("/", 1)[1] for r in rows if "verdict" in r)
    assert ok == ["cmyk.jpg", "good.png", "gray16.png"]
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 2
    assert any("text.png: not an image" in e for e in errors)
    assert any("truncated.png: image file is truncated or corrupt" in e for e in errors)
    # the table form
    res = run_cli("inspect", folder / "good.png", "--model", tiny_model_dir, "--max-new-tokens", "8")
    assert res.returncode == 0 and "good.png" in res.stdout and " ms" in res.stdout


def test_missing_model_is_one_clear_line(tmp_path):
    Image.new("RGB", (20, 20)).save(tmp_path / "a.png")
    res = run_cli("inspect", tmp_path / "a.png", "--model", tmp_path / "no-model")
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [f"error: Model folder not found: {tmp_path / 'no-model'}"]


def test_evaluate_mvtec_layout(tmp_path, tiny_model_dir):
    make_mvtec(tmp_path / "data")
    res = run_cli("evaluate", tmp_path / "data", "--model", tiny_model_dir, "--max-new-tokens", "8")
    assert res.returncode == 0, res.stderr
    assert "washer" in res.stdout and "acc%" in res.stdout and "IoU" in res.stdout
    res = run_cli("evaluate", tmp_path / "data", "--model", tiny_model_dir, "--max-new-tokens", "8", "--json")
    scores = json.loads(res.stdout)
    assert scores["all"]["n"] == 4 and 0.0 <= scores["all"]["accuracy"] <= 1.0


def test_help_lists_the_subcommands():
    res = run_cli("--help")
    assert res.returncode == 0 and all(c in res.stdout for c in ("inspect", "evaluate", "gui"))


def test_a_line_scan_image_costs_only_itself(tmp_path, tiny_model_dir):
    """A 4000x10 strip beside a good image: one line for the strip, a finding for the good one."""
    folder = tmp_path / "in"
    folder.mkdir()
    Image.new("RGB", (4000, 10)).save(folder / "linescan.png")
    Image.new("RGB", (120, 90), (80, 80, 80)).save(folder / "part.png")
    Image.new("RGB", (12, 12)).save(folder / "speck.png")
    res = run_cli("inspect", folder, "--model", tiny_model_dir, "--max-new-tokens", "8", "--batch-size", "8")
    assert res.returncode == 1
    assert "Traceback" not in res.stderr
    errors = res.stderr.strip().splitlines()
    assert len(errors) == 2, res.stderr
    assert errors[0].startswith(f"error: {folder / 'linescan.png'}: image is 4000x10 pixels") and "200:1" in errors[0]
    assert errors[1].startswith(f"error: {folder / 'speck.png'}: image is 12x12 pixels")
    rows = res.stdout.strip().splitlines()
    assert len(rows) == 1 and rows[0].startswith(str(folder / "part.png") + "\t")


def test_a_truncated_model_or_adapter_is_one_line(tmp_path, tiny_model_dir):
    import shutil

    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForImageTextToText

    Image.new("RGB", (64, 48)).save(tmp_path / "a.png")
    adapter = tmp_path / "adapter"
    base = AutoModelForImageTextToText.from_pretrained(tiny_model_dir)
    get_peft_model(base, LoraConfig(r=2, target_modules=["q_proj"])).save_pretrained(adapter)
    weights = adapter / "adapter_model.safetensors"
    whole = weights.read_bytes()
    weights.write_bytes(whole[:len(whole) // 2])
    res = run_cli("inspect", tmp_path / "a.png", "--model", tiny_model_dir, "--adapter", adapter)
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [
        f"error: {weights} is cut short ({len(whole) // 2:,} of {len(whole):,} bytes): copy it again"]
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    with open(model / "model.safetensors", "r+b") as fh:
        fh.truncate(600_000)
    res = run_cli("inspect", tmp_path / "a.png", "--model", model)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {model / 'model.safetensors'} is cut short"), res.stderr


def test_evaluate_survives_odd_masks_and_images(tmp_path, tiny_model_dir):
    root = make_mvtec(tmp_path / "data")
    cat = root / "washer"
    Image.new("L", (128, 96)).save(cat / "ground_truth/scratch/001_mask.png")  # twice the image's size
    (cat / "ground_truth/scratch/000_mask.png").write_bytes(b"not a png")
    Image.new("RGB", (4000, 10)).save(cat / "test/good/002.png")  # a line-scan strip among the good parts
    res = run_cli("evaluate", root, "--model", tiny_model_dir, "--max-new-tokens", "8", "--json")
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr
    warnings = sorted(ln for ln in res.stderr.splitlines() if ln.startswith("warning:"))
    assert len(warnings) == 2
    assert "000_mask.png: mask can't be read (not an image); skipped" in warnings[0]
    assert "001_mask.png: mask is 128x96, its image 64x48: resized to the image" in warnings[1]
    assert any("002.png: image is 4000x10" in ln for ln in res.stderr.splitlines() if ln.startswith("error:"))
    scores = json.loads(res.stdout)
    assert scores["all"]["n"] == 4  # 3 good (the strip counted wrong) + 1 scratch whose mask could be read


def test_evaluate_good_only_set_prints_undefined_metrics(tmp_path, tiny_model_dir):
    (tmp_path / "set" / "good").mkdir(parents=True)
    for i in range(2):
        Image.new("RGB", (64, 48), (90, 90, 90)).save(tmp_path / "set" / "good" / f"{i}.png")
    res = run_cli("evaluate", tmp_path / "set", "--model", tiny_model_dir, "--max-new-tokens", "8", "--json")
    assert res.returncode == 0, res.stderr
    scores = json.loads(res.stdout)["all"]
    assert scores["recall"] is None and scores["f1"] is None
    res = run_cli("evaluate", tmp_path / "set", "--model", tiny_model_dir, "--max-new-tokens", "8")
    row = next(ln for ln in res.stdout.splitlines() if ln.startswith("all"))
    assert row.split()[4:6] == ["—", "—"]


def test_device_choices_and_the_default_model_folder_are_declared_once(tmp_path):
    import pytest

    from lriad_desktop.cli.commands import _build_parser
    from lriad_desktop.core.devices import DEVICE_CHOICES, pick_device
    from lriad_desktop.core.paths import bundled_model_dir, model_folder
    from lriad_desktop.core.settings import setting_fields

    parser = _build_parser()
    subs = next(a for a in parser._actions if a.dest == "command").choices
    for name in ("inspect", "evaluate", "train", "gui"):
        device = next(a for a in subs[name]._actions if a.dest == "device")
        assert tuple(device.choices) == DEVICE_CHOICES
    models = next(a for a in subs["models"]._actions if a.dest and a.choices and "download" in a.choices).choices
    for name in ("download", "verify"):
        device = next(a for a in models[name]._actions if a.dest == "device")
        assert tuple(device.choices) == DEVICE_CHOICES
    assert next(f for f in setting_fields() if f.name == "device").metadata["choices"] == DEVICE_CHOICES
    assert pick_device("cpu")[0] == "cpu" and pick_device("auto")[0] in DEVICE_CHOICES
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        pick_device("tpu")
    assert model_folder(None) == model_folder("") == bundled_model_dir() and model_folder(tmp_path) == tmp_path


def test_inspect_json_has_a_score_for_every_finding_and_the_threshold_decides(tmp_path):
    """The bundled model: every finding carries an anomaly score in [0, 1]; --threshold sets the decision."""
    samples = REPO / "resources" / "samples"
    res = run_cli("inspect", samples, "--json")
    assert res.returncode == 0, res.stderr
    rows = [json.loads(line) for line in res.stdout.splitlines()]
    assert len(rows) == 6 and all(0.0 <= r["anomaly_score"] <= 1.0 for r in rows)
    assert all(r["score_source"] == "verdict_token" and r["threshold"] == 0.5 for r in rows)
    assert all(r["decision"] == r["verdict"] for r in rows)  # at 0.5 the decision is the model's verdict
    top = max(r["anomaly_score"] for r in rows)
    res = run_cli("inspect", samples / "metal_hole.jpg", samples / "bottle_good.jpg", "--json", "--threshold", "1")
    rows = [json.loads(line) for line in res.stdout.splitlines()]
    assert all(r["decision"] == ("anomalous" if r["anomaly_score"] >= 1.0 else "normal") for r in rows)
    assert top < 1.0 or any(r["decision"] == "anomalous" for r in rows)
    res = run_cli("inspect", samples / "metal_hole.jpg", "--threshold", "1.5")
    assert res.returncode == 2 and "a threshold is a number from 0 to 1, not '1.5'" in res.stderr


def test_evaluate_auroc_is_the_auroc_of_the_inspected_scores(tmp_path):
    """`lriad evaluate --json` reports image AUROC and AP; its AUROC is the one computed from `lriad inspect
    --json` scores and the truth; --plot writes the two charts."""
    from lriad_desktop.core.evaluation.score_curves import auroc
    from training.synthetic_data.samples import main as make_synthetic

    make_synthetic([str(tmp_path / "all"), "--per-kind", "1", "--seed", "777001"])
    data = tmp_path / "set"
    data.mkdir()
    for name in ("bottle", "washer"):
        (tmp_path / "all" / name).rename(data / name)
    res = run_cli("evaluate", data, "--json", "--plot", tmp_path / "plots")
    assert res.returncode == 0, res.stderr
    figures = json.loads(res.stdout)
    assert {"image_auroc", "image_ap"} <= set(figures["all"]) and set(figures) == {"bottle", "washer", "all", "protocol"}
    res = run_cli("inspect", *(data / n / "test" for n in ("bottle", "washer")), "--json")
    rows = [json.loads(line) for line in res.stdout.splitlines()]
    assert len(rows) == figures["all"]["n"] == 16
    truth = ["/test/good/" not in r["image_path"] for r in rows]
    by_hand = auroc([r["anomaly_score"] for r in rows], truth)
    assert figures["all"]["image_auroc"] == pytest.approx(by_hand, abs=0.02)
    assert all((tmp_path / "plots" / n).is_file() for n in ("roc.png", "pr.png"))
