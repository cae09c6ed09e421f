"""Stage 0 of the bundled model: pre-train the vision tower alone on the dense defect task.

Only the vision tower (and two throw-away heads) run, so a step is several times cheaper
than a full SFT step; the language model then starts from image tokens that already say
"defect here, of this type". Targets come free from the synthetic boxes.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from lriad_desktop.core.inspection.coordinates import ModelGeometry
from training.recipes.device import autocast, resolve_device, step_batches, stop_for_time_budget, to_device
from training.synthetic_data.sample_stream import sample_at
from training.bundled_model.sft import AuxiliaryHeads, atomic_save
from training.synthetic_data.samples import DEFECT_LABELS, PRODUCT_KINDS, Sample, model_view
from training.synthetic_data.targets import token_targets


# Kinds seen from a fraction of the run on: a few easy surfaces first, then everything (a
# from-scratch tower learns "defect" on three kinds within ~150 steps, on all eleven not at all).
KIND_CURRICULUM: tuple[tuple[float, tuple[str, ...] | None], ...] = (
    (0.0, ("metal", "tile", "fabric")),
    (0.2, ("metal", "tile", "fabric", "wood", "leather", "washer", "bottle")),
    (0.45, None),
)
# Recipe option `curriculum`: "staged" (above: parts arrive late) or "balanced" (every kind in
# equal shares from the first step).
CURRICULA: dict[str, tuple[tuple[float, tuple[str, ...] | None], ...]] = {
    "staged": KIND_CURRICULUM,
    "balanced": ((0.0, tuple(PRODUCT_KINDS)),),
}
# Recipe option `references`: None (the image alone) or "side_by_side" (a golden sample left
# of the image, `lriad_desktop.core.inspection.side_by_side`).
REFERENCE_MODES: tuple[str | None, ...] = (None, "side_by_side")
PART_KINDS: tuple[str, ...] = tuple(k for k, v in PRODUCT_KINDS.items() if v.is_part)


def kinds_at(progress: float, curriculum=KIND_CURRICULUM) -> tuple[str, ...] | None:
    """The product kinds in use at `progress` (0..1) of a run; None means all."""
    current = curriculum[0][1]
    for start, kinds in curriculum:
        if progress >= start:
            current = kinds
    return current


@dataclass
class VisionPretrainConfig:
    steps: int = 2500
    batch_size: int = 16
    learning_rate: float = 5e-4
    warmup_steps: int = 100
    weight_decay: float = 0.01
    pos_weight: float = 4.0
    image_loss_weight: float = 0.5
    eval_every: int = 250
    eval_samples: int = 128
    eval_seed: int = 990_002
    data_seed: int = 3
    min_side: int = 160
    max_side: int = 320
    threads: int = 2
    device: str = "cpu"  # "cpu", "cuda" or "auto" (training.recipes.device)
    workers: int = 0  # processes drawing batches (0: inline, as on 2-core machines)
    time_budget_s: float | None = None  # stop early (checkpointed and evaluated) after this long
    curriculum: str = "staged"  # a key of CURRICULA
    references: str | None = None  # one of REFERENCE_MODES
    eval_per_kind: int = 0  # also score this many held-out images of each part kind, kind by kind

    def __post_init__(self) -> None:
        if self.curriculum not in CURRICULA:
            raise ValueError(f"curriculum {self.curriculum!r}: expected one of {', '.join(CURRICULA)}")
        if self.references not in REFERENCE_MODES:
            raise ValueError(f"references {self.references!r}: expected none or side_by_side")


def vision_targets(processor, samples: list[Sample], geometry: ModelGeometry):
    """Pixel values, grids, per-token occupancy (merge² per token), token labels, image labels."""
    samples = [model_view(s) for s in samples]
    out = processor.image_processor(images=[s.image for s in samples], return_tensors="pt")
    occ_rows, lab_rows, owners = [], [], []
    for k, (s, thw) in enumerate(zip(samples, out["image_grid_thw"].tolist())):
        _, gh, gw = thw
        blocks, token_labels = token_targets(s, (gh, gw), geometry, DEFECT_LABELS)
        occ_rows.append(torch.from_numpy(blocks))
        lab_rows.append(torch.from_numpy(token_labels))
        owners.append(torch.full((len(blocks),), k, dtype=torch.long))
    image_labels = torch.tensor([float(s.anomalous) for s in samples])
    return out["pixel_values"], out["image_grid_thw"], torch.cat(occ_rows), torch.cat(lab_rows), torch.cat(owners), image_labels


def _image_logits(token_logits: torch.Tensor, owners: torch.Tensor, n: int) -> torch.Tensor:
    """Image-level defect logit: the maximum over the image's token logits."""
    per_token = token_logits.max(dim=1).values
    out = torch.full((n,), -1e4, dtype=per_token.dtype, device=per_token.device)
    return out.scatter_reduce(0, owners, per_token, reduce="amax")


class _VisionBatches:
    """Batch `step` of the vision stage (a pure function of the step: picklable for workers)."""

    def __init__(self, processor, geometry: ModelGeometry, cfg: VisionPretrainConfig) -> None:
        self.processor, self.geometry, self.cfg = processor, geometry, cfg

    def __call__(self, step: int):
        cfg = self.cfg
        kinds = kinds_at(step / cfg.steps, CURRICULA[cfg.curriculum])
        samples = [sample_at(cfg.data_seed, step * cfg.batch_size + j, cfg.min_side, cfg.max_side, kinds,
                             cfg.references) for j in range(cfg.batch_size)]
        return vision_targets(self.processor, samples, self.geometry)


def _vision_losses(visual, heads: AuxiliaryHeads, batch, cfg: VisionPretrainConfig) -> dict[str, torch.Tensor]:
    pix, grid, occ, lab, owners, img_lab = batch
    feats = visual(pix, grid_thw=grid).pooler_output
    occ_logits = heads.occupancy(feats)
    pos_weight = torch.tensor(cfg.pos_weight, device=occ_logits.device)
    loss_occ = F.binary_cross_entropy_with_logits(occ_logits.float(), occ, pos_weight=pos_weight)
    loss_lab = F.cross_entropy(heads.label(feats).float(), lab)
    loss_img = F.binary_cross_entropy_with_logits(_image_logits(occ_logits.float(), owners, len(img_lab)), img_lab)
    return {"occupancy": loss_occ, "label": loss_lab, "image": loss_img,
            "loss": loss_occ + loss_lab + cfg.image_loss_weight * loss_img}


def pretrain_vision(model, processor, geometry: ModelGeometry, heads: AuxiliaryHeads, cfg: VisionPretrainConfig,
                    work_dir: Path, log: Callable[[dict], None] = lambda e: print(json.dumps(e), flush=True)) -> None:
    """Train `model.model.visual` + `heads` on the dense task; resumable via `work_dir`."""
    torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)
    visual = model.model.visual.to(device)
    heads.to(device)
    params = list(visual.parameters()) + list(heads.occupancy.parameters()) + list(heads.label.parameters())
    optim = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    ckpt = work_dir / "vision_checkpoint.pt"
    step = 0
    if ckpt.is_file():
        state = torch.load(ckpt, weights_only=False, map_location=device)
        visual.load_state_dict(state["visual"])
        heads.load_state_dict(state["heads"])
        optim.load_state_dict(state["optim"])
        step = state["step"]
        log({"event": "resumed", "stage": "vision", "step": step})
    heldout = [sample_at(cfg.eval_seed, i, cfg.min_side, cfg.max_side, references=cfg.references)
               for i in range(cfg.eval_samples)]
    per_kind = {kind: [sample_at(cfg.eval_seed + 1 + k, i, cfg.min_side, cfg.max_side, (kind,), cfg.references)
                       for i in range(cfg.eval_per_kind)] for k, kind in enumerate(PART_KINDS)}
    visual.train()
    t0 = time.perf_counter()
    running: dict[str, float] = {}

    def checkpoint() -> None:
        atomic_save({"visual": visual.state_dict(), "heads": heads.state_dict(), "optim": optim.state_dict(),
                     "step": step}, ckpt)

    def evaluate() -> None:
        record = {"event": "eval", "stage": "vision", "step": step,
                  **evaluate_vision(visual, heads, processor, geometry, heldout)}
        if cfg.eval_per_kind:
            record["kinds"] = {kind: evaluate_vision(visual, heads, processor, geometry, samples)
                               for kind, samples in per_kind.items()}
        with open(work_dir / "metrics.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")
        log(record)

    for batch in step_batches(_VisionBatches(processor, geometry, cfg), step, cfg.steps, cfg.workers):
        lr = cfg.learning_rate * min(1.0, (step + 1) / cfg.warmup_steps)
        lr *= 0.5 * (1 + np.cos(np.pi * min(1.0, step / cfg.steps))) * 0.95 + 0.05
        for g in optim.param_groups:
            g["lr"] = lr
        with autocast(device):
            losses = _vision_losses(visual, heads, to_device(batch, device), cfg)
        optim.zero_grad(set_to_none=True)
        losses["loss"].backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optim.step()
        step += 1
        for k in ("occupancy", "label", "image"):
            v = float(losses[k].detach())
            running[k] = 0.9 * running.get(k, v) + 0.1 * v
        elapsed = time.perf_counter() - t0
        if step % 10 == 0:
            log({"event": "step", "stage": "vision", "step": step, "max_steps": cfg.steps,
                 **{k: round(v, 4) for k, v in running.items()}, "elapsed_s": round(elapsed, 1)})
        if step % 100 == 0 or step == cfg.steps:
            checkpoint()
        if step % cfg.eval_every == 0 or step == cfg.steps:
            evaluate()
        if stop_for_time_budget("vision", step, cfg, elapsed, log, checkpoint, evaluate):
            break


@torch.no_grad()
def evaluate_vision(visual, heads: AuxiliaryHeads, processor, geometry: ModelGeometry, samples: list[Sample]) -> dict:
    """Image-level accuracy (max token probability > 0.5), token precision/recall, token label accuracy."""
    visual.eval()
    correct, tp, fp, fn, lab_ok, lab_n = 0, 0, 0, 0, 0, 0
    for i in range(0, len(samples), 32):
        chunk = samples[i:i + 32]
        device = next(visual.parameters()).device
        pix, grid, occ, lab, owners, img_lab = to_device(vision_targets(processor, chunk, geometry), device)
        with autocast(device):
            feats = visual(pix, grid_thw=grid).pooler_output
        feats = feats.float()
        logits = heads.occupancy(feats)
        img_pred = _image_logits(logits, owners, len(chunk)) > 0
        correct += int((img_pred == img_lab.bool()).sum())
        pred_tok = logits.max(dim=1).values > 0
        true_tok = occ.max(dim=1).values > 0.25
        tp += int((pred_tok & true_tok).sum())
        fp += int((pred_tok & ~true_tok).sum())
        fn += int((~pred_tok & true_tok).sum())
        mask = lab > 0
        lab_ok += int((heads.label(feats).argmax(1)[mask] == lab[mask]).sum())
        lab_n += int(mask.sum())
    visual.train()
    return {"image_accuracy": round(correct / len(samples), 4), "token_precision": round(tp / max(tp + fp, 1), 4),
            "token_recall": round(tp / max(tp + fn, 1), 4), "token_label_accuracy": round(lab_ok / max(lab_n, 1), 4)}
