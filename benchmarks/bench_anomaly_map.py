"""Cost of the anomaly map, in one run: ms/image for the map (tower pass + nearest-neighbour search)
beside the model's generation ms/image, and bank build time and memory for 20, 200 and 2,000 good images.

    PYTHONPATH=. python benchmarks/bench_anomaly_map.py [--model DIR] [--feature merged] [--threads 2]
    PYTHONPATH=. python benchmarks/bench_anomaly_map.py --feature cnn --sizes 20,200   # the shipped ImageNet CNN

The good images are 224 x 224 crops (random offsets and flips) of a few synthetic images, so that
2,000 of them are distinct without rendering 2,000 products.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> int:
    import numpy as np
    import torch
    from PIL import Image

    from benchmarks.anomaly_map_auroc import cpu_name
    from lriad_desktop.core.anomaly_map.patch_map import DEFAULT_MAX_BANK, build_bank
    from lriad_desktop.core.backends.engine import Inspector
    from lriad_desktop.core.paths import bundled_model_dir
    from lriad_desktop.core.anomaly_map.cnn_features import MAP_MAX_BANK, CnnFeatures
    from lriad_desktop.core.anomaly_map.features import feature_string, needs_model
    from lriad_desktop.core.backends.vision_features import VisionTower
    from training.synthetic_data.samples import generate_line_sample

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=bundled_model_dir())
    p.add_argument("--feature", default=None, help="a feature string, 'cnn' (the shipped CNN's default) or 'tower' "
                                                   "(default: the tower's default_feature)")
    p.add_argument("--skip-generation", action="store_true", help="don't time the model's own answer")
    p.add_argument("--sizes", default="20,200,2000", help="good images per bank")
    p.add_argument("--max-bank", type=int, default=0, help="features kept after the coreset (default: the source's, "
                                                          f"the CNN {MAP_MAX_BANK}, a tower {DEFAULT_MAX_BANK})")
    p.add_argument("--n", type=int, default=10, help="images timed for the map and for generation")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    run_start = time.perf_counter()
    sizes = [int(s) for s in args.sizes.split(",")]
    rng = np.random.default_rng(4242)
    base = [generate_line_sample(np.random.default_rng([31, i]), "pcb").image.resize((320, 320)) for i in range(24)]

    def crop(i: int):
        x, y = (int(v) for v in rng.integers(0, 96, 2))
        image = base[i % len(base)].crop((x, y, x + 224, y + 224))
        return image.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if rng.random() < 0.5 else image

    good = [crop(i) for i in range(max(sizes))]
    queries = [crop(10_000 + i) for i in range(args.n)]
    print(f"# CPU {cpu_name()}, {args.threads} threads; model {args.model.name}; "
          f"coreset above {args.max_bank or 'the source default'} features; load average {os.getloadavg()[0]:.1f}")
    t = time.perf_counter()
    if args.feature and not needs_model(args.feature):
        tower = CnnFeatures()
        args.feature = feature_string(args.feature, tower)
    else:
        tower = VisionTower.load(args.model)
        args.feature = tower.default_feature if args.feature in (None, "tower") else args.feature
    print(f"feature source load: {time.perf_counter() - t:.2f} s; feature {args.feature}")
    def build(n: int) -> None:
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t = time.perf_counter()
        bank = build_bank(tower, "pcb", good[:n], args.feature, max_bank=args.max_bank or None)
        seconds = time.perf_counter() - t
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t_ = bank.build_timings
        print(f"bank of {n:>5} good images: build {seconds:7.2f} s ({seconds / n * 1000:.1f} ms/image; coreset "
              f"{t_.get('coreset_s', 0):.1f} s of {int(t_.get('candidates', 0))} sampled rows, radius "
              f"{bank.coreset_radius:.2f}; leave-one-out {t_.get('leave_one_out_s', 0):.1f} s of "
              f"{len(bank.good_scores)} images), {bank.size} features x {bank.features.shape[1]} "
              f"({bank.features.numel() * 4 / 1e6:.1f} MB), peak RSS {rss / 1024:.0f} MB (+{(rss - rss0) / 1024:.0f})",
              flush=True)
        tower_ms, search_ms = [], []
        for image in queries:
            t = time.perf_counter()
            (cells,) = tower.features([image], args.feature)
            t1 = time.perf_counter()
            bank.anomaly_map(cells)
            t2 = time.perf_counter()
            tower_ms.append((t1 - t) * 1000)
            search_ms.append((t2 - t1) * 1000)
        print(f"  map against it: {statistics.median(tower_ms) + statistics.median(search_ms):.1f} ms/image "
              f"(tower {statistics.median(tower_ms):.1f} + search and map {statistics.median(search_ms):.1f})",
              flush=True)

    tower.features(queries[:1], args.feature)  # warm-up
    for n in sizes if args.skip_generation else ():
        build(n)
    if args.skip_generation:
        print(f"# whole run {time.perf_counter() - run_start:.0f} s; load average {os.getloadavg()[0]:.1f}")
        return 0
    inspector = Inspector(args.model, device="cpu").load()
    inspector.inspect(queries[0], "circuit board")  # warm-up
    gen_ms = []
    for image in queries:
        t = time.perf_counter()
        inspector.inspect(image, "circuit board")
        gen_ms.append((time.perf_counter() - t) * 1000)
    print(f"generation (the model's answer, batch 1): {statistics.median(gen_ms):.1f} ms/image", flush=True)
    inspector.close()
    for n in sizes:
        build(n)
    print(f"# whole run {time.perf_counter() - run_start:.0f} s; load average {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
