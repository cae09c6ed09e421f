"""How well the anomaly map separates good from defective images, per kind, on fresh synthetic sets.

    PYTHONPATH=. python benchmarks/anomaly_map_auroc.py --mode line --bank 16
    PYTHONPATH=. python benchmarks/anomaly_map_auroc.py --mode mixed --bank 7

For every product kind: a bank from `--bank` good images, then `--good` good and `--bad` defective
test images (the defect labels in turn), all generated in memory from a seed no training used. Prints
image AUROC and how often the hottest cell lies on the defect, for each feature and image score.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import time
from typing import Sequence

import numpy as np

from lriad_desktop.core.anomaly_map import BankIdentity, bank_from_features
from lriad_desktop.core.defect_kinds import DEFECT_LABELS
from lriad_desktop.core.vision_features import VisionTower
from training.synthetic import PRODUCT_KINDS, Sample, generate_line_sample, generate_sample

DEFAULT_MODEL = "resources/models/lriad-tiny"


def auroc(good: Sequence[float], bad: Sequence[float]) -> float:
    """Area under the ROC curve: the chance a defective image scores above a good one (ties count half)."""
    g, b = np.asarray(good, float), np.asarray(bad, float)
    wins = (b[:, None] > g[None, :]).sum() + 0.5 * (b[:, None] == g[None, :]).sum()
    return float(wins / (len(g) * len(b)))


def cpu_name() -> str:
    """The CPU model as lscpu prints it."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, subprocess.CalledProcessError, StopIteration):
        return platform.processor() or "unknown CPU"


def make(mode: str, seed: int, kind: str, index: int, defect: str | bool, variant: int) -> Sample:
    rng = np.random.default_rng([seed, list(PRODUCT_KINDS).index(kind), index])
    if mode == "line":
        return generate_line_sample(rng, kind, defect, variant)
    return generate_sample(rng, kind, defect)


def hottest_on_defect(cells: np.ndarray, mask: np.ndarray) -> bool:
    """True when the hottest cell's area (in original pixels) holds a defect pixel."""
    rows, cols = cells.shape
    r, c = np.unravel_index(int(np.argmax(cells)), cells.shape)
    h, w = mask.shape
    y1, y2 = int(r * h / rows), int(np.ceil((r + 1) * h / rows))
    x1, x2 = int(c * w / cols), int(np.ceil((c + 1) * w / cols))
    return bool(mask[y1:y2, x1:x2].any())


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--mode", choices=("line", "mixed"), default="line")
    p.add_argument("--bank", type=int, default=16, help="good images in the bank per kind")
    p.add_argument("--good", type=int, default=8, help="good test images per kind")
    p.add_argument("--bad", type=int, default=14, help="defective test images per kind")
    p.add_argument("--features", default="merged,block:1,block:2")
    p.add_argument("--top-k", default="1,3")
    p.add_argument("--reach", default="none", help="comma list: none (anywhere) or a fraction of the image")
    p.add_argument("--kinds", default=",".join(PRODUCT_KINDS))
    p.add_argument("--seed", type=int, default=918_273)
    p.add_argument("--variant", type=int, default=0)
    p.add_argument("--model", default=DEFAULT_MODEL)
    args = p.parse_args(argv)
    features = args.features.split(",")
    top_ks = [int(k) for k in args.top_k.split(",")]
    reaches = [None if r == "none" else float(r) for r in args.reach.split(",")]
    tower = VisionTower.load(args.model)
    print(f"# {args.mode}, bank {args.bank}, test {args.good} good + {args.bad} defective per kind, seed {args.seed}; "
          f"model {tower.model_version}; CPU {cpu_name()}")
    print("| kind | feature | reach | score | image AUROC | hottest cell on the defect |")
    print("|---|---|---|---|---|---|")
    start = time.perf_counter()
    summary: dict[tuple[str, str, int], list[float]] = {}
    for kind in args.kinds.split(","):
        bank_images = [make(args.mode, args.seed, kind, i, False, args.variant).image for i in range(args.bank)]
        good = [make(args.mode, args.seed + 1, kind, i, False, args.variant) for i in range(args.good)]
        bad = [make(args.mode, args.seed + 2, kind, i, DEFECT_LABELS[i % len(DEFECT_LABELS)], args.variant)
               for i in range(args.bad)]
        for feature in features:
            bank_cells = tower.features(bank_images, feature)
            test_cells = tower.features([s.image for s in good + bad], feature)
            for reach in reaches:
                for k in top_ks:
                    bank = bank_from_features(kind, BankIdentity.of(tower, feature), bank_cells, top_k=k, reach=reach)
                    maps = [bank.anomaly_map(c) for c in test_cells]
                    scores = [m.score for m in maps]
                    value = auroc(scores[:len(good)], scores[len(good):])
                    hits = np.mean([hottest_on_defect(m.cells, s.mask) for m, s in zip(maps[len(good):], bad)])
                    score = "max" if k == 1 else f"top-{k} mean"
                    summary.setdefault((feature, str(reach or "anywhere"), k), []).append(value)
                    print(f"| {kind} | {feature} | {reach or 'anywhere'} | {score} | {value:.3f} | {hits:.0%} |",
                          flush=True)
    print()
    for (feature, reach, k), values in summary.items():
        print(f"# mean AUROC {feature}, reach {reach}, {'max' if k == 1 else f'top-{k}'}: {np.mean(values):.3f} "
              f"(min {min(values):.3f})")
    print(f"# {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
