"""The bundled model's recipe end to end, in miniature: `python -m training.bundled_model.build_tiny_model` builds
a stock Qwen2.5-VL folder the app can load, logs held-out metrics, and resumes instead of retraining."""

import json

import pytest

from lriad_desktop.core.backends.engine import Inspector, validate_model_folder
from lriad_desktop.core.inspection.images import load_image
from lriad_desktop.core.paths import sample_images_dir
from training.bundled_model.build_tiny_model import main

ARGS = ["--vision-steps", "2", "--sft-steps", "2", "--grpo-steps", "1", "--batch-size", "4", "--eval-every", "2",
        "--eval-samples", "4", "--max-new-tokens", "12"]


def _events(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_rebuild_writes_a_loadable_model_and_resumes_without_retraining(tmp_path, capsys):
    out, work = tmp_path / "lriad-tiny", tmp_path / "work"
    assert main(["--out", str(out), "--work", str(work), *ARGS]) == 0
    info = validate_model_folder(out)
    assert info.model_type == "qwen2_5_vl"
    assert not (tmp_path / "lriad-tiny.tmp").exists()  # written to a temp folder, then renamed
    stages = [(e["stage"], e.get("step")) for e in _events(work / "metrics.jsonl")]
    assert stages == [("vision", 2), ("sft", 2), ("grpo", None)]
    image = load_image(sample_images_dir() / "metal_hole.jpg").image
    finding = Inspector(out, max_new_tokens=12).inspect(image, "metal plate")  # loads and runs; need not parse
    assert finding.image_size == image.size and finding.timings["total_ms"] > 0

    # Running the same command again continues where it stopped: no stage trains twice, and the
    # model card already in the output folder survives the rewrite.
    (out / "README.md").write_text("# card\n", encoding="utf-8")
    capsys.readouterr()
    assert main(["--out", str(out), "--work", str(work), *ARGS]) == 0
    printed = capsys.readouterr().out
    assert '"stage": "vision"' not in printed and '"event": "step"' not in printed
    stages = [e["stage"] for e in _events(work / "metrics.jsonl")]
    assert stages == ["vision", "sft", "grpo", "grpo"]  # only the keep-or-drop check of GRPO reruns
    assert (out / "README.md").read_text(encoding="utf-8") == "# card\n"
    validate_model_folder(out)


def test_recipe_options_train_side_by_side_with_copied_names_and_are_recorded(tmp_path):
    out, work = tmp_path / "sbs", tmp_path / "work"
    options = ["--spec", "side-by-side", "--references", "side_by_side", "--curriculum", "balanced",
               "--object-names", "aliases", "--reasoning", "short", "--eval-per-kind", "2"]
    args = ["--out", str(out), "--work", str(work), *ARGS[:4], "--grpo-steps", "0", *ARGS[6:], *options]
    assert main(args) == 0
    assert json.loads((out / "lriad.json").read_text(encoding="utf-8"))["references"] == "side_by_side"
    vision, sft = _events(work / "metrics.jsonl")
    assert set(vision["kinds"]) == {"washer", "bottle", "screw", "pcb", "capsule"}
    assert 0.0 <= sft["object_named"] <= 1.0
    recorded = json.loads((work / "spec.json").read_text(encoding="utf-8"))
    assert recorded["recipe"]["references"] == "side_by_side" and recorded["max_pixels"] == 2 * 224 * 224
    # the same folder with other recipe options is refused, not silently mixed
    with pytest.raises(SystemExit, match="another model spec"):
        main([*args[:-len(options)], "--spec", "side-by-side"])
