"""Seconds per step and peak GPU memory of the `gpu_large` GRPO recipe (LoRA r 64, bf16, gradient checkpointing,
16 completions a step, 8 a prompt, up to 512 tokens) on random-init models of real Qwen-VL shapes, through the
project's own `training.recipes.grpo.run_grpo`; and the memory arithmetic of the four shapes the docs discuss.

    python scripts/gpu_grpo_shapes.py                 # CUDA: Qwen2.5-VL-3B and Qwen3-VL-4B shapes, 5 steps each
    python scripts/gpu_grpo_shapes.py --tiny          # any machine: the same code on shrunk configs (CPU test)
    python scripts/gpu_grpo_shapes.py --arithmetic    # the memory arithmetic (meta device: no weights, seconds)

No weights exist on the GPU machine and no hub is reachable: each model is built from the config written out
below (`SHAPES`), saved with the bundled model's tokenizer and chat template (its special-token ids go into the
config; the vocabulary stays the real 151,936 rows), and trained on synthetic parts with a golden sample beside
each (two images a prompt, 448 x 448 px). A random model never says end-of-answer, so every completion runs to
the full 512 tokens: generation here is the worst case. Each run prints one JSON line: shape, parameters, LoRA
parameters, steps, `s_per_step` (the median step), each step's seconds, `peak_gpu_gib`
(`torch.cuda.max_memory_allocated`; a colocated vLLM's own memory is not in it), `peak_rss_gib`. With vllm
importable, each shape runs again with trl's colocated vLLM generation; without it, one `note` line says so.

What it needs is what `lriad train` needs: torch, transformers, peft, accelerate, trl and datasets (trl imports
it). trl is pure Python: on a machine without it, `pip install --no-deps trl-1.16.0-py3-none-any.whl` (the
version this project is tested with; `pip download trl==1.16.0 --no-deps`) and datasets likewise with its own
dependencies (pyarrow, dill, multiprocess, xxhash, pandas). A missing one is one JSON line naming it.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
TINY_MODEL = REPO / "resources" / "models" / "lriad-tiny"
NEEDED = ("torch", "transformers", "peft", "accelerate", "trl", "datasets")
IMAGE_PX = 448  # each image of a prompt (a golden sample and the part): 256 tokens on Qwen2.5-VL, 196 on Qwen3-VL


def _qwen25(hidden: int, inter: int, layers: int, heads: int, kv: int, vocab: int, tie: bool, mrope: list,
            vision: dict) -> dict:
    return {"model_type": "qwen2_5_vl", "tie_word_embeddings": tie,
            "text_config": {"hidden_size": hidden, "intermediate_size": inter, "num_hidden_layers": layers,
                            "num_attention_heads": heads, "num_key_value_heads": kv, "vocab_size": vocab,
                            "tie_word_embeddings": tie, "rms_norm_eps": 1e-6, "max_position_embeddings": 128000,
                            "rope_parameters": {"rope_type": "default", "rope_theta": 1e6, "mrope_section": mrope}},
            "vision_config": {"patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2, "window_size": 112,
                              "hidden_act": "silu", "out_hidden_size": hidden, **vision}}


def _qwen3(hidden: int, inter: int, layers: int, heads: int, kv: int, head_dim: int, tie: bool, mrope: list,
           vision: dict) -> dict:
    return {"model_type": "qwen3_vl", "tie_word_embeddings": tie,
            "text_config": {"hidden_size": hidden, "intermediate_size": inter, "num_hidden_layers": layers,
                            "num_attention_heads": heads, "num_key_value_heads": kv, "head_dim": head_dim,
                            "vocab_size": 151936, "tie_word_embeddings": tie, "rms_norm_eps": 1e-6,
                            "max_position_embeddings": 262144,
                            "rope_parameters": {"rope_type": "default", "rope_theta": 5e6, "mrope_section": mrope,
                                                "mrope_interleaved": True}},
            "vision_config": {"patch_size": 16, "spatial_merge_size": 2, "temporal_patch_size": 2,
                              "num_position_embeddings": 2304, "hidden_act": "gelu_pytorch_tanh",
                              "out_hidden_size": hidden, **vision}}


_Q25_VISION = {"depth": 32, "hidden_size": 1280, "intermediate_size": 3420, "num_heads": 16,
               "fullatt_block_indexes": [7, 15, 23, 31]}
# The published configs' shapes (Qwen/Qwen2.5-VL-3B-Instruct, -7B-Instruct, Qwen/Qwen3-VL-4B-Instruct, -8B-Instruct);
# built from them, the parameter counts match the published sizes (3.75 B, 8.29 B, 4.44 B, 8.77 B).
SHAPES = {
    "qwen2_5_vl_3b": _qwen25(2048, 11008, 36, 16, 2, 151936, True, [16, 24, 24], _Q25_VISION),
    "qwen2_5_vl_7b": _qwen25(3584, 18944, 28, 28, 4, 152064, False, [16, 24, 24], _Q25_VISION),
    "qwen3_vl_4b": _qwen3(2560, 9728, 36, 32, 8, 128, True, [24, 20, 20],
                          {"depth": 24, "hidden_size": 1024, "intermediate_size": 4096, "num_heads": 16,
                           "deepstack_visual_indexes": [5, 11, 17]}),
    "qwen3_vl_8b": _qwen3(4096, 12288, 36, 32, 8, 128, False, [24, 20, 20],
                          {"depth": 27, "hidden_size": 1152, "intermediate_size": 4304, "num_heads": 16,
                           "deepstack_visual_indexes": [8, 16, 24]}),
}
TINY_SHAPES = {  # the same families shrunk for a CPU (`--tiny`): the same code path, minutes instead of GPUs
    "qwen2_5_vl_3b": _qwen25(128, 256, 2, 4, 2, 151936, True, [4, 6, 6],
                             {"depth": 2, "hidden_size": 64, "intermediate_size": 128, "num_heads": 2,
                              "fullatt_block_indexes": [1]}),
    "qwen3_vl_4b": _qwen3(128, 256, 2, 4, 2, 32, True, [4, 6, 6],
                          {"depth": 2, "hidden_size": 64, "intermediate_size": 128, "num_heads": 2,
                           "deepstack_visual_indexes": [1]}),
}
RUN_SHAPES = ("qwen2_5_vl_3b", "qwen3_vl_4b")


def _say(**fields) -> None:
    print(json.dumps(fields), flush=True)


def _config(shape: dict):
    """A transformers config of `shape` with the bundled tokenizer's special-token ids."""
    from transformers import AutoConfig

    tiny = json.loads((TINY_MODEL / "config.json").read_text(encoding="utf-8"))
    ids = {k: tiny[k] for k in ("image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id")}
    text_ids = {k: tiny["text_config"][k] for k in ("bos_token_id", "eos_token_id", "pad_token_id")}
    data = json.loads(json.dumps(shape))
    data["text_config"].update(text_ids)
    return AutoConfig.for_model(data.pop("model_type"), **data, **ids)


def build_model_folder(name: str, shape: dict, folder: Path, device: str) -> tuple[Path, int]:
    """A random-init model of `shape` saved in `folder` (bf16) with a processor for its family; its parameters."""
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    config = _config(shape)
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForImageTextToText.from_config(config, dtype=torch.bfloat16)
    model.generation_config.eos_token_id = json.loads((TINY_MODEL / "generation_config.json").read_text())[
        "eos_token_id"]
    params = sum(p.numel() for p in model.parameters())
    model.save_pretrained(folder, safe_serialization=True)
    del model
    if device == "cuda":
        torch.cuda.empty_cache()
    processor = AutoProcessor.from_pretrained(TINY_MODEL)
    if shape["model_type"] == "qwen3_vl":  # the same tokenizer and template behind Qwen3-VL's processor (patch 16)
        from transformers import Qwen2VLImageProcessor, Qwen3VLProcessor, Qwen3VLVideoProcessor

        processor = Qwen3VLProcessor(image_processor=Qwen2VLImageProcessor(patch_size=16, merge_size=2),
                                     tokenizer=processor.tokenizer,
                                     video_processor=Qwen3VLVideoProcessor(patch_size=16, merge_size=2),
                                     chat_template=processor.chat_template)
    else:
        shutil.copy(TINY_MODEL / "lriad.json", folder / "lriad.json")
    processor.save_pretrained(folder)
    return folder, params


def training_rows(folder: Path, n: int) -> list[dict]:
    """`n` GRPO rows of synthetic parts, each beside its golden sample, in the model's frame."""
    import numpy as np

    from lriad_desktop.core.inspection.coordinates import read_model_geometry
    from training.synthetic_data.samples import generate_sample
    from training.synthetic_data.targets import grpo_row_from_sample

    geometry = read_model_geometry(folder)
    return [grpo_row_from_sample(generate_sample(np.random.default_rng([7, i]), size=(IMAGE_PX, IMAGE_PX),
                                                 reference=True), geometry) for i in range(n)]


def run_shape(name: str, shape: dict, recipe, device: str, work: Path, vllm: bool, steps: int) -> None:
    """Build, train `steps` GRPO steps, print one JSON line (or one with `error`)."""
    import torch

    from training.recipes.grpo import run_grpo

    folder = work / name
    t0 = time.perf_counter()
    if not (folder / "config.json").is_file():
        folder.mkdir(parents=True, exist_ok=True)
        build_model_folder(name, shape, folder, device)
    build_s = time.perf_counter() - t0
    rows = training_rows(folder, steps * recipe.batch_size // recipe.num_generations)
    print(f"{name}: built in {build_s:.0f} s, {len(rows)} rows; training", file=sys.stderr, flush=True)
    events = []
    if device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    out = work / f"{name}-adapter-{'vllm' if vllm else 'generate'}"
    t1 = time.perf_counter()
    try:
        summary = run_grpo(folder, rows, recipe, out, emit=lambda event: _progress(event, events))
    except Exception as err:  # an out-of-memory is a figure too
        _say(shape=name, vllm=vllm, device=device, error=f"{type(err).__name__}: {str(err)[:400]}",
             peak_gpu_gib=_peak_gpu(device))
        return
    finally:
        shutil.rmtree(out, ignore_errors=True)
    step_events = [e for e in events if e.kind == "step"]
    setup = next(e for e in events if e.kind == "setup")
    elapsed = [e.elapsed_s or 0.0 for e in step_events]
    _say(shape=name, vllm=vllm, device=device, cancelled=bool(summary.get("cancelled")),  # SIGTERM: after a step
         params_b=round(_params(folder) / 1e9, 3),
         lora_params_m=round(_lora_params(folder, recipe) / 1e6, 1), steps=summary["steps"],
         s_per_step=summary.get("s_per_step"), step_s=[round(b - a, 2) for a, b in zip([0.0] + elapsed, elapsed)],
         peak_gpu_gib=_peak_gpu(device), peak_rss_gib=round(_peak_rss_gib(), 2),
         batch=recipe.batch_size, generations=recipe.num_generations,
         max_completion_length=recipe.max_completion_length, images_per_prompt=len(rows[0]["images"]),
         image_px=IMAGE_PX, build_s=round(build_s, 1), run_s=round(time.perf_counter() - t1, 1),
         recipe={k: v for k, v in setup.recipe.items() if k in ("lora_r", "bf16", "gradient_checkpointing",
                                                                 "use_vllm", "beta", "learning_rate")})


def _progress(event, events: list) -> None:
    """Keep the event; say each step on stderr (stdout holds only the JSON lines)."""
    events.append(event)
    if event.kind in ("setup", "step"):
        print(f"{event.kind} {getattr(event, 'step', '')} {time.strftime('%H:%M:%S')}", file=sys.stderr, flush=True)


def _peak_gpu(device: str) -> float | None:
    import torch

    return round(torch.cuda.max_memory_allocated() / 2**30, 2) if device == "cuda" else None


def _peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # kB on Linux


def _params(folder: Path) -> int:
    from safetensors import safe_open

    total = 0
    for path in folder.glob("*.safetensors"):
        with safe_open(str(path), "pt") as fh:
            for key in fh.keys():
                total += _numel(fh.get_slice(key).get_shape())
    return total


def _numel(shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def _lora_params(model_or_folder, recipe) -> int:
    """LoRA parameters peft adds for the recipe: r x (in + out) for each targeted linear layer."""
    import torch
    from transformers import AutoConfig, AutoModelForImageTextToText

    from training.recipes.grpo import lora_target_pattern

    model = model_or_folder
    if isinstance(model_or_folder, Path):
        with torch.device("meta"):
            model = AutoModelForImageTextToText.from_config(AutoConfig.from_pretrained(model_or_folder))
    pattern = re.compile(lora_target_pattern(recipe))
    return sum(recipe.lora_r * (m.in_features + m.out_features) for name, m in model.named_modules()
               if isinstance(m, torch.nn.Linear) and pattern.fullmatch(name))


def memory_arithmetic(recipe, gpus: int = 4) -> None:
    """One JSON line per shape: the terms of one GPU's memory for the recipe (GiB), from the configs alone."""
    import torch
    from transformers import AutoModelForImageTextToText

    gib = 2**30
    for name, shape in SHAPES.items():
        config = _config(shape)
        with torch.device("meta"):
            model = AutoModelForImageTextToText.from_config(config)
        params = sum(p.numel() for p in model.parameters())
        lora = _lora_params(model, recipe)
        text = config.text_config
        head_dim = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
        patch = shape["vision_config"]["patch_size"] * shape["vision_config"]["spatial_merge_size"]
        image_tokens = 2 * (IMAGE_PX // patch) ** 2  # a golden sample and the part
        prompt = image_tokens + 150  # + the system prompt and the question (about 150 tokens)
        seq = prompt + recipe.max_completion_length
        tokens = recipe.batch_size * seq  # one GPU holds the whole step's batch
        weights = 2 * params  # bf16
        lora_states = 16 * lora  # fp32 weight, gradient, Adam's two moments
        checkpoints = tokens * text.hidden_size * 2 * text.num_hidden_layers  # each layer's bf16 input, kept
        layer = tokens * (4 * text.hidden_size + 3 * text.intermediate_size) * 2 * 2  # one layer recomputed, + grads
        logits = recipe.batch_size * recipe.max_completion_length * text.vocab_size * 4 * 2  # fp32, log-softmax copy
        kv_cache = tokens * text.num_hidden_layers * 2 * text.num_key_value_heads * head_dim * 2  # bf16 K and V
        one = weights + lora_states + checkpoints + layer + logits + kv_cache
        per_gpu_activations = (checkpoints + layer + logits + kv_cache) / gpus  # the batch splits over the GPUs
        _say(shape=name, params_b=round(params / 1e9, 3), lora_params_m=round(lora / 1e6, 1),
             image_tokens=image_tokens, sequence_tokens=seq, batch=recipe.batch_size,
             weights_gib=round(weights / gib, 1), lora_states_gib=round(lora_states / gib, 2),
             checkpointed_activations_gib=round(checkpoints / gib, 2), recomputed_layer_gib=round(layer / gib, 2),
             completion_logits_gib=round(logits / gib, 2), kv_cache_gib=round(kv_cache / gib, 2),
             one_gpu_gib=round(one / gib, 1),
             ddp_per_gpu_gib=round((weights + lora_states + per_gpu_activations) / gib, 1),
             zero3_per_gpu_gib=round((weights / gpus + lora_states / gpus + per_gpu_activations) / gib, 1),
             zero3_generating_per_gpu_gib=round((weights + lora_states / gpus + per_gpu_activations) / gib, 1),
             vllm_colocated_extra_gib=round(weights / gib, 1), gpus=gpus)


def main() -> int:
    """Run what the options say; 0 when every run printed figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="shrunk configs (runs on a CPU)")
    parser.add_argument("--arithmetic", action="store_true", help="print the memory arithmetic and exit")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--shapes", nargs="+", default=list(RUN_SHAPES), choices=list(SHAPES))
    parser.add_argument("--work", type=Path, default=None, help="folder for the random models (default: a temp one)")
    args = parser.parse_args()
    missing = [name for name in NEEDED if importlib.util.find_spec(name) is None]
    if missing:
        _say(error=f"missing {', '.join(missing)}: install them first (see this script's docstring)")
        return 2
    import torch

    from training.recipes.grpo import GRPORecipe

    if args.arithmetic:
        memory_arithmetic(GRPORecipe.gpu_large())
        return 0
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu" and not args.tiny:
        _say(error="no CUDA GPU here: run with --tiny (shrunk configs) on a CPU")
        return 2
    overrides = dict(max_steps=args.steps, warm_start_steps=0)
    if args.tiny:
        overrides.update(batch_size=8, num_generations=4, max_completion_length=16)
    if device == "cpu":
        overrides.update(use_cpu=True, bf16=False, gradient_checkpointing=True)
    with_vllm = [False] + ([True] if importlib.util.find_spec("vllm") and device == "cuda" else [])
    if len(with_vllm) == 1:
        _say(note="vllm is not importable here (or there is no GPU): every shape runs with transformers' "
                  "generate only")
    _say(versions={name: __import__(name).__version__ for name in NEEDED}, device=device,
         gpu=torch.cuda.get_device_name(0) if device == "cuda" else None)
    shapes = TINY_SHAPES if args.tiny else SHAPES
    work = args.work or Path(tempfile.mkdtemp(prefix="gpu-grpo-shapes-"))
    try:
        for name in args.shapes:
            if name not in shapes:
                continue
            for vllm in with_vllm:
                run_shape(name, shapes[name], GRPORecipe.gpu_large(use_vllm=vllm, **overrides), device, work, vllm,
                          args.steps)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
