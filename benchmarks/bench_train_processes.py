"""Seconds per GRPO step of `lriad train` as 1 and as 2 data-parallel processes (`--num-processes 2`: accelerate's
launcher, torchrun, gloo on the CPU), in one run, on the bundled model and the same small review store.

    PYTHONPATH=. python benchmarks/bench_train_processes.py [--steps 8] [--tokens 48] [--processes 1 2] [--json]

Both runs have the recipe's batch (8 completions a step, 4 per image) and so do the same work a step; two
processes each do half of it and average their gradients. The figure is the median of each run's step times
(the `s_per_step` of its last `step` event) and the wall time of the whole command (loading, the before/after
evaluations, torchrun's start). It prints one line per process count, or one JSON object with `--json`, and
the CPU. On a machine whose cores are already busy (a 2-core machine, or one shared with other work) two
processes can't be much faster than one. torchrun gives each of its processes one thread
(`OMP_NUM_THREADS=1`) unless the variable is set; run with `OMP_NUM_THREADS=1` to compare like with like.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))


def _store(folder: Path) -> Path:
    from lriad_desktop.core.paths import model_folder
    from test_improve import make_store

    store = make_store(folder, n_flag=2, n_accept=2)
    base = store.add_model_version("lriad-tiny", str(model_folder(None)))
    store.activate_model_version(base.id)
    path = store.path
    store.close()
    return path


def _run(db: Path, out: Path, steps: int, processes: int, tokens: int) -> dict:
    from lriad_desktop.core.training_runs.protocol import decode_event

    recipe = {"preset": "cpu_tiny", "max_steps": steps, "batch_size": 8, "num_generations": 4,
              "max_completion_length": tokens, "warm_start_steps": 0}
    cmd = [sys.executable, "-m", "lriad_desktop", "train", "--db", str(db), "--out", str(out),
           "--recipe-json", json.dumps(recipe), "--num-processes", str(processes)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    wall = time.perf_counter() - t0
    events = [decode_event(line) for line in proc.stdout.splitlines() if line.strip()]
    step_events = [e for e in events if e.kind == "step"]
    if proc.returncode != 0 or not step_events:
        raise SystemExit(f"{processes} process(es): exit {proc.returncode}\n{proc.stderr[-2000:]}")
    elapsed = [e.elapsed_s or 0.0 for e in step_events]
    return {"processes": processes, "steps": step_events[-1].step, "s_per_step": step_events[-1].s_per_step,
            "step_s": [round(b - a, 2) for a, b in zip([0.0] + elapsed, elapsed)],
            "training_s": step_events[-1].elapsed_s, "wall_s": round(wall, 1)}


def main() -> None:
    """Measure and print."""
    from benchmarks.anomaly_map_auroc import cpu_name

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=48, help="longest completion (default 48)")
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    recipe = f"cpu_tiny, 8 completions a step (4 a prompt), up to {args.tokens} tokens, bundled lriad-tiny"
    if not args.json:
        print(f"CPU: {cpu_name()} ({os.cpu_count()} cores); load average {os.getloadavg()[0]:.1f}; "
              f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}; {recipe}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-train-processes-") as tmp:
        db = _store(Path(tmp))
        for n in args.processes:
            row = _run(db, Path(tmp) / "adapters" / f"p{n}", args.steps, n, args.tokens)
            rows.append(row)
            if not args.json:  # each run's line as soon as it is in
                print(f"{n} process(es): {row['s_per_step']:.2f} s/step (median) over {row['steps']} steps "
                      f"{row['step_s']}; training {row['training_s']:.0f} s, whole command {row['wall_s']:.0f} s; "
                      f"load average {os.getloadavg()[0]:.1f}", flush=True)
    if args.json:
        print(json.dumps({"cpu": cpu_name(), "cores": os.cpu_count(), "runs": rows, "recipe": recipe}))


if __name__ == "__main__":
    main()
