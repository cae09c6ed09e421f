"""GRPO fine-tuning with trl's `GRPOTrainer` and a peft LoRA adapter, reporting protocol events.

The recipe is data (`GRPORecipe`): `PRESETS` for a CPU + the tiny bundled model and for a GPU +
a 3B/7B model, and one resolver (`resolve_recipe`) from `lriad train`'s options. The adapter is
written to a temporary folder and renamed into place only when complete, so a killed run never
leaves a half-written adapter where the app looks.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from lriad_desktop.core.atomic_files import FileWriteError, is_disk_full, write_text_atomically
from lriad_desktop.core.inspection.coordinates import processor_size, read_model_geometry
from lriad_desktop.core.backends.engine import validate_adapter_folder, validate_model_folder
from lriad_desktop.core.inspection.families import FAMILIES, ModelFamily, prompt_opens_think, read_model_type, with_opened_think
from lriad_desktop.core.backends.model_files import model_load_errors
from lriad_desktop.core.training_runs.recovery import TRAINING_RECORD, temp_prefix
from lriad_desktop.core.training_runs.step_time import StepClock
from lriad_desktop.core.training_runs.protocol import AdapterSaved, Emit, RunCancelled, Step, TrainingSetUp, print_event
from training.recipes.rewards import RareDefectEmphasis, class_counts, completion_text, reward_functions

if TYPE_CHECKING:
    from training.recipes.distributed import RankGroup

@dataclass(frozen=True)
class GRPORecipe:
    """Everything that shapes one GRPO run."""

    rewards: tuple[str, ...] = ("format", "verdict", "label", "localisation", "consistency")
    reward_weights: tuple[float, ...] | None = None  # one per reward (+1 for rare_defect); None: all 1
    rare_defect: bool = True
    rare_alpha: float = 1.0
    rare_gamma: float = 2.0
    num_generations: int = 4
    batch_size: int = 8  # completions per step; a multiple of num_generations
    max_steps: int = 60  # ~2 min on 2 CPU cores with the bundled model; 150 forgot the other types (bench_improve.py)
    learning_rate: float = 3e-4  # 2e-3 taught the flagged type by unlearning the rest
    beta: float = 0.2  # KL weight against the starting model (0.02 let it drift to KL 1.4)
    temperature: float = 1.0
    max_completion_length: int = 96
    scale_rewards: str = "batch"  # keep the rare-defect weights visible across groups
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    lora_targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    freeze_vision: bool = True
    use_cpu: bool = True
    bf16: bool = False
    gradient_checkpointing: bool = False
    seed: int = 0
    warm_start_steps: int = 120  # SFT steps before GRPO when a flagged label is one the model never says; 0: off
    warm_start_lr: float = 1e-3
    balance_verdicts: bool = True  # normal rows repeated to match the anomalous ones (flags are mostly defects)
    replay_ratio: float = 3.0  # accepted images replayed per flagged one (every accepted class in turn)
    references: int = 1  # golden samples beside each image: the first K of its object's (the app's setting)
    use_vllm: bool = False  # trl's vLLM generation (only where vllm is installed; else transformers, with a note)
    vllm_mode: str = "colocate"  # vLLM inside each training process, sharing its GPU ("server": a separate one)
    vllm_gpu_memory_utilization: float = 0.3  # the GPU share a colocated vLLM takes for weights and KV cache
    vllm_sleep: bool = True  # colocated vLLM offloads weights and cache while the trainer steps (trl's sleep mode)
    extra: dict = field(default_factory=dict)

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> "GRPORecipe":
        """The `PRESETS[name]` recipe with `overrides` on top (unknown names and fields are a ValueError)."""
        if name not in PRESETS:
            raise ValueError(f"unknown recipe preset {name!r} ({' or '.join(PRESETS)})")
        for key in ("rewards", "reward_weights", "lora_targets"):
            if overrides.get(key) is not None:
                overrides[key] = tuple(overrides[key])
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(f"unknown recipe field(s) {', '.join(unknown)}")
        return cls(**{**PRESETS[name], **overrides})

    @classmethod
    def cpu_tiny(cls, **overrides: Any) -> "GRPORecipe":
        """Defaults for a CPU and the bundled tiny model."""
        return cls.preset("cpu_tiny", **overrides)

    @classmethod
    def gpu_large(cls, **overrides: Any) -> "GRPORecipe":
        """Defaults for one GPU and a Qwen2.5-VL-3B/7B model."""
        return cls.preset("gpu_large", **overrides)

    @classmethod
    def multi_gpu(cls, **overrides: Any) -> "GRPORecipe":
        """`gpu_large` over several GPUs, with vLLM generation where vllm is installed."""
        return cls.preset("multi_gpu", **overrides)

    @classmethod
    def from_json(cls, path: str | Path) -> "GRPORecipe":
        """A recipe file: `{"preset": "cpu_tiny" | "gpu_large", ...overrides}`."""
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))

    @classmethod
    def from_dict(cls, data: dict) -> "GRPORecipe":
        """A recipe from `{"preset": ..., **overrides}` (unknown keys are an error)."""
        data = dict(data)
        return cls.preset(data.pop("preset", "cpu_tiny"), **data)


# Recipe presets by name: changes from the `GRPORecipe` defaults (which are the CPU preset's).
PRESETS: dict[str, dict[str, Any]] = {
    "cpu_tiny": {},  # a CPU and the bundled tiny model
    "gpu_large": dict(num_generations=8, batch_size=16, max_steps=200, learning_rate=1e-5, beta=0.04,
                      max_completion_length=512, lora_r=64, lora_alpha=128, lora_dropout=0.05,
                      use_cpu=False, bf16=True, gradient_checkpointing=True,
                      warm_start_lr=1e-4),  # one GPU, a 3B/7B model (warm start: LoRA SFT's usual rate, unmeasured)
}
# several GPUs under `lriad train --num-processes N` / `accelerate launch` (docs/training-on-more-gpus.md): the
# one-GPU recipe, its 16 completions per step split over the processes, generated by a colocated vLLM where
# vllm is installed (trl's `vllm_mode="colocate"`, its sleep mode offloading vLLM while the trainer steps)
PRESETS["multi_gpu"] = {**PRESETS["gpu_large"], "use_vllm": True}


def default_preset() -> str:
    """`gpu_large` where torch sees a CUDA GPU (`multi_gpu` in a run of several processes), else `cpu_tiny`."""
    import torch

    if not torch.cuda.is_available():
        return "cpu_tiny"
    return "multi_gpu" if int(os.environ.get("WORLD_SIZE", "1") or 1) > 1 else "gpu_large"


def resolve_recipe(preset: str | None = None, recipe_file: str | Path | None = None, recipe_json: str | None = None,
                   steps: int | None = None) -> GRPORecipe:
    """The recipe of one `lriad train` run, from its options: a recipe file, then a JSON string on top of
    it (each `{"preset": …, **overrides}`), `preset` over theirs, `steps` over `max_steps`. Without a preset
    anywhere, the machine decides (`default_preset`). A bad file, JSON or field is a ValueError that says so."""
    overrides: dict[str, Any] = {}
    try:
        if recipe_file is not None:
            overrides.update(json.loads(Path(recipe_file).read_text(encoding="utf-8")))
        if recipe_json:
            overrides.update(json.loads(recipe_json))
    except (OSError, ValueError, TypeError) as err:  # TypeError: the JSON is not an object
        raise ValueError(f"can't read the recipe: {err}") from None
    chosen = preset or overrides.pop("preset", None) or default_preset()
    overrides.pop("preset", None)
    if steps is not None:
        overrides["max_steps"] = steps
    return GRPORecipe.preset(chosen, **overrides)


def evaluation_device(recipe: GRPORecipe, device: str = "auto") -> str:
    """Where the before/after evaluation runs: `device`, or with "auto" where the recipe trains."""
    if device == "auto":
        return "cpu" if recipe.use_cpu else "cuda"
    return device


def lora_target_pattern(recipe: GRPORecipe, extra_targets: Sequence[str] = ()) -> str:
    """A peft `target_modules` regex: the language model's layers (and the vision tower's if unfrozen).

    `extra_targets` are a family's own module names (the family table's `lora_extra_targets`,
    e.g. Qwen3.5's linear-attention projections).
    """
    names = "|".join(dict.fromkeys(tuple(recipe.lora_targets) + tuple(extra_targets)))
    pattern = rf".*language_model.*\.({names})"
    if not recipe.freeze_vision:
        vision = "qkv|proj|fc1|fc2|linear_fc1|linear_fc2|gate_proj|up_proj|down_proj"  # Qwen2/2.5-VL and Qwen3 towers
        pattern = rf"({pattern}|.*visual\.blocks.*\.({vision}))"
    return pattern


class _Cancel:
    """Set by SIGTERM/SIGINT (or the app going away): training stops cleanly after the current step."""

    def __init__(self) -> None:
        self.requested = False
        self.reason = ""

    def install(self) -> None:
        def handler(signum, _frame):
            self.requested = True
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                signal.signal(sig, handler)
            except ValueError:  # not the main thread (tests): cancel via `requested`
                pass

    def watch_stdin(self, stream=None) -> threading.Thread | None:
        """Cancel when stdin reaches end of file. The app starts `lriad train` with a pipe as stdin
        and never writes to it, so end of file means the app is gone (quit, crashed or killed, on any
        OS): the run then stops like a Cancel instead of training on unwatched. A process without
        stdin (a windowed build may have none) has nothing to watch."""
        stream = stream if stream is not None else sys.stdin
        if stream is None:
            return None

        def watch() -> None:
            try:
                source = getattr(stream, "buffer", stream)
                while source.read(4096):
                    pass
            except (OSError, ValueError):
                pass
            self.reason = "the app that started this run has gone"
            self.requested = True

        thread = threading.Thread(target=watch, name="stop-with-parent", daemon=True)
        thread.start()
        return thread


def _events_callback(emit: Emit, cancel: _Cancel, rare: RareDefectEmphasis | None, clock: StepClock,
                     budget_s: float | None = None, after_s: float = 0.0, training_began: float | None = None,
                     ranks: "RankGroup | None" = None):
    from transformers import TrainerCallback

    class EventsCallback(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            clock.started = time.perf_counter()  # steps are timed from here: loading and set-up are not steps
            if training_began is not None:  # ... but they, and a warm start before them, are inside the budget
                clock.before_s = clock.started - training_began

        def on_log(self, args, state, control, logs=None, **kwargs):
            logs = logs or {}
            if "reward" not in logs:
                return
            step = state.global_step
            emit(Step(step=step, max_steps=state.max_steps, reward=round(float(logs.get("reward", 0.0)), 4),
                      kl=round(float(logs.get("kl", 0.0)), 5),
                      eta_s=_rounded(clock.eta_s(state.max_steps, budget_s, after_s)),
                      s_per_step=_rounded(clock.s_per_step, 3), elapsed_s=round(clock.used_s, 1),
                      rewards={k.split("/")[1]: round(float(v), 4) for k, v in logs.items()
                               if k.startswith("rewards/") and k.endswith("/mean")},
                      classes=rare.stats() if rare is not None else {}))

        def on_step_end(self, args, state, control, **kwargs):
            clock.step_done()  # before this step's log (the trainer calls on_step_end, then on_log)
            cancelled, out_of_time = cancel.requested, clock.out_of_time(budget_s)
            if ranks is not None:  # every rank stops after the same step, or one would wait on the others forever
                cancelled, out_of_time = ranks.any(cancelled, out_of_time)
                cancel.requested = cancel.requested or cancelled
            if cancelled or out_of_time:
                control.should_training_stop = True
            return control

    return EventsCallback()


def _rounded(value: float | None, ndigits: int = 1) -> float | None:
    return None if value is None else round(value, ndigits)


def gathered_adapter_state(trainer) -> dict | None:
    """The full weights gathered onto the main rank where DeepSpeed ZeRO-3 shards them across processes (a
    collective: every rank calls it), as transformers' `Trainer.save_model` does; None everywhere else."""
    plugin = getattr(trainer.accelerator.state, "deepspeed_plugin", None)
    if plugin is None or plugin.zero_stage != 3:
        return None
    return trainer.accelerator.get_state_dict(trainer.deepspeed)


def vllm_options(recipe: GRPORecipe) -> dict[str, Any]:
    """`GRPOConfig` options for trl's vLLM generation where the recipe asks for it and vllm imports; where it
    doesn't, a note on stderr and generation with transformers (`model.generate`), as without it."""
    if not recipe.use_vllm:
        return {}
    import importlib.util

    if importlib.util.find_spec("vllm") is None:
        print("note: the recipe asks for vLLM generation but vllm is not installed here: generating with "
              "transformers instead (pip install vllm on a CUDA machine for trl's colocated vLLM)",
              file=sys.stderr, flush=True)
        return {}
    return {"use_vllm": True, "vllm_mode": recipe.vllm_mode,
            "vllm_gpu_memory_utilization": recipe.vllm_gpu_memory_utilization,
            "vllm_enable_sleep_mode": recipe.vllm_sleep}


def build_dataset(rows: Sequence[dict]):
    """A `datasets.Dataset` of prompt + image + truth columns for `GRPOTrainer`."""
    from datasets import Dataset

    return Dataset.from_list(list(rows))


def write_adapter_atomically(model, out_dir: Path, metadata: dict, state_dict: dict | None = None) -> Path:
    """Save the adapter into a temp folder beside `out_dir`, then rename it into place (`state_dict`: the
    weights gathered from every rank, where DeepSpeed ZeRO-3 shards them; None: the model's own).

    A full disk (or any write error, including the ones safetensors raises as its own type) is a
    `FileWriteError` naming `out_dir` ("Not enough disk space to save the adapter in …"); the temp
    folder is removed. A kill leaves only the hidden temp folder, which reconciliation removes.
    """
    out_dir = Path(out_dir)
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(out_dir, "save-"), dir=out_dir.parent))
    except OSError as err:
        raise FileWriteError(out_dir, err, "save the adapter in") from None
    try:
        if state_dict is not None:
            model.save_pretrained(tmp, safe_serialization=True, state_dict=state_dict)
        else:
            model.save_pretrained(tmp, safe_serialization=True)
        write_text_atomically(tmp / TRAINING_RECORD, json.dumps(metadata, indent=2, default=str) + "\n")
        if out_dir.exists():
            raise FileExistsError(f"{out_dir} already exists; refusing to overwrite an adapter version")
        os.rename(tmp, out_dir)
    except FileExistsError:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    except Exception as err:  # safetensors' SafetensorError is no OSError, but a full disk all the same
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(err, OSError) or is_disk_full(err):
            raise FileWriteError(out_dir, err, "save the adapter in") from None
        raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def _family_setup(base_dir: str | Path, processor) -> tuple[ModelFamily | None, dict]:
    """The base model's family (None outside the table), its chat-template switches, and the pixel budget
    set on the processor so training sees images at the size the coordinate frame assumes."""
    processor.image_processor.size = processor_size(read_model_geometry(base_dir))
    family = FAMILIES.get(read_model_type(base_dir))
    return family, (family.template_kwargs if family else {})


def _opens_think(processor, prompt: list, template_kwargs: dict) -> bool:
    text = processor.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False, **template_kwargs)
    return prompt_opens_think(text)


def _after_opened_think(func: Callable) -> Callable:
    """A reward that sees each completion with the `<think>` its prompt already opened (thinking templates)."""
    def wrapped(completions: Sequence[Any], **kwargs: Any) -> list[float]:
        return func([with_opened_think(completion_text(c)) for c in completions], **kwargs)

    wrapped.__name__ = getattr(func, "__name__", type(func).__name__)  # trl logs rewards by this name
    return wrapped


def run_grpo(base_dir: str | Path, rows: Sequence[dict], recipe: GRPORecipe, out_dir: str | Path,
             adapter_from: str | Path | None = None, emit: Emit = print_event,
             cancel: _Cancel | None = None, budget_s: float | None = None, after_s: float = 0.0,
             spent_s: float = 0.0, ranks: "RankGroup | None" = None) -> dict:
    """Fine-tune a LoRA adapter on `rows` with GRPO; write it to `out_dir`. Returns a summary.

    `budget_s` ends training when one more step would run past it (a run "for 10 minutes"; the recipe's
    `max_steps` is then a ceiling); it counts the `spent_s` seconds training already took before this call (a
    warm start) and the loading here. `after_s` is what the time left adds for the work after the last step.

    Each row: `prompt` (chat messages with one image placeholder per image), `images` (PIL, the golden
    samples first when there are any), and the truth columns the rewards read. Emits `setup`, `step`,
    `saved`/`cancelled` events.

    With `ranks` (a multi-process run, `training.recipes.distributed`) every rank calls this with the same rows and
    recipe; the recipe's `batch_size` stays the completions per step of the whole run, split evenly over the
    processes; only the main rank writes the adapter (and its `emit` is the only one that prints).
    """
    import torch
    from peft import LoraConfig, PeftModel
    from transformers import AutoModelForImageTextToText, AutoProcessor
    from transformers.trainer_callback import PrinterCallback, ProgressCallback
    from trl import GRPOConfig, GRPOTrainer

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    cancel = cancel or _Cancel()
    cancel.install()
    if recipe.batch_size % recipe.num_generations:
        raise ValueError("batch_size must be a multiple of num_generations")
    processes = ranks.world_size if ranks is not None else 1
    if recipe.batch_size % processes:
        raise ValueError(f"batch_size ({recipe.batch_size}) must be a multiple of the {processes} training processes")
    t0 = time.perf_counter()
    training_began = t0 - spent_s
    dtype = torch.bfloat16 if recipe.bf16 else torch.float32
    validate_model_folder(base_dir)  # a damaged folder is one ModelFolderError line, as in the app
    if adapter_from:
        validate_adapter_folder(adapter_from)
    with model_load_errors(f"Model in {base_dir}"):
        model = AutoModelForImageTextToText.from_pretrained(base_dir, dtype=dtype, local_files_only=True,
                                                            use_safetensors=True)
        processor = AutoProcessor.from_pretrained(base_dir, local_files_only=True)
    processor.tokenizer.padding_side = "left"
    family, template_kwargs = _family_setup(base_dir, processor)
    peft_config = None
    if adapter_from:
        with model_load_errors(f"Adapter {adapter_from}"):
            model = PeftModel.from_pretrained(model, adapter_from, is_trainable=True)
    else:
        peft_config = LoraConfig(r=recipe.lora_r, lora_alpha=recipe.lora_alpha, lora_dropout=recipe.lora_dropout,
                                 target_modules=lora_target_pattern(recipe, family.lora_extra_targets if family
                                                                    else ()),
                                 task_type="CAUSAL_LM")
    funcs = reward_functions(recipe.rewards)
    rare = None
    if recipe.rare_defect:
        rare = RareDefectEmphasis(class_counts(r["defect_class"] for r in rows), recipe.rare_alpha, recipe.rare_gamma)
        funcs = funcs + [rare]
    if rows and _opens_think(processor, rows[0]["prompt"], template_kwargs):
        funcs = [_after_opened_think(f) for f in funcs]
    weights = list(recipe.reward_weights) if recipe.reward_weights else None
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=temp_prefix(out_dir, "work-"), dir=out_dir.parent))  # reconciled if killed
    args = GRPOConfig(
        output_dir=str(work), use_cpu=recipe.use_cpu, bf16=recipe.bf16,
        gradient_checkpointing=recipe.gradient_checkpointing, remove_unused_columns=False,
        per_device_train_batch_size=recipe.batch_size // processes, num_generations=recipe.num_generations,
        max_completion_length=recipe.max_completion_length, learning_rate=recipe.learning_rate,
        beta=recipe.beta, temperature=recipe.temperature, max_steps=recipe.max_steps, logging_steps=1,
        save_strategy="no", report_to="none", seed=recipe.seed, scale_rewards=recipe.scale_rewards,
        reward_weights=weights, disable_tqdm=True, dataloader_num_workers=0, log_completions=False,
        chat_template_kwargs=template_kwargs or None, **vllm_options(recipe),
        ddp_find_unused_parameters=False if processes > 1 else None,  # every LoRA layer is in every forward pass
    )
    emit(TrainingSetUp(base=str(base_dir), adapter_from=str(adapter_from or ""), rows=len(rows),
                       max_steps=recipe.max_steps, recipe=asdict(recipe), budget_s=budget_s, processes=processes))
    trainer = GRPOTrainer(model=model, reward_funcs=funcs, args=args, train_dataset=build_dataset(rows),
                          processing_class=processor, peft_config=peft_config)
    for cb in (PrinterCallback, ProgressCallback):
        trainer.remove_callback(cb)
    clock = StepClock()
    trainer.add_callback(_events_callback(emit, cancel, rare, clock, budget_s, after_s, training_began, ranks))
    try:
        trainer.train()
        summary = {"steps": trainer.state.global_step, "minutes": round((time.perf_counter() - t0) / 60, 2),
                   "classes": rare.stats() if rare else {}, "s_per_step": _rounded(clock.s_per_step, 3)}
        if ranks is not None:  # a Cancel that came after the last step's vote: every rank decides alike
            cancel.requested = ranks.any(cancel.requested)[0]
        if cancel.requested:
            emit(RunCancelled(step=trainer.state.global_step))
            return {**summary, "cancelled": True}
        state_dict = gathered_adapter_state(trainer)  # every rank takes part where ZeRO-3 shards the weights
        if ranks is not None and not ranks.is_main:
            return {**summary, "cancelled": False}
        write_adapter_atomically(trainer.model, Path(out_dir), {"recipe": asdict(recipe), **summary,
                                                               "base": str(base_dir), "processes": processes},
                                 state_dict)
        emit(AdapterSaved(adapter=str(out_dir), steps=summary["steps"], minutes=summary["minutes"],
                          classes=summary["classes"]))
        return {**summary, "cancelled": False, "adapter": str(out_dir)}
    finally:
        shutil.rmtree(work, ignore_errors=True)
