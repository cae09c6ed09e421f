"""`lriad train` as several processes: data-parallel GRPO under `accelerate launch` (torchrun underneath,
DeepSpeed ZeRO when its config says so). The project adds no scheduler of its own.

Two ways in, one run:
- `accelerate launch [--config_file F] -m lriad_desktop train …` (an ML engineer's usual command): every
  process runs `lriad train` with `RANK`/`WORLD_SIZE` set; `RankGroup.join` finds them;
- `lriad train --num-processes N [--accelerate-config F] …` (what the app starts): `relaunch` runs accelerate's
  own launcher in this process with the same arguments, and exits with the main process's `ExitCode`
  (torchrun alone would turn every ending but success into 1).

Only the main process (rank 0) opens the review store, holds the run lock, evaluates, writes the adapter,
registers the version and prints protocol events. The others wait for its `GRPOJob` (the rows, the recipe,
the folders), train their share of every step, and leave; a run that ends before training hands them `None`.
Every rank agrees at each step whether to stop (Cancel, the time budget), so no rank waits forever on a peer.
"""

from __future__ import annotations

import datetime
import os
import socket
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

EXIT_FILE_ENV = "LRIAD_TRAIN_EXIT_FILE"  # where the main process writes its exit status for `relaunch`
HANDOFF_TIMEOUT = datetime.timedelta(hours=12)  # the main process evaluates (and may warm-start) before the hand-off
# After a SIGTERM (Cancel) torchrun waits this long for the processes to end before it kills them (its default, 30 s,
# is shorter than one GRPO step of a large model): each finishes its step, they vote to stop, rank 0 records it.
STOP_GRACE_S = 300
CONFIG_DIR = Path(__file__).resolve().parent / "configs"
LAUNCH_CONFIGS = {  # the `--accelerate-config` names shipped with the package (training/recipes/configs)
    "ddp": "multi_gpu.yaml",
    "zero2": "deepspeed_zero2.yaml",
    "zero3": "deepspeed_zero3.yaml",
}


def launched_world() -> tuple[int, int]:
    """(rank, world size) this process was started with by torchrun / accelerate launch; (0, 1) otherwise."""
    try:
        return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 0, 1


@dataclass
class GRPOJob:
    """What every rank needs to run the same GRPO training: the main process builds it, the others receive it."""

    base: str
    rows: list[dict]
    recipe: Any  # a `training.recipes.grpo.GRPORecipe`
    out_dir: str
    adapter_from: str | None = None
    budget_s: float | None = None
    after_s: float = 0.0
    spent_s: float = 0.0  # what the main process's run already took (a warm start): inside the budget


class RankGroup:
    """This process's place in a multi-process run, and the two things the ranks say to each other."""

    def __init__(self, rank: int, world_size: int, group: Any) -> None:
        self.rank = rank
        self.world_size = world_size
        self._group = group  # a gloo group: hand-off and stop votes travel on the CPU whatever the backend
        self._handed = False

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that touches the store, the adapter folder and stdout."""
        return self.rank == 0

    @classmethod
    def join(cls, use_cpu: bool) -> "RankGroup | None":
        """Join the run's processes (None when this is a one-process run). Starts accelerate's process group
        (gloo on the CPU, NCCL or DeepSpeed's on GPUs, as the launcher set up) before trl does, and a gloo
        group with a long timeout for the hand-off, which waits while the main process evaluates."""
        rank, world = launched_world()
        if world <= 1:
            return None
        import torch.distributed as dist
        from accelerate import PartialState

        PartialState(cpu=use_cpu)
        group = dist.new_group(backend="gloo", timeout=HANDOFF_TIMEOUT)
        return cls(dist.get_rank(), dist.get_world_size(), group)

    def handoff(self, job: GRPOJob | None = None) -> GRPOJob | None:
        """Main: send `job` (None: this run ends before training) to the others. Others: wait for it."""
        import torch.distributed as dist

        box = [job if self.is_main else None]
        dist.broadcast_object_list(box, src=0, group=self._group)
        self._handed = True
        return box[0]

    def release_followers(self) -> None:
        """Main, at its end: a run that never handed a job off tells the others to leave."""
        if self.is_main and not self._handed:
            self.handoff(None)

    def any(self, *flags: bool) -> tuple[bool, ...]:
        """Each flag, true when it is true on any rank (every rank must call this at the same point)."""
        import torch
        import torch.distributed as dist

        votes = torch.tensor([int(bool(f)) for f in flags], dtype=torch.int32)
        dist.all_reduce(votes, op=dist.ReduceOp.MAX, group=self._group)
        return tuple(bool(v) for v in votes.tolist())


def record_exit(code: int) -> None:
    """The main process's exit status, for `relaunch` (nothing without one waiting for it)."""
    path = os.environ.get(EXIT_FILE_ENV)
    rank, _world = launched_world()
    if path and rank == 0:
        try:
            Path(path).write_text(str(int(code)), encoding="utf-8")
        except OSError:
            pass


def resolve_launch_config(name: str | None) -> Path | None:
    """`--accelerate-config`: a shipped name (`ddp`, `zero2`, `zero3`) or a path to an accelerate YAML file;
    None/"" for plain data parallelism. A missing file is a ValueError that says which."""
    if not name:
        return None
    if name in LAUNCH_CONFIGS:
        return CONFIG_DIR / LAUNCH_CONFIGS[name]
    path = Path(name)
    if not path.is_file():
        raise ValueError(f"no accelerate config {name!r}: give {', '.join(LAUNCH_CONFIGS)} or a YAML file")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_arguments(train_args: Sequence[str], processes: int, config: Path | None) -> list[str]:
    """`accelerate launch` arguments that run `lriad train train_args` as `processes` processes on this machine.

    Without a config file it is accelerate's multi-process launcher (`--multi_gpu`: torchrun; on a machine
    without GPUs the processes join over gloo on the CPU). A frozen app re-launches its own executable
    (`--no_python`), since it has no separate Python."""
    head = ["--num_processes", str(processes), "--num_machines", "1", "--main_process_port", str(_free_port()),
            "--dynamo_backend", "no", "--quiet"]
    if config is not None:
        head = ["--config_file", str(config)] + head
    elif processes > 1:
        head = ["--multi_gpu", "--mixed_precision", "no"] + head
    if getattr(sys, "frozen", False):
        return head + ["--no_python", sys.executable, "train", *train_args]
    return head + ["-m", "lriad_desktop", "train", *train_args]


def relaunch(train_args: Sequence[str], processes: int, config: Path | None) -> int:
    """Run `lriad train train_args` under accelerate's launcher, here (its torchrun agent forwards SIGTERM
    to every process and stops them all when one dies); returns the main process's exit status, or 1 when
    the main process left none (it was killed)."""
    from accelerate.commands.launch import launch_command, launch_command_parser

    fd, exit_file = tempfile.mkstemp(prefix="lriad-train-exit-", suffix=".txt")
    os.close(fd)
    os.environ[EXIT_FILE_ENV] = exit_file
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    os.environ.setdefault("TORCH_ELASTIC_SHUTDOWN_TIMEOUT", str(STOP_GRACE_S))
    try:
        args = launch_command_parser().parse_args(launch_arguments(train_args, processes, config))
        try:
            launch_command(args)
            launcher_status = 0
        except SystemExit as stop:
            launcher_status = stop.code if isinstance(stop.code, int) else 1
        text = Path(exit_file).read_text(encoding="utf-8").strip()
        return int(text) if text else launcher_status
    finally:
        os.environ.pop(EXIT_FILE_ENV, None)
        Path(exit_file).unlink(missing_ok=True)


def quiet(_event: Any) -> None:
    """The events of a rank other than the main one: dropped (one process speaks the protocol)."""
