"""Where the recipe's training runs: the CPU (the default, and what the tests use) or one GPU.

The recipe keeps fp32 master weights everywhere; on CUDA the forward and backward passes run
under bf16 autocast. Data is drawn on the CPU, optionally in `DataLoader` worker processes:
every batch is a pure function of its step number, so the data are the same with or without
workers and a resumed run sees what an uninterrupted one would have.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable

import torch


def resolve_device(name: str = "cpu") -> torch.device:
    """The app's own choice (`pick_device`: `auto` takes a GPU when there is one), except that an
    explicit `cuda` without one is an error rather than a quiet CPU run of a GPU-sized recipe."""
    from lriad_desktop.core.devices import pick_device

    picked, _dtype = pick_device(name)
    if name == "cuda" and picked != "cuda":
        raise RuntimeError("--device cuda was asked for, but torch sees no CUDA GPU "
                           f"(torch {torch.__version__}, built for CUDA {torch.version.cuda})")
    return torch.device(picked)


def autocast(device: torch.device):
    """bf16 autocast on CUDA; nothing on the CPU (the CPU recipe stays fp32, as it was tuned)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def to_device(obj: Any, device: torch.device) -> Any:
    """Tensors in `obj` (nested dicts, lists, tuples) moved to `device`; everything else as is."""
    if isinstance(obj, torch.Tensor):
        return obj.to(device, non_blocking=True)
    if isinstance(obj, dict):
        return {k: to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_device(v, device) for v in obj)
    return obj


class StepBatches(torch.utils.data.Dataset):
    """Batches `start`, `start + 1`, ... `stop - 1` of a stream whose batch depends only on its step."""

    def __init__(self, make: Callable[[int], Any], start: int, stop: int) -> None:
        self.make, self.start, self.stop = make, start, stop

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def __getitem__(self, k: int) -> Any:
        return self.make(self.start + k)


def stop_for_time_budget(stage: str, step: int, cfg, elapsed: float, log: Callable[[dict], None],
                         checkpoint: Callable[[], None], evaluate: Callable[[], None]) -> bool:
    """True once a stage has run past `cfg.time_budget_s` before its last step; it is then checkpointed
    and evaluated (unless this step already was), so a capped run still leaves a usable model."""
    if cfg.time_budget_s is None or elapsed <= cfg.time_budget_s or step >= cfg.steps:
        return False
    log({"event": "time_budget", "stage": stage, "step": step, "elapsed_s": round(elapsed, 1)})
    checkpoint()
    if step % cfg.eval_every:
        evaluate()
    return True


def _as_is(batch: Any) -> Any:
    return batch


def step_batches(make: Callable[[int], Any], start: int, stop: int, workers: int = 0):
    """Iterate `make(step)` for step in [start, stop), in order, drawn by `workers` processes (0: inline)."""
    if workers <= 0:
        return (make(step) for step in range(start, stop))
    return iter(torch.utils.data.DataLoader(
        StepBatches(make, start, stop), batch_size=None, shuffle=False, num_workers=workers,
        prefetch_factor=4, collate_fn=_as_is, persistent_workers=False))
