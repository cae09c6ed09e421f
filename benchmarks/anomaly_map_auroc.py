"""How well the anomaly map separates good from defective images, per kind, on fresh synthetic sets.

    PYTHONPATH=. python benchmarks/anomaly_map_auroc.py --mode line --bank 16
    PYTHONPATH=. python benchmarks/anomaly_map_auroc.py --mode mixed --bank 7

For every product kind: a bank from `--bank` good images, then `--good` good and `--bad` defective
test images (the defect labels in turn), all generated in memory from a seed no training used. Prints
image AUROC and how often the hottest cell lies on the defect, for each feature and image score.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from lriad_desktop.core.anomaly_map.patch_map import BankBuilder, BankIdentity, image_score
from lriad_desktop.core.anomaly_map.registration import Registration, align_mask
from lriad_desktop.core.defect_kinds import DEFECT_LABELS
from lriad_desktop.core.backends.vision_features import VisionTower
from training.synthetic_data.samples import PRODUCT_KINDS, Sample, generate_line_sample, generate_sample

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


class ModelScores:
    """The MLLM's P(anomalous) of test samples, cached in a JSON file (generation is the slow part)."""

    def __init__(self, path: str, model: str, tag: str) -> None:
        self.path, self.model, self.tag = Path(path), model, tag
        self.cache = json.loads(self.path.read_text()) if self.path.is_file() else {}
        self.inspector = None

    def __call__(self, kind: str, part: str, samples: Sequence[Sample]) -> list[float | None]:
        keys = [f"{self.tag}/{kind}/{part}/{i}" for i in range(len(samples))]
        todo = [i for i, key in enumerate(keys) if key not in self.cache]
        if todo:
            if self.inspector is None:
                from lriad_desktop.core.backends.engine import Inspector

                self.inspector = Inspector(self.model, device="cpu").load()
            for start in range(0, len(todo), 8):
                chunk = todo[start:start + 8]
                found = self.inspector.inspect_batch([samples[i].image for i in chunk],
                                                     [samples[i].object_name for i in chunk])
                for i, finding in zip(chunk, found):
                    self.cache[keys[i]] = finding.anomaly_score
            self.path.write_text(json.dumps(self.cache))
        return [self.cache[key] for key in keys]


def fusion_figures(good_p: list, bad_p: list, good_m: list, bad_m: list) -> dict[str, float]:
    """AUROC of the model alone, the old mean rule, and a rule fitted (2-fold, out-of-fold scores) on the same images."""
    from lriad_desktop.core.anomaly_map.fusion import fit_fusion, map_probability

    p, m = list(good_p) + list(bad_p), list(good_m) + list(bad_m)
    y = [False] * len(good_p) + [True] * len(bad_p)
    n = len(y)
    fitted = [0.0] * n
    folds = [[i for i in range(n) if (i % 2) == f] for f in (0, 1)]
    rules = []
    for f in (0, 1):
        rule = fit_fusion([(p[i], m[i], y[i]) for i in folds[1 - f]])
        rules.append(rule)
        for i in folds[f]:
            fitted[i] = rule(p[i], m[i])
    g = len(good_p)
    mean = [float(np.mean([a, map_probability(b)])) for a, b in zip(p, m)]
    return {"model": auroc(p[:g], p[g:]), "mean": auroc(mean[:g], mean[g:]), "fitted": auroc(fitted[:g], fitted[g:]),
            "rule": rules[0].describe()}


def smoothed(grid, sigma: float):
    """A cell grid (torch) blurred by a Gaussian of `sigma` cells (0: as is)."""
    if not sigma:
        return grid
    import cv2
    import torch

    return torch.from_numpy(cv2.GaussianBlur(grid.numpy().astype(np.float32), (0, 0), sigmaX=sigma, sigmaY=sigma,
                                             borderType=cv2.BORDER_REPLICATE))


def fusion_from(args: argparse.Namespace) -> int:
    """The fusion tables of a `--dump` file with the MLLM answers cached in `--mllm` (kinds without them left out)."""
    dump = json.loads(Path(args.fusion_from).read_text())
    cache = json.loads(Path(args.mllm).read_text()) if args.mllm else {}
    tag = dump["tag"]
    for setting, kinds in dump["settings"].items():
        print(f"\n## {setting.replace('|', ', ')}: image AUROC of the map, the model and fusion rules; hottest cell hits")
        print("| kind | map = default fusion | model | mean rule (old) | map 0.8 + model 0.2 | max of the two | "
              "fitted, 2-fold | hottest cell on the defect |")
        print("|---|---|---|---|---|---|---|---|")
        rows, all_hits = [], []
        for kind, f in kinds.items():
            all_hits += f["hits"]
            keys = [f"{tag}/{kind}/good/{i}" for i in range(len(f["good"]))] + \
                   [f"{tag}/{kind}/bad/{i}" for i in range(len(f["bad"]))]
            if not all(k in cache and cache[k] is not None for k in keys):
                print(f"| {kind} | {auroc(f['good'], f['bad']):.3f} | (no cached answers) | | | | | "
                      f"{np.mean(f['hits']):.0%} |")
                continue
            p = [cache[k] for k in keys]
            g = len(f["good"])
            figures = fusion_figures(p[:g], p[g:], f["good"], f["bad"])
            from lriad_desktop.core.anomaly_map.fusion import FusionRule, map_probability

            weighted = [FusionRule(0.8, 0.2)(a, b) for a, b in zip(p, f["good"] + f["bad"])]
            top = [max(a, map_probability(b)) for a, b in zip(p, f["good"] + f["bad"])]
            row = {"map": auroc(f["good"], f["bad"]), "model": figures["model"], "mean": figures["mean"],
                   "w82": auroc(weighted[:g], weighted[g:]), "max": auroc(top[:g], top[g:]), "fitted": figures["fitted"],
                   "hits": float(np.mean(f["hits"]))}
            rows.append(row)
            print(f"| {kind} | " + " | ".join(f"{row[c]:.3f}" for c in ("map", "model", "mean", "w82", "max", "fitted"))
                  + f" | {row['hits']:.0%} |")
        if rows:
            for name, pick in (("mean", np.mean), ("min", np.min)):
                print(f"| {name} | " + " | ".join(f"{pick([r[c] for r in rows]):.3f}" for c in
                                                 ("map", "model", "mean", "w82", "max", "fitted", "hits")) + " |")
        print(f"hottest cell on the defect: {np.mean(all_hits):.0%} of {len(all_hits)} defective images")
    return 0


def kind_sets(args: argparse.Namespace, kind: str) -> tuple[list, list[Sample], list[Sample]]:
    """The bank's good images, the good test samples and the defective ones (every label in turn) of a kind."""
    bank = [make(args.mode, args.seed, kind, i, False, args.variant).image for i in range(args.bank)]
    good = [make(args.mode, args.seed + 1, kind, i, False, args.variant) for i in range(args.good)]
    bad = [make(args.mode, args.seed + 2, kind, i, DEFECT_LABELS[i % len(DEFECT_LABELS)], args.variant)
           for i in range(args.bad)]
    return bank, good, bad


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--mode", choices=("line", "mixed"), default="line")
    p.add_argument("--bank", type=int, default=16, help="good images in the bank per kind")
    p.add_argument("--good", type=int, default=8, help="good test images per kind")
    p.add_argument("--bad", type=int, default=14, help="defective test images per kind")
    p.add_argument("--features", default="merged,block:1", help="comma list of feature strings (FeatureSpec)")
    p.add_argument("--top-k", default="1,3")
    p.add_argument("--blur", default="0", help="comma list: Gaussian blur of the cell grid before the score, in cells")
    p.add_argument("--reach", default="none", help="comma list: none (anywhere) or a fraction of the image")
    p.add_argument("--kinds", default=",".join(PRODUCT_KINDS))
    p.add_argument("--seed", type=int, default=918_273)
    p.add_argument("--variant", type=int, default=0)
    p.add_argument("--model", default=DEFAULT_MODEL)
    p.add_argument("--no-align", action="store_true", help="no registration onto the first good image")
    p.add_argument("--quiet", action="store_true", help="only the summary line of each setting")
    p.add_argument("--dump", default=None, metavar="SCORES.json",
                   help="also write each setting's per-image map scores and hits (for --fusion-from)")
    p.add_argument("--fusion-from", default=None, metavar="SCORES.json",
                   help="no tower: the fusion tables from a --dump file and the --mllm cache (only cached answers)")
    p.add_argument("--mllm", default=None, metavar="CACHE.json",
                   help="also the model's own P(anomalous) (cached in this file) and the fusion's AUROC")
    args = p.parse_args(argv)
    features = args.features.split(",")
    top_ks = [int(k) for k in args.top_k.split(",")]
    blurs = [float(b) for b in args.blur.split(",")]
    reaches = [None if r == "none" else float(r) for r in args.reach.split(",")]
    if args.fusion_from:
        return fusion_from(args)
    tower = VisionTower.load(args.model)
    print(f"# {args.mode}, bank {args.bank}, test {args.good} good + {args.bad} defective per kind, seed {args.seed}; "
          f"model {tower.model_version}; CPU {cpu_name()}")
    if not args.quiet:
        print("| kind | feature | reach | score | image AUROC | hottest cell on the defect |")
        print("|---|---|---|---|---|---|")
    start = time.perf_counter()
    tag = f"{args.mode}/{args.seed}/{args.variant}/{args.good}/{args.bad}"
    scorer = ModelScores(args.mllm, args.model, tag) if args.mllm else None
    dumped: dict[str, dict] = {}
    fusion: dict[tuple[str, str, str], list[tuple[str, dict]]] = {}
    summary: dict[tuple[str, str, str], list[tuple[str, float, float]]] = {}
    for kind in args.kinds.split(","):
        bank_images, good, bad = kind_sets(args, kind)
        test_images, masks = [s.image for s in good + bad], [s.mask for s in bad]
        registration = None
        if not args.no_align:  # as build_bank and map_images do: every image onto the first good one
            registration = Registration.from_image(bank_images[0])
            bank_images = [registration.align(im)[0] for im in bank_images]
            pairs = [registration.align(im) for im in test_images]
            test_images = [a for a, _ in pairs]
            masks = [align_mask(m, w) for m, (_, w) in zip(masks, pairs[len(good):])]
        model_p = (scorer(kind, "good", good), scorer(kind, "bad", bad)) if scorer else None
        for feature in features:
            bank_cells = tower.features(bank_images, feature)
            test_cells = tower.features(test_images, feature)
            for reach in reaches:
                builder = BankBuilder(kind, BankIdentity.of(tower, feature), len(bank_cells), reach=reach,
                                      registration=registration)
                builder.add(bank_cells)
                bank = builder.finish()
                raw = [bank.cell_distances(c) for c in test_cells]  # once; each score below reduces them
                loo_raw = [d.reshape(builder.kept[i].rows, builder.kept[i].cols)
                           for i, d in zip(builder.order, builder.loo_distances)]
                for blur, k in [(b, k) for b in blurs for k in top_ks]:
                    grids, loo = [smoothed(g, blur) for g in raw], [smoothed(g, blur) for g in loo_raw]
                    bank.top_k = k
                    bank.good_scores = tuple(image_score(d, k) for d in loo)
                    scores = [float(bank.normalise(image_score(g, k))) for g in grids]
                    value = auroc(scores[:len(good)], scores[len(good):])
                    hits = float(np.mean([hottest_on_defect(g.numpy(), m) for g, m in zip(grids[len(good):], masks)]))
                    score = ("max" if k == 1 else f"top-{k} mean") + (f", blur {blur:g}" if blur else "")
                    summary.setdefault((feature, str(reach or "anywhere"), score), []).append((kind, value, hits))
                    dumped.setdefault(f"{feature}|{reach or 'anywhere'}|{score}", {})[kind] = {
                        "good": scores[:len(good)], "bad": scores[len(good):],
                        "hits": [hottest_on_defect(g.numpy(), m) for g, m in zip(grids[len(good):], masks)]}
                    if args.dump:
                        Path(args.dump).write_text(json.dumps({"tag": tag, "settings": dumped}))
                    if model_p is not None:
                        figures = fusion_figures(*model_p, scores[:len(good)], scores[len(good):])
                        fusion.setdefault((feature, str(reach or "anywhere"), score), []).append(
                            (kind, {"map": value, "hits": hits, **figures}))
                    if not args.quiet:
                        print(f"| {kind} | {feature} | {reach or 'anywhere'} | {score} | {value:.3f} | {hits:.0%} |",
                              flush=True)
    print()
    for (feature, reach, k), rows in summary.items():
        values, hits = [v for _, v, _ in rows], [h for _, _, h in rows]
        worst = min(rows, key=lambda r: r[1])
        print(f"# {feature:<18} reach {reach:<8} {k:<18} AUROC mean {np.mean(values):.3f} "
              f"min {worst[1]:.3f} ({worst[0]}); hottest cell on the defect {np.mean(hits):.0%} "
              f"(min {min(hits):.0%})", flush=True)
    for (feature, reach, k), rows in fusion.items():
        print(f"\n## {feature}, reach {reach}, {k}: map, model and fusion image AUROC")
        print("| kind | map (= default fusion) | model | mean rule (old) | fitted rule, 2-fold | hottest cell on "
              "the defect | fitted on one fold |")
        print("|---|---|---|---|---|---|---|")
        for kind, f in rows:
            print(f"| {kind} | {f['map']:.3f} | {f['model']:.3f} | {f['mean']:.3f} | {f['fitted']:.3f} | "
                  f"{f['hits']:.0%} | {f['rule']} |")
        cols = ("map", "model", "mean", "fitted", "hits")
        print("| mean | " + " | ".join(f"{np.mean([f[c] for _, f in rows]):.3f}" for c in cols) + " | |")
        print("| min | " + " | ".join(f"{min(f[c] for _, f in rows):.3f}" for c in cols) + " | |")
    print(f"# {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
