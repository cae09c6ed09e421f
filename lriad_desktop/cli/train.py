"""`lriad train`: the Improve-model run as a command (what the app's Improve panel starts), in one process or,
with `--num-processes N` / `--accelerate-config F`, relaunched under accelerate."""

from __future__ import annotations

import argparse
from typing import Sequence


def cmd_train(args: argparse.Namespace) -> int:
    """`lriad train`: one protocol event per line on stdout (`core.training_runs.protocol`); exits with its `ExitCode`."""
    from lriad_desktop.core.training_runs.protocol import ExitCode, RunFailed, print_event

    try:
        from training.recipes.distributed import launched_world, record_exit, relaunch, resolve_launch_config
        from training.recipes.improve import train_from_options
    except ImportError as err:
        print_event(RunFailed(f"training is not available in this build: {err}"))
        return ExitCode.BAD_INPUT
    if args.num_processes < 1:
        print_event(RunFailed("--num-processes must be at least 1"))
        return ExitCode.BAD_INPUT
    if (args.num_processes > 1 or args.accelerate_config) and launched_world()[1] == 1:
        try:
            config = resolve_launch_config(args.accelerate_config)
        except ValueError as err:
            print_event(RunFailed(str(err)))
            return ExitCode.BAD_INPUT
        return relaunch(_without_launch_options(args.argv), args.num_processes, config)
    code = train_from_options(args.out, args.db, args.base, args.adapter_from, args.preset, args.recipe,
                              args.recipe_json, args.steps, args.device, args.synthetic_per_good,
                              args.stop_with_parent, minutes=args.minutes)
    record_exit(code)  # for `--num-processes`, whose launcher can't tell one failure from another
    return code


def _without_launch_options(argv: Sequence[str]) -> list[str]:
    """`lriad train`'s arguments (after `train`) without `--num-processes` and `--accelerate-config`, for each
    process the launcher starts."""
    argv = list(argv)
    argv = argv[argv.index("train") + 1:] if "train" in argv else argv
    kept: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg in ("--num-processes", "--accelerate-config"):
            skip = True
            continue
        if arg.startswith(("--num-processes=", "--accelerate-config=")):
            continue
        kept.append(arg)
    return kept
