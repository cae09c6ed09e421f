""""Improve model" on the CPU: does GRPO on a few flagged images fix a defect type the model
handles badly, without losing the others? Plus the ablation uniform vs dynamic rare-defect reward.

    python benchmarks/bench_improve.py [--model DIR] [--target hole] [--flags 16] [--steps 150]
    python benchmarks/bench_improve.py --ablation [--common scratch --rare hole --ratio 20:2]

Prints accuracy and mean IoU on the flagged type and on the other types before and after,
s/step and total minutes; with --ablation, the rare class's gain under each reward.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from lriad_desktop.core.datasets import LabelledImage  # noqa: E402
from lriad_desktop.core.engine import Inspector  # noqa: E402
from lriad_desktop.core.evaluation import score  # noqa: E402
from lriad_desktop.core.finding import Box, Defect, Verdict  # noqa: E402
from lriad_desktop.core.paths import bundled_model_dir  # noqa: E402
from lriad_desktop.core.review import Review, ReviewKind  # noqa: E402
from lriad_desktop.core.store import ReviewStore  # noqa: E402
from lriad_desktop.core.train_protocol import Step  # noqa: E402
from training.grpo import GRPORecipe  # noqa: E402
from training.improve import improve  # noqa: E402
from training.synthetic import DEFECT_LABELS, generate_sample  # noqa: E402


def samples(seed: int, n: int, label: str | bool):
    return [generate_sample(np.random.default_rng([seed, i]), defect=label) for i in range(n)]


def flag_store(folder: Path, flagged: list, good: list) -> Path:
    """A review store where the inspector flagged `flagged` (truth) and accepted `good`."""
    folder.mkdir(parents=True, exist_ok=True)
    store = ReviewStore.open(folder / "reviews.sqlite3")
    for i, s in enumerate(flagged + good):
        path = folder / f"{i:04d}.png"
        s.image.save(path)
        img = store.add_image(path, s.object_name)
        if s.defects:
            review = Review(ReviewKind.FLAG, Verdict.ANOMALOUS,
                            tuple(Defect(d.label, Box(*map(float, d.box))) for d in s.defects))
        else:
            review = Review(ReviewKind.ACCEPT, Verdict.NORMAL)
        store.save_review(img.id, review)
    path = store.path
    store.close()
    return path


def measure(model: Path, adapter: Path | None, test: list) -> dict:
    insp = Inspector(model, adapter, device="cpu", max_new_tokens=128)
    findings = []
    for i in range(0, len(test), 16):
        chunk = test[i:i + 16]
        findings += insp.inspect_batch([s.image for s in chunk], [s.object_name for s in chunk])
    pairs = [(LabelledImage(Path("x"), s.kind, s.defects[0].label if s.defects else "good",
                            tuple(Box(*map(float, d.box)) for d in s.defects), bool(s.defects)), f)
             for s, f in zip(test, findings)]
    sc = score(pairs)
    return {"accuracy": round(sc.accuracy, 3), "mean_iou": round(sc.mean_iou or 0.0, 3),
            "label_accuracy": round(sc.label_accuracy or 0.0, 3), "n": sc.n}


def run_improve(model: Path, db: Path, out: Path, recipe: GRPORecipe) -> dict:
    events = []
    t0 = time.perf_counter()
    code = improve(db, model, out, recipe=recipe, emit=events.append)
    steps = [e for e in events if isinstance(e, Step)]
    if code != 0:
        raise SystemExit(f"improve failed: {events[-1]}")
    return {"minutes": round((time.perf_counter() - t0) / 60, 2),
            "s_per_step": steps[-1].s_per_step if steps else None, "steps": len(steps)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=bundled_model_dir())
    p.add_argument("--target", default="hole", choices=DEFECT_LABELS)
    p.add_argument("--flags", type=int, default=16)
    p.add_argument("--steps", type=int, default=GRPORecipe.max_steps)
    p.add_argument("--test", type=int, default=24, help="test images per group")
    p.add_argument("--lr", type=float, default=GRPORecipe.learning_rate, help="GRPO learning rate (LoRA)")
    p.add_argument("--ablation", action="store_true")
    p.add_argument("--common", default="scratch")
    p.add_argument("--rare", default="hole")
    p.add_argument("--ratio", default="20:2")
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-improve-"))
    recipe = GRPORecipe.cpu_tiny(max_steps=args.steps, learning_rate=args.lr)
    try:
        if not args.ablation:
            flagged = samples(101, args.flags, args.target)
            good = samples(102, args.flags // 2, False)
            test_target = samples(201, args.test, args.target)
            others = [lab for lab in DEFECT_LABELS if lab != args.target]
            test_other = [generate_sample(np.random.default_rng([202, i]), defect=others[i % len(others)])
                          for i in range(args.test)] + samples(203, args.test, False)
            before = {"target": measure(args.model, None, test_target), "other": measure(args.model, None, test_other)}
            db = flag_store(work / "store", flagged, good)
            run = run_improve(args.model, db, work / "adapter", recipe)
            after = {"target": measure(args.model, work / "adapter", test_target),
                     "other": measure(args.model, work / "adapter", test_other)}
            result = {"target": args.target, "flags": args.flags, "before": before, "after": after, **run}
        else:
            n_common, n_rare = (int(v) for v in args.ratio.split(":"))
            flagged = samples(111, n_common, args.common) + samples(112, n_rare, args.rare)
            good = samples(113, (n_common + n_rare) // 2, False)
            test_rare = samples(211, args.test, args.rare)
            before = measure(args.model, None, test_rare)
            db = flag_store(work / "store", flagged, good)
            result = {"rare": args.rare, "ratio": args.ratio, "rare_before": before}
            for name, dynamic in (("uniform", False), ("dynamic", True)):
                run = run_improve(args.model, db, work / f"adapter-{name}", GRPORecipe.cpu_tiny(
                    max_steps=args.steps, learning_rate=args.lr, rare_defect=dynamic))
                after = measure(args.model, work / f"adapter-{name}", test_rare)
                result[name] = {"rare_after": after, "accuracy_gain": round(after["accuracy"] - before["accuracy"], 3),
                                **run}
        print(json.dumps(result, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
