"""Supervised warm start of the bundled model, with dense auxiliary losses that teach it *where*.

Language-model loss alone never taught a tiny Qwen2.5-VL to localise (shared/notes/tiny-model.md).
Two auxiliary heads, used only during this stage and dropped afterwards (the saved model is a
stock Qwen2.5-VL), give the model a dense signal:
- on the merged image tokens (the vision tower's output): which of the token's 2x2 patches a
  defect box covers, and the defect type under it;
- on the image tokens after an early language-model layer: the token's own row and column, so
  that attention from the answer can copy a defect's position (attention values carry no
  position by themselves).
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lriad_desktop.core.inspection.coordinates import ModelGeometry
from lriad_desktop.core.backends.engine import finding_from_completion
from lriad_desktop.core.evaluation.metrics import score
from lriad_desktop.core.evaluation.datasets import LabelledImage
from lriad_desktop.core.inspection.finding import Box
from lriad_desktop.core.inspection.prompting import build_messages, reasoning_names_object
from training.recipes.device import autocast, resolve_device, step_batches, stop_for_time_budget, to_device
from training.synthetic_data.prompt_names import prompt_name
from training.synthetic_data.sample_stream import sample_at
from training.synthetic_data.samples import DEFECT_LABELS, Sample, generate_sample, model_view
from training.synthetic_data.targets import completion_for, token_targets


@dataclass
class SFTConfig:
    """The supervised stage's recipe (data, not constants in code)."""

    steps: int = 1800
    batch_size: int = 16
    learning_rate: float = 1.5e-3
    vision_learning_rate: float = 3e-4  # the pre-trained tower moves slower than the fresh text side
    warmup_steps: int = 100
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    number_loss_weight: float = 3.0  # extra weight on coordinate tokens of the answer
    aux_defect_weight: float = 1.0
    aux_defect_pos_weight: float = 4.0
    aux_position_weight: float = 0.3
    aux_position_layer: int = 1
    eval_every: int = 250
    eval_samples: int = 64
    eval_seed: int = 990_001
    checkpoint_every: int = 100
    data_seed: int = 1
    max_new_tokens: int = 96
    threads: int = 2
    device: str = "cpu"  # "cpu", "cuda" or "auto" (training.recipes.device)
    workers: int = 0  # processes drawing batches (0: inline, as on 2-core machines)
    time_budget_s: float | None = None  # stop early (checkpointed and evaluated) after this long
    references: str | None = None  # None or "side_by_side" (training.bundled_model.vision_pretrain.REFERENCE_MODES)
    object_names: str = "kind"  # how prompts name the object (training.synthetic_data.prompt_names.OBJECT_NAME_MODES)
    reasoning: str = "full"  # the target reasoning's style (training.synthetic_data.reasoning.REASONING_STYLES)
    render_sides: tuple[int, int] = (160, 320)  # side lengths of the training images
    extra: dict = field(default_factory=dict)


class AuxiliaryHeads(nn.Module):
    """Heads on image tokens used only while training (not saved with the model)."""

    def __init__(self, vision_out: int, text_hidden: int, merge: int, n_labels: int) -> None:
        super().__init__()
        self.occupancy = nn.Linear(vision_out, merge * merge)
        self.label = nn.Linear(vision_out, n_labels + 1)  # +1: no defect here
        self.position = nn.Linear(text_hidden, 2)


@dataclass
class Batch:
    inputs: dict
    labels: torch.Tensor
    weights: torch.Tensor
    occupancy: torch.Tensor  # (n_image_tokens, merge*merge)
    token_label: torch.Tensor  # (n_image_tokens,)
    position: torch.Tensor  # (n_image_tokens, 2) row, col of each merged token

    def to(self, device: torch.device) -> "Batch":
        return Batch(*(to_device(getattr(self, f.name), device) for f in fields(self)))


def _assistant_prefix_len(tokenizer) -> int:
    return len(tokenizer("assistant\n", add_special_tokens=False)["input_ids"])


def encode_batch(processor, samples: Sequence[Sample], geometry: ModelGeometry, rng: np.random.Generator,
                 names: Sequence[str] | None = None, style: str = "full") -> Batch:
    """Tokenise prompts + target completions (right padded) with labels and auxiliary targets.

    `names`: what each prompt calls the object (the samples' own names when None), copied into
    the reasoning; `style`: the reasoning's style. A sample with a golden sample is shown side by side.
    """
    tok = processor.tokenizer
    texts, images = [], []
    views = [model_view(s) for s in samples]
    for k, (s, view) in enumerate(zip(samples, views)):
        name = names[k] if names is not None else s.object_name
        messages = build_messages(name)
        completion = completion_for(s, geometry, rng, name, style)
        messages.append({"role": "assistant", "content": [{"type": "text", "text": completion}]})
        texts.append(processor.apply_chat_template(messages, tokenize=False))
        images.append(view.image)
    tok.padding_side = "right"
    inputs = processor(text=texts, images=images, padding=True, return_tensors="pt")
    tok.padding_side = "left"
    ids = inputs["input_ids"]
    labels = torch.full_like(ids, -100)
    weights = torch.zeros(ids.shape, dtype=torch.float32)
    im_start = tok.convert_tokens_to_ids("<|im_start|>")
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    skip = _assistant_prefix_len(tok)
    for b in range(ids.shape[0]):
        row = ids[b].tolist()
        start = max(i for i, t in enumerate(row) if t == im_start) + 1 + skip
        end = next((i for i in range(start, len(row)) if row[i] == im_end), len(row) - 1)
        labels[b, start:end + 1] = ids[b, start:end + 1]
        weights[b, start:end + 1] = 1.0  # coordinate tokens are weighted up in compute_losses
    merge = geometry.merge_size
    occ_rows, lab_rows, pos_rows = [], [], []
    for s, thw in zip(views, inputs["image_grid_thw"].tolist()):
        _, gh, gw = thw
        blocks, token_labels = token_targets(s, (gh, gw), geometry, DEFECT_LABELS)
        occ_rows.append(torch.from_numpy(blocks))
        lab_rows.append(torch.from_numpy(token_labels))
        rr, cc = np.meshgrid(np.arange(gh // merge), np.arange(gw // merge), indexing="ij")
        pos_rows.append(torch.from_numpy(np.stack([rr.ravel(), cc.ravel()], axis=1).astype(np.float32)))
    return Batch(dict(inputs), labels, weights, torch.cat(occ_rows), torch.cat(lab_rows), torch.cat(pos_rows))


def _number_token_ids(tokenizer) -> set[int]:
    vocab = tokenizer.get_vocab()
    return {i for t, i in vocab.items() if t.isdigit()}


def compute_losses(model, heads: AuxiliaryHeads, batch: Batch, cfg: SFTConfig,
                   number_ids: torch.Tensor) -> dict[str, torch.Tensor]:
    """Language-model loss (coordinate tokens weighted up) plus the auxiliary losses."""
    out = model(**batch.inputs, output_hidden_states=True, use_cache=False)
    logits = out.logits[:, :-1].float()
    targets = batch.labels[:, 1:]
    w = batch.weights[:, 1:].clone()
    w[torch.isin(targets, number_ids)] *= cfg.number_loss_weight
    ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100,
                         reduction="none").view_as(w)
    lm = (ce * w).sum() / w.sum().clamp_min(1.0)
    image_id = model.config.image_token_id
    mask = batch.inputs["input_ids"] == image_id
    vis = out.hidden_states[0][mask]
    occ_logits = heads.occupancy(vis)
    pos_weight = torch.tensor(cfg.aux_defect_pos_weight, device=occ_logits.device)
    aux_occ = F.binary_cross_entropy_with_logits(occ_logits.float(), batch.occupancy, pos_weight=pos_weight)
    aux_lab = F.cross_entropy(heads.label(vis).float(), batch.token_label)
    txt = out.hidden_states[cfg.aux_position_layer][mask]
    aux_pos = F.smooth_l1_loss(heads.position(txt).float(), batch.position)
    total = lm + cfg.aux_defect_weight * (aux_occ + aux_lab) + cfg.aux_position_weight * aux_pos
    return {"loss": total, "lm": lm, "aux_occupancy": aux_occ, "aux_label": aux_lab, "aux_position": aux_pos}


class _SFTBatches:
    """Batch `step` of the supervised stage: samples `step * batch_size ...` of the seeded stream, rendered
    near the model's input size, and wording drawn from a generator seeded by the step (so the batch
    depends on the step alone, whichever process draws it and whether the run was resumed)."""

    def __init__(self, processor, geometry: ModelGeometry, cfg: SFTConfig) -> None:
        self.processor, self.geometry, self.cfg = processor, geometry, cfg
        self.lo, self.hi = cfg.render_sides

    def __call__(self, step: int) -> Batch:
        cfg = self.cfg
        samples = [sample_at(cfg.data_seed, step * cfg.batch_size + j, self.lo, self.hi, references=cfg.references)
                   for j in range(cfg.batch_size)]
        rng = np.random.default_rng([cfg.data_seed, 7, step])
        names = [prompt_name(s, rng, cfg.object_names) for s in samples]
        return encode_batch(self.processor, samples, self.geometry, rng, names, cfg.reasoning)


def heldout_set(seed: int, n: int, references: str | None = None) -> list[Sample]:
    """A fixed evaluation set from a seed never used for training (the generator's own sizes)."""
    return [generate_sample(np.random.default_rng([seed, i]), reference=references is not None) for i in range(n)]


def heldout_names(samples: Sequence[Sample]) -> list[str]:
    """Prompt names for a held-out set: every other sample by its object name, the rest by its
    kind's folder name, as `lriad evaluate` names an MVTec-layout set ("pcb", "metal")."""
    return [s.object_name if i % 2 == 0 else s.kind for i, s in enumerate(samples)]


def evaluate_samples(model, processor, geometry: ModelGeometry, samples: Sequence[Sample], batch_size: int = 16,
                     max_new_tokens: int = 96, names: Sequence[str] | None = None) -> dict[str, float]:
    """Greedy-decode `samples` and score verdict, label and IoU like `lriad evaluate` does, and how
    often the reasoning names the object the prompt asked about (`names`; the samples' own when None).
    A sample with a golden sample is shown side by side and its boxes are scored in the composite."""
    model.eval()
    device = next(model.parameters()).device
    names = list(names) if names is not None else [s.object_name for s in samples]
    pairs, named = [], 0
    tok = processor.tokenizer
    tok.padding_side = "left"
    t0 = time.perf_counter()
    for i in range(0, len(samples), batch_size):
        chunk = [model_view(s) for s in samples[i:i + batch_size]]
        chunk_names = names[i:i + batch_size]
        texts = [processor.apply_chat_template(build_messages(name), add_generation_prompt=True, tokenize=False)
                 for name in chunk_names]
        inputs = processor(text=texts, images=[s.image for s in chunk], padding=True, return_tensors="pt").to(device)
        with torch.inference_mode(), autocast(device):
            out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
        completions = processor.batch_decode(out[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
        for s, name, text in zip(chunk, chunk_names, completions):
            finding = finding_from_completion(text, s.image.size, geometry)
            named += reasoning_names_object(finding.reasoning, name)
            truth = LabelledImage(Path("synthetic"), s.kind, s.defects[0].label if s.defects else "good",
                                  tuple(Box(*map(float, d.box)) for d in s.defects), bool(s.defects))
            pairs.append((truth, finding))
    model.train()
    sc = score(pairs)
    boxes = {tuple(round(v) for v in d.box.as_list()) for _, f in pairs for d in f.defects if d.box}
    return {"verdict": sc.accuracy, "f1": sc.f1, "label": sc.label_accuracy or 0.0, "iou": sc.mean_iou or 0.0,
            "unparsed": sc.unparsed_rate, "distinct_boxes": float(len(boxes)),
            "object_named": named / max(1, len(pairs)), "eval_s": time.perf_counter() - t0}


def _lr_at(step: int, cfg: SFTConfig) -> float:
    if step < cfg.warmup_steps:
        return cfg.learning_rate * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.learning_rate * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def atomic_save(obj: dict, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def make_heads(model, geometry: ModelGeometry) -> AuxiliaryHeads:
    """Fresh auxiliary heads sized for `model`."""
    return AuxiliaryHeads(model.config.vision_config.out_hidden_size, model.config.text_config.hidden_size,
                          geometry.merge_size, len(DEFECT_LABELS))


def train_sft(model, processor, geometry: ModelGeometry, cfg: SFTConfig, work_dir: Path,
              heads: AuxiliaryHeads | None = None,
              log: Callable[[dict], None] = lambda event: print(json.dumps(event), flush=True)) -> dict:
    """Run (or resume) the supervised stage; checkpoints and `metrics.jsonl` go to `work_dir`."""
    torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)
    work_dir.mkdir(parents=True, exist_ok=True)
    heads = (heads or make_heads(model, geometry)).to(device)
    model.to(device)
    vision_params = list(model.model.visual.parameters())
    vision_ids = {id(p) for p in vision_params}
    other = [p for p in model.parameters() if id(p) not in vision_ids] + list(heads.parameters())
    params = vision_params + other
    optim = torch.optim.AdamW([{"params": other, "scale": 1.0},
                               {"params": vision_params, "scale": cfg.vision_learning_rate / cfg.learning_rate}],
                              lr=cfg.learning_rate, weight_decay=cfg.weight_decay, betas=(0.9, 0.98))
    ckpt_path = work_dir / "sft_checkpoint.pt"
    step = 0
    if ckpt_path.is_file():
        state = torch.load(ckpt_path, weights_only=False, map_location=device)
        model.load_state_dict(state["model"])
        heads.load_state_dict(state["heads"])
        optim.load_state_dict(state["optim"])
        step = state["step"]
        log({"event": "resumed", "step": step})
    number_ids = torch.tensor(sorted(_number_token_ids(processor.tokenizer)), device=device)
    heldout = heldout_set(cfg.eval_seed, cfg.eval_samples, cfg.references)
    metrics_path = work_dir / "metrics.jsonl"
    model.train()
    t_start = time.perf_counter()
    running: dict[str, float] = {}

    def checkpoint() -> None:
        atomic_save({"model": model.state_dict(), "heads": heads.state_dict(), "optim": optim.state_dict(),
                     "step": step, "config": asdict(cfg)}, ckpt_path)

    def evaluate() -> None:
        ev = evaluate_samples(model, processor, geometry, heldout, max_new_tokens=cfg.max_new_tokens,
                              names=heldout_names(heldout))
        record = {"event": "eval", "stage": "sft", "step": step, "samples_seen": step * cfg.batch_size,
                  **{k: round(v, 4) for k, v in ev.items()}, **{k: round(v, 4) for k, v in running.items()}}
        with open(metrics_path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")
        log(record)

    for batch in step_batches(_SFTBatches(processor, geometry, cfg), step, cfg.steps, cfg.workers):
        for g in optim.param_groups:
            g["lr"] = _lr_at(step, cfg) * g["scale"]
        with autocast(device):
            losses = compute_losses(model, heads, batch.to(device), cfg, number_ids)
        optim.zero_grad(set_to_none=True)
        losses["loss"].backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
        optim.step()
        step += 1
        for k, v in losses.items():
            v = float(v.detach())
            running[k] = 0.9 * running.get(k, v) + 0.1 * v
        elapsed = time.perf_counter() - t_start
        if step % 10 == 0:
            log({"event": "step", "step": step, "max_steps": cfg.steps, "lr": _lr_at(step, cfg),
                 **{k: round(v, 4) for k, v in running.items()}, "elapsed_s": round(elapsed, 1)})
        if step % cfg.checkpoint_every == 0 or step == cfg.steps:
            checkpoint()
        if step % cfg.eval_every == 0 or step == cfg.steps:
            evaluate()
        if stop_for_time_budget("sft", step, cfg, elapsed, log, checkpoint, evaluate):
            break
    return running
