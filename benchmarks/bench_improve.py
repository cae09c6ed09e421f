""""Improve model" on the CPU: does GRPO on a few flagged images fix a defect type the model
handles badly, without losing the others? Plus the ablation uniform vs dynamic rare-defect reward.

    python benchmarks/bench_improve.py [--model DIR] [--target hole] [--flags 16] [--test 16] [--seed 1]
                                       [--recipe-seed N] [--json]
    python benchmarks/bench_improve.py --new-defect color [--flags 16] [--json]
    python benchmarks/bench_improve.py --ablation [--common scratch --rare hole --ratio 20:2] [--json]

The review store it builds is an inspector's: the flagged images of the target type (the truth
as the inspector drew it), accepted good parts and accepted defective parts of the other types
(the inspector agreed with a right finding: label and box as drawn). Every figure is measured on
fresh held-out images, never on the flags: `flagged` is the target type, `others` the other
defect types plus as many good parts. `--seed` changes the store's images, the test images and
the recipe's seed; `--recipe-seed` changes only the recipe's (same images: how far the figures move by
chance, the yardstick for a change). With `--json` the output is one JSON object:

    {"flagged": {"before": {accuracy, label_accuracy, mean_iou, n}, "after": {...}},
     "others": {...}, "delta": {...}, "seed", "s_per_step", "steps", "minutes", "cpu", ...}

(fractions; `minutes` is the whole "Improve model" run, its own evaluations included; each `before`
and `after` also has `labels_said`: the label named first on each defective image, counted). Without
`--json`, the same figures as a table. `--new-defect LABEL` flags a type the model never says
(`flagged` is that type). `--ablation` reports `rare` and `common` before/after for the uniform
and the dynamic rare-defect reward.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from lriad_desktop.core.evaluation.datasets import LabelledImage  # noqa: E402
from lriad_desktop.core.defect_kinds import canonical_label  # noqa: E402
from lriad_desktop.core.backends.engine import Inspector  # noqa: E402
from lriad_desktop.core.evaluation.metrics import score  # noqa: E402
from lriad_desktop.core.inspection.finding import Box, Defect, Verdict  # noqa: E402
from lriad_desktop.core.paths import bundled_model_dir  # noqa: E402
from lriad_desktop.core.store.review import Review, ReviewKind  # noqa: E402
from lriad_desktop.core.training_runs.recovery import EVAL_RECORD  # noqa: E402
from lriad_desktop.core.store.review_store import ReviewStore  # noqa: E402
from lriad_desktop.core.training_runs.protocol import Step  # noqa: E402
from training.recipes.grpo import GRPORecipe  # noqa: E402
from training.recipes.improve import improve  # noqa: E402
from training.synthetic_data.samples import DEFECT_LABELS, generate_sample  # noqa: E402

FIGURES = ("accuracy", "label_accuracy", "mean_iou")


def samples(seed: int, tag: int, n: int, label: str | bool | list) -> list:
    """`n` synthetic samples of `label` (a list: cycled through), drawn from `(seed, tag, i)`."""
    labels = label if isinstance(label, list) else [label]
    return [generate_sample(np.random.default_rng([seed, tag, i]), defect=labels[i % len(labels)]) for i in range(n)]


def flag_store(folder: Path, flagged: list, accepted: list) -> Path:
    """A review store where the inspector flagged `flagged` and accepted `accepted` (both with the truth)."""
    folder.mkdir(parents=True, exist_ok=True)
    store = ReviewStore.open(folder / "reviews.sqlite3")
    for i, s in enumerate(flagged + accepted):
        path = folder / f"{i:04d}.png"
        s.image.save(path)
        img = store.add_image(path, s.object_name)
        kind = ReviewKind.FLAG if i < len(flagged) else ReviewKind.ACCEPT
        defects = tuple(Defect(d.label, Box(*map(float, d.box))) for d in s.defects)
        store.save_review(img.id, Review(kind, Verdict.ANOMALOUS if defects else Verdict.NORMAL, defects))
    path = store.path
    store.close()
    return path


def measure(model: Path, adapter: Path | None, test: list) -> dict:
    insp = Inspector(model, adapter, device="cpu", max_new_tokens=128)
    try:
        findings = []
        for i in range(0, len(test), 16):
            chunk = test[i:i + 16]
            findings += insp.inspect_batch([s.image for s in chunk], [s.object_name for s in chunk])
    finally:
        insp.close()
    pairs = [(LabelledImage(Path("x"), s.kind, s.defects[0].label if s.defects else "good",
                            tuple(Box(*map(float, d.box)) for d in s.defects), bool(s.defects)), f)
             for s, f in zip(test, findings)]
    sc = score(pairs)
    return {"accuracy": round(sc.accuracy, 4), "label_accuracy": round(sc.label_accuracy or 0.0, 4),
            "mean_iou": round(sc.mean_iou or 0.0, 4), "n": sc.n, "labels_said": labels_said(test, findings)}


def labels_said(test: list, findings: list) -> dict[str, int]:
    """How often the model named each label first on the defective images of `test` ("normal": it said
    none was there, "unparsed": no answer), most said first: one label for every defect means the model
    does not tell the types apart, whatever its label accuracy."""
    said = Counter()
    for s, f in zip(test, findings):
        if not s.defects:
            continue
        if f.verdict is Verdict.UNPARSED:
            said["unparsed"] += 1
        elif f.verdict is Verdict.ANOMALOUS and f.defects:
            said[f.defects[0].label or "(no label)"] += 1
        else:
            said["normal"] += 1
    return dict(said.most_common())


def measure_sets(model: Path, adapter: Path | None, sets: dict[str, list]) -> dict[str, dict]:
    return {name: measure(model, adapter, test) for name, test in sets.items()}


def run_improve(model: Path, db: Path, out: Path, recipe: GRPORecipe) -> dict:
    events = []

    def emit(event) -> None:
        events.append(event)
        if isinstance(event, Step) and (event.step % 10 == 0 or event.step == event.max_steps):
            print(f"step {event.step}/{event.max_steps} reward {event.reward} kl {event.kl} "
                  f"{event.s_per_step} s/step", file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    code = improve(db, model, out, recipe=recipe, emit=emit, seed=recipe.seed)
    steps = [e for e in events if isinstance(e, Step)]
    if code != 0:
        raise SystemExit(f"improve failed: {events[-1]}")
    record = json.loads((out / EVAL_RECORD).read_text(encoding="utf-8"))
    return {"minutes": round((time.perf_counter() - t0) / 60, 2),
            "s_per_step": steps[-1].s_per_step if steps else None, "steps": len(steps),
            "replay": record.get("replay"), "warm_start": record.get("warm_start") or None}


def cpu_name() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        model = next((ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("Model name")), "?")
    except (OSError, subprocess.SubprocessError):
        model = "?"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{model}, {cores} cores"


def before_after(before: dict, after: dict) -> dict:
    return {"before": before, "after": after}


def delta(ba: dict) -> dict:
    return {k: round(ba["after"][k] - ba["before"][k], 4) for k in FIGURES}


def table(result: dict) -> str:
    lines = [f"seed {result['seed']}  {result.get('cpu', '')}"]
    sections = [(k, v) for k, v in result.items() if isinstance(v, dict) and "before" in v]
    for variant in ("uniform", "dynamic"):
        if variant in result:
            sections += [(f"{variant}/{k}", v) for k, v in result[variant].items() if isinstance(v, dict)
                         and "before" in v]
    lines.append(f"{'set':<18}{'':>8}" + "".join(f"{k:>16}" for k in FIGURES))
    for name, ba in sections:
        for when in ("before", "after"):
            lines.append(f"{name:<18}{when:>8}" + "".join(f"{ba[when][k]:>16.3f}" for k in FIGURES))
        for when in ("before", "after"):
            said = ", ".join(f"{label} {n}" for label, n in ba[when].get("labels_said", {}).items())
            lines.append(f"{'':<18}{when:>8}  said on its defects: {said or '-'}")
    for key in ("steps", "s_per_step", "minutes"):
        if key in result:
            lines.append(f"{key}: {result[key]}")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=bundled_model_dir())
    p.add_argument("--target", default="hole", type=canonical_label, choices=DEFECT_LABELS)
    p.add_argument("--new-defect", type=canonical_label, choices=DEFECT_LABELS,
                   help="flag a type the model never says (replaces --target; 'colour' is 'color')")
    p.add_argument("--flags", type=int, default=16)
    p.add_argument("--steps", type=int, default=None, help="GRPO steps (the preset's when not given)")
    p.add_argument("--test", type=int, default=16, help="held-out test images per group")
    p.add_argument("--seed", type=int, default=1, help="images of the store and the test, and the recipe's seed")
    p.add_argument("--recipe-seed", type=int, default=None,
                   help="the recipe's seed alone (the same images): how far a figure moves by chance")
    p.add_argument("--recipe", default="{}", help="JSON overrides of the cpu_tiny recipe")
    p.add_argument("--lr", type=float, default=None, help="GRPO learning rate (LoRA)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--ablation", action="store_true")
    p.add_argument("--common", default="scratch")
    p.add_argument("--rare", default="hole")
    p.add_argument("--ratio", default="20:2")
    args = p.parse_args()
    overrides = json.loads(args.recipe)
    if args.steps is not None:
        overrides["max_steps"] = args.steps
    if args.lr is not None:
        overrides["learning_rate"] = args.lr
    overrides.setdefault("seed", args.seed if args.recipe_seed is None else args.recipe_seed)
    recipe = GRPORecipe.cpu_tiny(**overrides)
    work = Path(tempfile.mkdtemp(prefix="bench-improve-"))
    t0 = time.perf_counter()
    seed = args.seed
    try:
        if not args.ablation:
            target = args.new_defect or args.target
            others = [lab for lab in DEFECT_LABELS if lab != target]
            flagged = samples(seed, 101, args.flags, target)
            accepted = samples(seed, 102, args.flags // 2, False) + samples(seed, 104, args.flags, others)
            sets = {"flagged": samples(seed, 201, args.test, target),
                    "others": samples(seed, 202, args.test, others) + samples(seed, 203, args.test, False)}
            before = measure_sets(args.model, None, sets)
            db = flag_store(work / "store", flagged, accepted)
            run = run_improve(args.model, db, work / "adapter", recipe)
            after = measure_sets(args.model, work / "adapter", sets)
            result = {name: before_after(before[name], after[name]) for name in sets}
            result["delta"] = {name: delta(result[name]) for name in sets}
            result.update(target=target, new_defect=bool(args.new_defect), flags=args.flags, test=args.test, **run)
        else:
            n_common, n_rare = (int(v) for v in args.ratio.split(":"))
            flagged = samples(seed, 111, n_common, args.common) + samples(seed, 112, n_rare, args.rare)
            accepted = samples(seed, 113, (n_common + n_rare) // 2, False)
            sets = {"rare": samples(seed, 211, args.test, args.rare), "common": samples(seed, 212, args.test, args.common)}
            before = measure_sets(args.model, None, sets)
            db = flag_store(work / "store", flagged, accepted)
            result = {"rare_label": args.rare, "common_label": args.common, "ratio": args.ratio}
            for name, dynamic in (("uniform", False), ("dynamic", True)):
                run = run_improve(args.model, db, work / f"adapter-{name}", GRPORecipe.cpu_tiny(
                    **{**overrides, "rare_defect": dynamic}))
                after = measure_sets(args.model, work / f"adapter-{name}", sets)
                result[name] = {**{k: before_after(before[k], after[k]) for k in sets}, **run}
                result[name]["delta"] = {k: delta(result[name][k]) for k in sets}
        result.update(seed=seed, recipe={k: getattr(recipe, k) for k in (
            "seed", "max_steps", "learning_rate", "beta", "lora_r", "replay_ratio") if hasattr(recipe, k)},
            bench_minutes=round((time.perf_counter() - t0) / 60, 2), cpu=cpu_name())
        print(json.dumps(result, indent=1 if args.json else None) if args.json else table(result))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
