"""A short real GRPO run (trl GRPOTrainer + peft LoRA) whose adapter the engine then loads."""

import json

import numpy as np
import pytest
from PIL import Image

from lriad_desktop.core.inspection.coordinates import read_model_geometry
from lriad_desktop.core.backends.engine import Inspector
from lriad_desktop.core.paths import bundled_model_dir
from lriad_desktop.core.training_runs.protocol import Step
from training.recipes.grpo import (PRESETS, GRPORecipe, default_preset, evaluation_device, lora_target_pattern,
                           resolve_recipe, run_grpo, write_adapter_atomically)
from training.synthetic_data.samples import generate_sample
from training.synthetic_data.targets import grpo_row_from_sample


def _rows(model_dir, n=8):
    geo = read_model_geometry(model_dir)
    return [grpo_row_from_sample(generate_sample(np.random.default_rng([3, i]), size=(96, 80)), geo) for i in range(n)]


def test_grpo_run_writes_an_adapter_that_changes_the_model_and_the_engine_loads(tmp_path):
    """Two GRPO steps on the bundled model: it answers in the grammar, so the rewards spread within a group
    and the adapter moves (on the random tiny model every reward is 0 and the adapter stays a no-op)."""
    import torch
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForImageTextToText, AutoTokenizer

    model_dir = bundled_model_dir()
    events = []
    out = tmp_path / "adapters" / "v1"
    recipe = GRPORecipe.cpu_tiny(max_steps=2, batch_size=4, max_completion_length=48)
    rows = _rows(model_dir)
    summary = run_grpo(model_dir, rows, recipe, out, emit=events.append)
    kinds = [e.kind for e in events]
    assert kinds[0] == "setup" and kinds.count("step") == 2 and kinds[-1] == "saved"
    steps = [e for e in events if isinstance(e, Step)]
    step = steps[0]
    assert step.max_steps == 2 and step.eta_s is not None and step.s_per_step > 0 and "rare_defect" in step.rewards
    assert set(step.classes) == {r["defect_class"] for r in rows}  # the rare-defect figures
    assert max(e.rewards["format"] for e in steps) > 0  # the model's answers parse: there is something to learn
    assert summary["steps"] == 2 and (out / "adapter_model.safetensors").is_file()
    assert json.loads((out / "lriad_training.json").read_text())["recipe"]["max_steps"] == 2
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temp folder left
    # the adapter changes the model's output on a fixed input
    lora_b = [w for k, w in load_file(out / "adapter_model.safetensors").items() if "lora_B" in k]
    assert lora_b and max(w.abs().max().item() for w in lora_b) > 0  # peft starts B at zero
    ids = AutoTokenizer.from_pretrained(model_dir)("A metal washer with a scratch.", return_tensors="pt").input_ids
    with torch.no_grad():
        plain = AutoModelForImageTextToText.from_pretrained(model_dir)(input_ids=ids).logits
        adapted = PeftModel.from_pretrained(AutoModelForImageTextToText.from_pretrained(model_dir), out)(
            input_ids=ids).logits
    assert (plain - adapted).abs().max().item() > 1e-3
    insp = Inspector(model_dir, adapter_dir=out, device="cpu", max_new_tokens=4).load()
    assert insp.inspect(Image.new("RGB", (64, 64)), "washer").model_version.endswith("+v1")
    # an existing adapter version is never overwritten
    with pytest.raises(FileExistsError):
        write_adapter_atomically(insp._model, out, {})


def test_recipe_presets_and_file(tmp_path):
    gpu = GRPORecipe.gpu_large()
    assert gpu.bf16 and gpu.gradient_checkpointing and not gpu.use_cpu
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps({"preset": "gpu_large", "max_steps": 7, "rewards": ["format", "verdict"]}))
    r = GRPORecipe.from_json(path)
    assert r.max_steps == 7 and r.rewards == ("format", "verdict") and r.bf16
    assert "language_model" in lora_target_pattern(r) and "visual" not in lora_target_pattern(r)
    assert "visual" in lora_target_pattern(GRPORecipe(freeze_vision=False))


def test_one_resolver_turns_train_options_into_a_recipe(tmp_path):
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps({"preset": "gpu_large", "max_steps": 7, "beta": 0.5}))
    from_file = resolve_recipe(recipe_file=path)
    assert from_file.bf16 and (from_file.max_steps, from_file.beta) == (7, 0.5)
    # the JSON string goes on top of the file, --preset over theirs, --steps over max_steps
    mixed = resolve_recipe("cpu_tiny", path, '{"beta": 0.1, "lora_targets": ["q_proj"]}', steps=3)
    assert mixed.use_cpu and (mixed.max_steps, mixed.beta, mixed.lora_targets) == (3, 0.1, ("q_proj",))
    assert mixed == GRPORecipe.cpu_tiny(max_steps=3, beta=0.1, lora_targets=("q_proj",))
    assert PRESETS["cpu_tiny"] == {} and GRPORecipe.cpu_tiny() == GRPORecipe()
    # no preset anywhere: the machine decides (a CUDA GPU gets gpu_large)
    assert resolve_recipe() == GRPORecipe.preset(default_preset())
    assert evaluation_device(GRPORecipe.gpu_large()) == "cuda" and evaluation_device(GRPORecipe()) == "cpu"
    assert evaluation_device(GRPORecipe(), "mps") == "mps"
    for bad, said in (({"preset": "huge"}, "unknown recipe preset 'huge'"), ({"max_stpes": 3}, "max_stpes")):
        with pytest.raises(ValueError, match=said):
            resolve_recipe(recipe_json=json.dumps(bad))
    with pytest.raises(ValueError, match="can't read the recipe"):
        resolve_recipe(recipe_json="{max_steps: 3")
    with pytest.raises(ValueError, match="can't read the recipe"):
        resolve_recipe(recipe_file=tmp_path / "missing.json")
