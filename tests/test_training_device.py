"""Running the recipe elsewhere than inline on the CPU: batches drawn by worker processes, a GPU asked
for where there is none, a stage stopped by its time budget, another model size."""

import dataclasses
import json

import pytest
import torch

from lriad_desktop.core.inspection.coordinates import read_model_geometry
from lriad_desktop.core.backends.engine import validate_model_folder
from training.bundled_model.build_tiny_model import main
from training.recipes.device import resolve_device, step_batches
from training.bundled_model.sft import SFTConfig, _SFTBatches
from training.bundled_model.vision_pretrain import VisionPretrainConfig, _VisionBatches


def _flat(obj):
    """Every tensor in a batch, in a fixed order."""
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, dict):
        return [t for k in sorted(obj) for t in _flat(obj[k])]
    if isinstance(obj, (list, tuple)):
        return [t for v in obj for t in _flat(v)]
    return [t for f in dataclasses.fields(obj) for t in _flat(getattr(obj, f.name))]


def _same(a, b):
    fa, fb = _flat(a), _flat(b)
    return len(fa) == len(fb) and all(x.shape == y.shape and torch.equal(x, y) for x, y in zip(fa, fb))


@pytest.mark.parametrize("stage", ["vision", "sft"])
def test_a_batch_depends_on_its_step_alone(tiny_model_dir, stage):
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(tiny_model_dir)
    geometry = read_model_geometry(tiny_model_dir)
    if stage == "vision":
        make = _VisionBatches(processor, geometry, VisionPretrainConfig(steps=10, batch_size=3))
    else:
        make = _SFTBatches(processor, geometry, SFTConfig(steps=10, batch_size=3))
    inline = list(step_batches(make, 3, 6, workers=0))
    drawn = list(step_batches(make, 3, 6, workers=2))  # two processes, batches still in step order
    assert len(inline) == len(drawn) == 3
    assert all(_same(a, b) for a, b in zip(inline, drawn))
    assert _same(make(4), inline[1])  # a resumed run sees what an uninterrupted one saw
    assert not _same(inline[0], inline[1])


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_asking_for_a_gpu_where_there_is_none_says_so():
    assert resolve_device("auto").type == "cpu"
    with pytest.raises(RuntimeError, match="no CUDA GPU"):
        resolve_device("cuda")


def _events(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_time_budgets_stop_each_stage_with_a_checkpoint_and_an_evaluation(tmp_path, capsys):
    """The rebuild a GPU lease runs: each stage capped in minutes, batches drawn by a worker, a model
    size from a JSON file. Stopped stages still leave a checkpoint, an evaluation and a loadable model."""
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"vision_depth": 2, "vision_hidden": 64, "vision_intermediate": 128,
                                "text_layers": 2, "text_hidden": 128, "text_intermediate": 256}))
    out, work = tmp_path / "model", tmp_path / "work"
    args = ["--out", str(out), "--work", str(work), "--spec", str(spec), "--vision-steps", "40",
            "--sft-steps", "40", "--grpo-steps", "0", "--batch-size", "2", "--vision-batch-size", "2",
            "--eval-every", "20", "--eval-samples", "2", "--max-new-tokens", "8", "--workers", "1",
            "--vision-minutes", "0", "--sft-minutes", "0"]
    assert main(args) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [(e["stage"], e["step"]) for e in printed if e["event"] == "time_budget"] == [("vision", 1), ("sft", 1)]
    assert [(e["stage"], e["step"]) for e in _events(work / "metrics.jsonl")] == [("vision", 1), ("sft", 1)]
    assert torch.load(work / "vision_checkpoint.pt", weights_only=False)["step"] == 1
    assert torch.load(work / "sft_checkpoint.pt", weights_only=False)["step"] == 1
    config = json.loads((out / "config.json").read_text())
    assert config["vision_config"]["depth"] == 2 and config["text_config"]["num_hidden_layers"] == 2
    validate_model_folder(out)

    # A misspelt size field, and the same work folder with another model size, are refused.
    spec.write_text(json.dumps({"vision_depht": 2}))
    with pytest.raises(SystemExit, match="vision_depht are not TinyModelSpec fields"):
        main(args)
    with pytest.raises(SystemExit, match="another model spec"):
        main([*args[:4], "--spec", "deeper-tower", *args[6:]])


def test_the_gpu_rebuild_script_rehearses_on_the_cpu(tmp_path):
    """scripts/device_rebuild.sh is what a GPU lease runs, once, with no chance to debug it there:
    probe, sized run, test-set evaluation, and a model folder split into files the tool returns."""
    import os
    import re
    import subprocess
    import sys
    import tarfile
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"vision_depth": 1, "vision_hidden": 32, "vision_intermediate": 64, "vision_heads": 2,
                                "text_layers": 1, "text_hidden": 64, "text_intermediate": 128}))
    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "OUT": str(out), "SCRATCH": str(tmp_path / "scratch"), "DEVICE": "cpu", "SPEC": str(spec),
           "VISION_MIN": "0.02", "SFT_MIN": "0.02", "BATCH": "2", "WORKERS": "1", "LIMIT": "2",
           "WHEELS": str(tmp_path / "no-wheels"),  # .whl/ holds Python 3.12 wheels for the GPU machine
           "PYTHON": sys.executable}
    run = subprocess.run(["bash", str(root / "scripts" / "device_rebuild.sh")], cwd=root, env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    names = sorted(p.name for p in out.iterdir())
    assert {"build.log", "metrics.jsonl", "evaluation.txt", "model.tar.part-aa"} <= set(names)
    assert all(re.fullmatch(r"[A-Za-z0-9._-]+", n) and (out / n).stat().st_size < 16 * 2**20 for n in names)
    log = (out / "build.log").read_text()
    assert re.search(r"probe: [\d.]+ s/step vision, [\d.]+ s/step sft", log)
    assert "2/2 images" in (out / "evaluation.txt").read_text()
    stages = {e["stage"] for e in _events(out / "metrics.jsonl")}
    assert stages == {"vision", "sft"}
    parts = b"".join((out / n).read_bytes() for n in names if n.startswith("model.tar.part-"))
    (tmp_path / "model.tar").write_bytes(parts)
    with tarfile.open(tmp_path / "model.tar") as tar:
        tar.extractall(tmp_path / "back", filter="data")
    validate_model_folder(tmp_path / "back" / "lriad-tiny")
