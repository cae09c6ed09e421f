"""Rebuild the bundled model `lriad-tiny` from nothing: tokenizer, config, SFT, GRPO, save.

    python -m training.bundled_model.build_tiny_model --out resources/models/lriad-tiny

Seeded and resumable: every stage checkpoints into `--work` (default `runs/lriad-tiny`), and
running the same command again continues where it stopped. Progress is printed as JSON lines;
held-out metrics are appended to `<work>/metrics.jsonl`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from lriad_desktop.core.inspection.coordinates import read_model_geometry
from lriad_desktop.core.inspection.prompting import build_messages, user_prompt
from training.synthetic_data.prompt_names import OBJECT_NAME_MODES, prompt_name
from training.synthetic_data.reasoning import REASONING_STYLES
from training.synthetic_data.samples import PRODUCT_KINDS, generate_sample
from training.synthetic_data.targets import completion_for
from training.bundled_model.tiny_model import TinyModelSpec, build_random_model_in_memory

BUNDLED_SPEC = TinyModelSpec(
    text_hidden=256, text_layers=4, text_heads=4, text_kv_heads=2, text_intermediate=640,
    rope_theta=10.0, vision_hidden=192, vision_depth=4, vision_heads=4, vision_intermediate=512,
    vocab_size=3072, min_pixels=112 * 112, max_pixels=224 * 224, number_tokens=512, phrase_merges=True,
)
# A candidate for a GPU rebuild (shared/notes and the model card: the 4-block tower is what
# limits parts, box and label). Not the shipped model; `--spec deeper-tower` selects it.
SPECS = {
    "bundled": BUNDLED_SPEC,
    "deeper-tower": replace(BUNDLED_SPEC, vision_depth=8, vision_hidden=256, vision_intermediate=640),
    # Levers of the bundled model's ablation (model card): each half of a side-by-side composite
    # keeps the bundled pixel budget; or four times the pixels (up to 256 image tokens) with all
    # but the last tower block attending within 112-px windows.
    "side-by-side": replace(BUNDLED_SPEC, max_pixels=2 * 224 * 224),
    "fine-448": replace(BUNDLED_SPEC, max_pixels=448 * 448, vision_fullatt_blocks=(3,)),
}
# Recipe options besides the model's size, recorded with the work folder (model card: ablation).
RECIPE_DEFAULTS = {"curriculum": "staged", "references": None, "object_names": "kind", "reasoning": "full",
                   "render_sides": [160, 320]}
TOKENIZER_SEED = 5
SFT_SEED = 1
GRPO_SEED = 2


def _tokenizer_corpus(spec: TinyModelSpec, n: int = 3000, recipe: dict | None = None) -> list[str]:
    """Prompts for every product kind and target completions of `n` samples, worded and named as
    the recipe's options say."""
    from lriad_desktop.core.inspection.coordinates import CoordinateFrame, ModelGeometry

    recipe = {**RECIPE_DEFAULTS, **(recipe or {})}
    geometry = ModelGeometry(CoordinateFrame.MODEL_PIXELS, 14, 2, spec.min_pixels, spec.max_pixels)
    rng = np.random.default_rng(TOKENIZER_SEED)
    corpus = []
    for kind in PRODUCT_KINDS.values():
        for msg in build_messages(kind.object_name):
            corpus += [c["text"] for c in msg["content"] if c.get("type") == "text"]
    for i in range(n):
        sample = generate_sample(np.random.default_rng([TOKENIZER_SEED, i]), size=(64, 64))
        name = prompt_name(sample, rng, recipe["object_names"])
        corpus.append(completion_for(sample, geometry, rng, name, recipe["reasoning"]))
        if recipe["object_names"] != "kind":
            corpus.append(user_prompt(name))
    return corpus * 1


def _load_or_init(work: Path, spec: TinyModelSpec, seed: int, recipe: dict | None = None):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    base = work / "init"
    if not (base / "config.json").is_file():
        model, processor = build_random_model_in_memory(spec, _tokenizer_corpus(spec, recipe=recipe), seed=seed)
        tmp = work / "init.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        model.save_pretrained(tmp, safe_serialization=True)
        processor.save_pretrained(tmp)
        (tmp / "lriad.json").write_text(json.dumps({"coordinate_frame": "model_pixels"}, indent=2))
        tmp.rename(base)
    model = AutoModelForImageTextToText.from_pretrained(base, dtype="float32")
    processor = AutoProcessor.from_pretrained(base)
    return model, processor, base


def save_model(model, processor, out: Path, dtype: str = "bfloat16", references: str | None = None) -> None:
    """Write a stock Qwen2.5-VL folder (safetensors) atomically: a temp folder, then a rename.

    `references="side_by_side"`: the model expects a golden sample beside each image, and its
    lriad.json says so (`lriad_desktop.core.inspection.side_by_side`)."""
    import torch

    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    to_save = model.to(getattr(torch, dtype)) if dtype != "float32" else model
    to_save.save_pretrained(tmp, safe_serialization=True)
    model.to(torch.float32)
    processor.save_pretrained(tmp)
    settings = {"coordinate_frame": "model_pixels", **({"references": references} if references else {})}
    (tmp / "lriad.json").write_text(json.dumps(settings, indent=2) + "\n")
    card = out / "README.md"
    if card.is_file():
        shutil.copy2(card, tmp / "README.md")
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)


def _spec_from(name: str) -> TinyModelSpec:
    """A named spec, or a JSON file of `TinyModelSpec` fields over the bundled one."""
    if name in SPECS:
        return SPECS[name]
    path = Path(name)
    if not path.is_file():
        raise SystemExit(f"--spec {name!r}: not one of {', '.join(SPECS)} and not a JSON file")
    fields = json.loads(path.read_text(encoding="utf-8"))
    unknown = sorted(set(fields) - set(asdict(BUNDLED_SPEC)))
    if unknown:
        raise SystemExit(f"--spec {name}: {', '.join(unknown)} are not TinyModelSpec fields")
    return replace(BUNDLED_SPEC, **fields)


def _claim_work_dir(work: Path, spec: TinyModelSpec, recipe: dict | None = None) -> None:
    """Record the spec and recipe options a work folder trains; resuming it with others is an error,
    not a silent mix (a folder from before the options were recorded holds the defaults)."""
    work.mkdir(parents=True, exist_ok=True)
    recorded = work / "spec.json"
    wanted = asdict(spec)
    if recipe is not None and recipe != RECIPE_DEFAULTS:
        wanted = {**wanted, "recipe": recipe}
    if recorded.is_file() and (work / "init" / "config.json").is_file():
        if json.loads(recorded.read_text(encoding="utf-8")) != json.loads(json.dumps(wanted)):
            raise SystemExit(f"{work} holds a run of another model spec ({recorded}); "
                             "use another --work folder or the spec it was started with")
    recorded.write_text(json.dumps(wanted, indent=2))


def grpo_stage(work: Path, processor, geometry, cfg, steps: int) -> Path:
    """GRPO (LoRA, merged afterwards) on fresh synthetic samples; keep it only if held-out scores hold."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForImageTextToText

    from training.recipes.device import resolve_device
    from training.recipes.grpo import GRPORecipe, run_grpo
    from training.bundled_model.sft import evaluate_samples, heldout_names, heldout_set
    from training.synthetic_data.targets import grpo_row_from_sample

    torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)
    sft_dir, adapter_dir, merged_dir = work / "sft-model", work / "grpo-adapter", work / "grpo-model"
    if not adapter_dir.is_dir():
        rows = [grpo_row_from_sample(generate_sample(np.random.default_rng([GRPO_SEED, i]),
                                                     reference=cfg.references is not None), geometry)
                for i in range(steps * 2)]
        recipe = GRPORecipe.cpu_tiny(max_steps=steps, batch_size=8, num_generations=4, learning_rate=2e-4,
                                     max_completion_length=cfg.max_new_tokens, seed=GRPO_SEED,
                                     use_cpu=device.type == "cpu")
        run_grpo(sft_dir, rows, recipe, adapter_dir)
    base = AutoModelForImageTextToText.from_pretrained(sft_dir, dtype="float32")
    merged = PeftModel.from_pretrained(base, adapter_dir).merge_and_unload().to(device)
    heldout = heldout_set(cfg.eval_seed, cfg.eval_samples, cfg.references)
    names = heldout_names(heldout)
    before = evaluate_samples(AutoModelForImageTextToText.from_pretrained(sft_dir, dtype="float32").to(device),
                              processor, geometry, heldout, max_new_tokens=cfg.max_new_tokens, names=names)
    after = evaluate_samples(merged, processor, geometry, heldout, max_new_tokens=cfg.max_new_tokens, names=names)
    keep = after["verdict"] + after["label"] + after["iou"] >= before["verdict"] + before["label"] + before["iou"]
    record = {"event": "eval", "stage": "grpo", "before": before, "after": after, "kept": keep}
    with open(work / "metrics.jsonl", "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")
    print(json.dumps(record), flush=True)
    if not keep:
        return sft_dir
    save_model(merged, processor, merged_dir, "float32")
    return merged_dir


def main(argv: list[str] | None = None) -> int:
    import torch

    from training.bundled_model.sft import SFTConfig, make_heads, train_sft
    from training.bundled_model.vision_pretrain import CURRICULA, VisionPretrainConfig, pretrain_vision

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("resources/models/lriad-tiny"))
    p.add_argument("--work", type=Path, default=Path("runs/lriad-tiny"))
    p.add_argument("--vision-steps", type=int, default=VisionPretrainConfig.steps)
    p.add_argument("--sft-steps", type=int, default=SFTConfig.steps)
    p.add_argument("--batch-size", type=int, default=SFTConfig.batch_size)
    p.add_argument("--eval-every", type=int, default=SFTConfig.eval_every)
    p.add_argument("--grpo-steps", type=int, default=30)
    p.add_argument("--eval-samples", type=int, default=None,
                   help="held-out samples per evaluation (default: 64 for SFT and GRPO, 128 for the vision stage)")
    p.add_argument("--max-new-tokens", type=int, default=SFTConfig.max_new_tokens,
                   help="answer length when evaluating and in GRPO")
    p.add_argument("--spec", default="bundled",
                   help=f"model size: {' or '.join(SPECS)}, or a JSON file of TinyModelSpec fields (default bundled)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"],
                   help="where to train (cuda: bf16 autocast, fp32 weights); default cpu")
    p.add_argument("--workers", type=int, default=0, help="processes drawing training batches (0: inline)")
    p.add_argument("--vision-batch-size", type=int, default=VisionPretrainConfig.batch_size)
    p.add_argument("--vision-minutes", type=float, default=None,
                   help="stop the vision stage early after this long (checkpointed and evaluated)")
    p.add_argument("--sft-minutes", type=float, default=None, help="likewise for the supervised stage")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save-dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    p.add_argument("--curriculum", default=RECIPE_DEFAULTS["curriculum"], choices=sorted(CURRICULA),
                   help="product kinds in the vision stage: staged (parts from 45 %% on) or balanced (all from the start)")
    p.add_argument("--references", default="none", choices=["none", "side_by_side"],
                   help="side_by_side: train on a golden sample left of each image (one composite)")
    p.add_argument("--object-names", default=RECIPE_DEFAULTS["object_names"], choices=OBJECT_NAME_MODES,
                   help="kind: one name per product kind; aliases: varied names the reasoning copies")
    p.add_argument("--reasoning", default=RECIPE_DEFAULTS["reasoning"], choices=REASONING_STYLES,
                   help="target reasoning: full (3-5 steps) or short (2 steps, fewer tokens to generate)")
    p.add_argument("--render-sides", type=int, nargs=2, default=RECIPE_DEFAULTS["render_sides"],
                   metavar=("MIN", "MAX"), help="side lengths of the training images (default 160 320)")
    p.add_argument("--eval-per-kind", type=int, default=0,
                   help="vision stage: also score this many held-out images of each part kind")
    args = p.parse_args(argv)
    spec = _spec_from(args.spec)
    references = None if args.references == "none" else args.references
    recipe = {"curriculum": args.curriculum, "references": references, "object_names": args.object_names,
              "reasoning": args.reasoning, "render_sides": list(args.render_sides)}
    _claim_work_dir(args.work, spec, recipe)
    t0 = time.time()
    model, processor, base = _load_or_init(args.work, spec, args.seed, recipe)
    geometry = read_model_geometry(base)
    n_params = sum(p.numel() for p in model.parameters())
    print(json.dumps({"event": "setup", "parameters": n_params, "vocab": len(processor.tokenizer)}), flush=True)
    eval_size = {} if args.eval_samples is None else {"eval_samples": args.eval_samples}
    where = {"threads": args.threads, "device": args.device, "workers": args.workers}
    cfg = replace(SFTConfig(), steps=args.sft_steps, batch_size=args.batch_size, eval_every=args.eval_every,
                  data_seed=SFT_SEED, max_new_tokens=args.max_new_tokens, **eval_size, **where,
                  time_budget_s=None if args.sft_minutes is None else args.sft_minutes * 60,
                  references=references, object_names=args.object_names, reasoning=args.reasoning,
                  render_sides=tuple(args.render_sides))
    heads = make_heads(model, geometry)
    if args.vision_steps > 0 and not (args.work / "sft_checkpoint.pt").is_file():
        vcfg = replace(VisionPretrainConfig(), steps=args.vision_steps, batch_size=args.vision_batch_size,
                       **eval_size, **where,
                       time_budget_s=None if args.vision_minutes is None else args.vision_minutes * 60,
                       curriculum=args.curriculum, references=references, eval_per_kind=args.eval_per_kind,
                       min_side=args.render_sides[0], max_side=args.render_sides[1])
        pretrain_vision(model, processor, geometry, heads, vcfg, args.work)
        state = torch.load(args.work / "vision_checkpoint.pt", weights_only=False, map_location="cpu")
        model.model.visual.load_state_dict(state["visual"])
        heads.load_state_dict(state["heads"])
    train_sft(model, processor, geometry, cfg, args.work, heads=heads)
    save_model(model, processor, args.work / "sft-model", "float32", references)
    final = args.work / "sft-model"
    if args.grpo_steps > 0:
        final = grpo_stage(args.work, processor, geometry, cfg, args.grpo_steps)
    from transformers import AutoModelForImageTextToText

    save_model(AutoModelForImageTextToText.from_pretrained(final, dtype="float32"), processor, args.out,
               args.save_dtype, references)
    print(json.dumps({"event": "done", "out": str(args.out), "minutes": round((time.time() - t0) / 60, 1)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
