"""Teach a defect the model has never named: a short supervised warm start before GRPO.

GRPO learns only from differences between the completions of a group. When the model never says a
label (a new defect on a real line), every completion of a flagged image earns the same label reward
and there is nothing to reinforce. So when a flagged class's label is absent from the model's answers
before training (its label accuracy on the flagged images is 0), a few steps of trl's `SFTTrainer`
on the inspector's corrected answers (the reasoning template filled from the flag, the answer with the
flag's label and box) come first, on a LoRA adapter; GRPO then continues that adapter, its KL
reference being the warm-started model.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from lriad_desktop.core.evaluation.datasets import GOOD
from lriad_desktop.core.inspection.prompting import format_completion
from training.synthetic_data.samples import PRODUCT_KINDS, Defect, Sample

SURFACE = "an even, intact surface"  # the reasoning's normal look for an object the generator doesn't know


@dataclass(frozen=True)
class WarmStartPlan:
    """Which flagged labels the model never named, and the SFT steps that teach them."""

    labels: tuple[str, ...]
    steps: int


def never_named(before_flagged: dict[str, dict], min_images: int = 1) -> list[str]:
    """Defect classes of the flagged set whose label the model named on none of their images.

    `before_flagged` is the "before" evaluation of the flagged images by class (`score_by_category`'s
    dicts): a class with `label_accuracy` 0 over at least `min_images` defective images is one the model
    does not say, so GRPO's label reward has no spread there.
    """
    out = []
    for cls, scores in sorted(before_flagged.items()):
        if cls in (GOOD, "all", "defect") or not isinstance(scores, dict):
            continue
        if scores.get("label_accuracy") == 0 and scores.get("n", 0) >= min_images:
            out.append(cls)
    return out


def _surface(object_name: str) -> str:
    return next((k.surface for k in PRODUCT_KINDS.values() if k.object_name == object_name), SURFACE)


def target_completion(row: dict, object_name: str, rng: np.random.Generator, style: str = "full") -> str:
    """The inspector's answer for a GRPO row as a completion in the grammar: the reasoning template filled
    from the row's truth (location words from its first box in the model frame), then the answer."""
    from PIL import Image

    from lriad_desktop.core.defect_kinds import KINDS_BY_LABEL
    from training.synthetic_data.reasoning import reasoning_steps

    frame_w, frame_h = (max(1, int(v)) for v in row["frame_size"])
    labels = list(row["defect_labels"]) or ["defect"]
    defects = tuple(Defect(labels[min(i, len(labels) - 1)], tuple(int(round(v)) for v in box), "a visible flaw",
                           "obvious") for i, box in enumerate(row["boxes"])) if row["anomalous"] else ()
    if all(d.label in KINDS_BY_LABEL for d in defects) and (defects or not row["anomalous"]):
        sample = Sample(Image.new("RGB", (frame_w, frame_h)), np.zeros((1, 1), np.uint8), "user", object_name,
                        _surface(object_name), defects)
        steps = reasoning_steps(sample, rng, object_name, style)
    else:  # a label of the inspector's own (no template words for it), or a defect without a box
        steps = [f"The image shows {object_name}.", f"Verdict: defective, {labels[0]}."]
    return format_completion(steps, bool(row["anomalous"]), [(d.label, d.box) for d in defects])


def sft_dataset_rows(rows: Sequence[dict], object_names: Sequence[str], opens_think: bool, seed: int = 0) -> list[dict]:
    """trl prompt-completion rows (with images) for `SFTTrainer` from GRPO rows and their objects' names."""
    rng = np.random.default_rng(seed)
    out = []
    for row, name in zip(rows, object_names):
        text = target_completion(row, name, rng)
        if opens_think and text.startswith("<think>"):
            text = text[len("<think>"):]
        out.append({"prompt": row["prompt"], "completion": [{"role": "assistant", "content": text}],
                    "images": row["images"]})
    return out


def _budget_callback(began: float, budget_s: float):
    """Stops the warm start when one more step would end past `budget_s` seconds after `began` (loading in)."""
    from transformers import TrainerCallback

    from lriad_desktop.core.training_runs.step_time import StepClock

    clock = StepClock()

    class BudgetCallback(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            clock.started = time.perf_counter()
            clock.before_s = clock.started - began

        def on_step_end(self, args, state, control, **kwargs):
            clock.step_done()
            if clock.out_of_time(budget_s):
                control.should_training_stop = True
            return control

    return BudgetCallback()


def warm_start(base_dir: str | Path, rows: Sequence[dict], object_names: Sequence[str], recipe, out_dir: Path,
               adapter_from: str | Path | None = None, budget_s: float | None = None) -> dict:
    """A few SFT steps (`recipe.warm_start_steps`, lr `recipe.warm_start_lr`) of a LoRA adapter on `rows`;
    the adapter is saved to `out_dir`. With `budget_s`, it stops when one more step would end past that many
    seconds from the call (loading the model counts). Returns a summary (steps done, steps planned, first/last
    loss, seconds)."""
    import torch
    from peft import LoraConfig, PeftModel
    from transformers import AutoModelForImageTextToText, AutoProcessor
    from transformers.trainer_callback import PrinterCallback, ProgressCallback
    from trl import SFTConfig, SFTTrainer

    from lriad_desktop.core.backends.model_files import model_load_errors
    from training.recipes.grpo import _family_setup, _opens_think, lora_target_pattern

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    t0 = time.perf_counter()
    with model_load_errors(f"Model in {base_dir}"):
        model = AutoModelForImageTextToText.from_pretrained(base_dir, dtype=torch.float32, local_files_only=True,
                                                            use_safetensors=True)
        processor = AutoProcessor.from_pretrained(base_dir, local_files_only=True)
    family, template_kwargs = _family_setup(base_dir, processor)
    processor.tokenizer.padding_side = "right"
    peft_config = None
    if adapter_from:
        model = PeftModel.from_pretrained(model, adapter_from, is_trainable=True)
    else:
        peft_config = LoraConfig(r=recipe.lora_r, lora_alpha=recipe.lora_alpha, lora_dropout=recipe.lora_dropout,
                                 target_modules=lora_target_pattern(recipe, family.lora_extra_targets if family else ()),
                                 task_type="CAUSAL_LM")
    opens = bool(rows) and _opens_think(processor, rows[0]["prompt"], template_kwargs)
    from datasets import Dataset

    data = Dataset.from_list(sft_dataset_rows(rows, object_names, opens, recipe.seed))
    work = Path(tempfile.mkdtemp(prefix=".warm-work-", dir=Path(out_dir).parent))
    losses: list[float] = []
    try:
        args = SFTConfig(output_dir=str(work), use_cpu=recipe.use_cpu, bf16=recipe.bf16, max_steps=recipe.warm_start_steps,
                         per_device_train_batch_size=min(recipe.batch_size, max(1, len(data))),
                         learning_rate=recipe.warm_start_lr, lr_scheduler_type="constant", logging_steps=1,
                         save_strategy="no", report_to="none", seed=recipe.seed, disable_tqdm=True,
                         remove_unused_columns=False, max_length=None, dataloader_num_workers=0,
                         gradient_checkpointing=False)
        trainer = SFTTrainer(model=model, args=args, train_dataset=data, processing_class=processor,
                             peft_config=peft_config)
        for cb in (PrinterCallback, ProgressCallback):
            trainer.remove_callback(cb)
        if budget_s is not None:
            trainer.add_callback(_budget_callback(t0, budget_s))
        trainer.train()
        losses = [float(e["loss"]) for e in trainer.state.log_history if "loss" in e]
        trainer.model.save_pretrained(out_dir, safe_serialization=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {"steps": int(trainer.state.global_step), "planned": recipe.warm_start_steps, "rows": len(data),
            "first_loss": round(losses[0], 4) if losses else None,
            "last_loss": round(losses[-1], 4) if losses else None, "seconds": round(time.perf_counter() - t0, 1)}
