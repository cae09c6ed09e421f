"""The anomaly map on real photos: image AUROC, pixel AUROC (where masks exist), ms/image and bank build
seconds, for K good images in the bank, for each feature, in one run, on any MVTec-layout folder.

    PYTHONPATH=. python benchmarks/bench_real_photos.py ../shared/realsets/bsdata --shots 1,4,16,64
    PYTHONPATH=. python benchmarks/bench_real_photos.py SET --features tower,cnn:efficientnet_lite0@320 --top-k 3

`tower` is the bundled model's tower feature (`block:0+1@448`), any other `block:...` string a tower feature,
`cnn:...` the shipped CNN (`core.anomaly_map.cnn_features`). The K good images are the first K of a seeded shuffle of
`train/good` (nested: K=4 holds K=1's image). Test images: all of `test/` (`--limit` spreads fewer evenly).
At K = 1 there is no leave-one-out normalisation; AUROCs don't depend on it (scores are raw there).
`--augment` adds each good image's flips and 90-degree turns to the bank (as images of their own).
ms/image: one test image at a time (features + nearest neighbours + heat map), median of `--timed` images.
`--normalisation`: for each K of `--shots` (at least 2), `--draws` seeded draws of K good images; each bank's
leave-one-out normalisation decides at the app's fixed midpoint (`MAP_MIDPOINT` good-image spreads): the share
of good test images called defective (false alarms) and of defective ones found, mean and range over the draws.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

AUGMENTS = ("FLIP_LEFT_RIGHT", "FLIP_TOP_BOTTOM", "ROTATE_180", "TRANSPOSE", "ROTATE_90", "ROTATE_270",
            "TRANSVERSE")


def categories(root: Path) -> list[Path]:
    """The MVTec-layout category folders under `root` (itself, when it is one)."""
    if (root / "train" / "good").is_dir():
        return [root]
    return sorted(p for p in root.iterdir() if (p / "train" / "good").is_dir())


def test_items(cat: Path) -> list[tuple[Path, bool, Path | None]]:
    """(image, defective, mask or None) for every test image of a category."""
    from lriad_desktop.core.inspection.images import is_image_file

    out = []
    for folder in sorted(p for p in (cat / "test").iterdir() if p.is_dir()):
        for image in sorted(p for p in folder.iterdir() if is_image_file(p)):
            mask = cat / "ground_truth" / folder.name / f"{image.stem}_mask.png"
            out.append((image, folder.name != "good", mask if mask.is_file() else None))
    return out


def source_for(name: str, cache: dict):
    """The feature source (tower or CNN) and the feature string a `--features` entry names."""
    from lriad_desktop.core.anomaly_map.cnn_features import is_cnn_feature, parse_cnn_feature, shared_cnn

    if is_cnn_feature(name):
        return shared_cnn(), str(parse_cnn_feature(name))
    if "tower" not in cache:
        from lriad_desktop.core.paths import bundled_model_dir
        from lriad_desktop.core.backends.vision_features import VisionTower

        cache["tower"] = VisionTower.load(bundled_model_dir())
    tower = cache["tower"]
    return tower, (tower.default_feature if name == "tower" else name)


def augmented(image):
    from PIL import Image

    return [image.transpose(getattr(Image.Transpose, t)) for t in AUGMENTS]


def run_category(cat: Path, name: str, args, cache: dict) -> list[dict]:
    import numpy as np

    from lriad_desktop.core.anomaly_map.patch_map import (BankIdentity, MemoryBank, aligns, bank_from_features, bank_scheme,
                                                          pixel_auroc, reads_places)
    from lriad_desktop.core.inspection.images import is_image_file, load_image
    from lriad_desktop.core.anomaly_map.registration import Registration
    from lriad_desktop.core.evaluation.score_curves import auroc

    source, feature = source_for(name, cache)
    identity = BankIdentity.of(source, feature)
    scheme = bank_scheme(source)  # the source's own bank size and image score unless given
    args = argparse.Namespace(**{**vars(args), "max_bank": args.max_bank or scheme[0],
                                 "top_k": args.top_k or scheme[1],
                                 "align": aligns(source) if args.align == "source" else args.align == "on",
                                 "by_place": reads_places(source) if args.by_place == "source" else args.by_place == "on"})
    goods = sorted(p for p in (cat / "train" / "good").iterdir() if is_image_file(p))
    order = np.random.default_rng(args.seed).permutation(len(goods))
    items = test_items(cat)
    if args.limit and args.limit < len(items):
        items = [items[int(i * len(items) / args.limit)] for i in range(args.limit)]
    shots = [k for k in args.shots if k <= len(goods)]
    wanted = len(goods) if args.normalisation else max(shots)
    good_images = [load_image(goods[i]).image for i in order[:wanted]]
    registration = Registration.from_image(good_images[0]) if args.align else None

    def prepared(image):
        return registration.align(image) if registration is not None else (image, None)

    t0 = time.perf_counter()
    good_cells = []
    for image in good_images:
        image = prepared(image)[0]
        cells = source.features([image] + (augmented(image) if args.augment else []), feature)
        good_cells.append(cells)
    feature_s = (time.perf_counter() - t0) / len(good_images)
    tests = []
    for path, bad, mask_path in items:
        image, warp = prepared(load_image(path).image)
        (cells,) = source.features([image], feature)
        mask = None
        if mask_path is not None or not bad:
            from PIL import Image

            mask = np.zeros(image.size[::-1], bool) if not bad else (
                np.asarray(Image.open(mask_path).convert("L").resize(image.size, Image.Resampling.NEAREST)) > 0)
        tests.append((cells, warp, bad, mask))
    if args.normalisation:
        return normalisation_rows(cat.name, feature, identity, registration, good_cells, tests, shots, args)
    rows = []
    for k in shots:
        t = time.perf_counter()
        flat = [c for group in good_cells[:k] for c in group]
        if k >= 2 and not args.augment:
            bank = bank_from_features(cat.name, identity, flat, max_bank=args.max_bank, top_k=args.top_k,
                                      registration=registration, by_place=args.by_place)
        else:  # one image, or augmented copies: no leave-one-out normalisation (AUROCs don't need it)
            import torch

            from lriad_desktop.core.anomaly_map.patch_map import coreset

            feats = torch.cat([c.values for c in flat])
            if len(feats) > args.max_bank:
                feats = feats[coreset(feats, args.max_bank).indices].contiguous()
            bank = MemoryBank(cat.name, identity, feats, [0.0], k, args.top_k, registration=registration)
        build_s = time.perf_counter() - t + feature_s * k * (len(AUGMENTS) + 1 if args.augment else 1)
        scores, truth, heats, masks = [], [], [], []
        for cells, warp, bad, mask in tests:
            amap = bank.anomaly_map(cells, warp=warp)
            scores.append(amap.raw_score)
            truth.append(bad)
            if mask is not None:
                heats.append(amap.heat)
                masks.append(mask)
        pixel = pixel_auroc(heats, masks) if len(masks) == len(tests) else None
        how = f"top {args.top_k}{', place' if bank.places is not None else ''}{', aligned' if registration else ''}"
        rows.append({"category": cat.name, "feature": f"{feature} ({how})", "k": k, "image_auroc": auroc(scores, truth),
                     "pixel_auroc": pixel, "build_s": build_s, "bank": bank.size})
    # batch-1 cost against the largest bank: features of one image + its map
    times = []
    for path, _bad, _mask in items[:args.timed]:
        image = load_image(path).image
        t = time.perf_counter()
        image, warp = prepared(image)
        (cells,) = source.features([image], feature)
        bank.anomaly_map(cells, warp=warp)
        times.append((time.perf_counter() - t) * 1000)
    for row in rows:
        row["ms"] = statistics.median(times) if times else float("nan")
    return rows


def normalisation_rows(name: str, feature: str, identity, registration, good_cells, tests, shots, args) -> list[dict]:
    """False-alarm and found rates at the app's fixed decision point, for seeded draws of K good images."""
    import numpy as np

    from lriad_desktop.core.anomaly_map.patch_map import bank_from_features
    from lriad_desktop.core.anomaly_map.fusion import MAP_MIDPOINT

    rows = []
    for k in [k for k in shots if k >= 2]:
        alarms, found, spreads = [], [], []
        for draw in range(args.draws):
            pick = np.random.default_rng([args.seed, k, draw]).choice(len(good_cells), k, replace=False)
            bank = bank_from_features(name, identity, [good_cells[i][0] for i in pick], max_bank=args.max_bank,
                                      top_k=args.top_k, registration=registration, by_place=args.by_place)
            scores = [bank.anomaly_map(cells, warp=warp).score for cells, warp, _bad, _mask in tests]
            good = [s for s, (_c, _w, bad, _m) in zip(scores, tests) if not bad]
            bad = [s for s, (_c, _w, b, _m) in zip(scores, tests) if b]
            alarms.append(float(np.mean(np.asarray(good) >= MAP_MIDPOINT)))
            found.append(float(np.mean(np.asarray(bad) >= MAP_MIDPOINT)))
            spreads.append(float(np.median(good)))
        rows.append({"category": name, "feature": feature, "k": k, "alarms": alarms, "found": found,
                     "good_median": spreads})
    return rows


def print_normalisation(rows: list[dict]) -> None:
    for r in rows:
        a, f, g = r["alarms"], r["found"], r["good_median"]
        print(f"{r['category']:<12} {r['feature']:<52} {r['k']:>3} false alarms {sum(a) / len(a):6.1%} "
              f"({min(a):.0%}-{max(a):.0%})  found {sum(f) / len(f):6.1%} ({min(f):.0%}-{max(f):.0%})  "
              f"good test median {sum(g) / len(g):5.2f} ({min(g):.2f} to {max(g):.2f})  [{len(a)} draws]", flush=True)


def main() -> int:
    import torch

    from benchmarks.anomaly_map_auroc import cpu_name
    from lriad_desktop.core.anomaly_map.cnn_features import CNN_FEATURE

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dataset", type=Path, help="an MVTec-layout folder (a category, or a folder of categories)")
    p.add_argument("--shots", default="1,4,16,64", help="good images in the bank, comma-separated")
    p.add_argument("--features", default=f"tower,{CNN_FEATURE}", help="comma-separated feature strings")
    p.add_argument("--max-bank", type=int, default=0, help="features kept after the coreset (default: the source's)")
    p.add_argument("--top-k", type=int, default=0,
                   help="image score: the mean of the k hottest cells (default: the source's; the CNN 300, a tower 3)")
    p.add_argument("--align", choices=("source", "on", "off"), default="source",
                   help="registration onto the first good image (source: as the feature source does; a tower on, the CNN off)")
    p.add_argument("--by-place", choices=("source", "on", "off"), default="source",
                   help="read each cell against its place on good parts (core.anomaly_map.place_spread; source: the CNN on)")
    p.add_argument("--augment", action="store_true", help="flips and 90-degree turns of each good image in the bank")
    p.add_argument("--limit", type=int, default=0, help="at most N test images per category (spread evenly)")
    p.add_argument("--timed", type=int, default=8, help="test images timed one by one")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--normalisation", action="store_true", help="the fixed decision point's rates at each K")
    p.add_argument("--draws", type=int, default=5, help="seeded draws of K good images (--normalisation)")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    args.shots = [int(k) for k in args.shots.split(",")]
    torch.set_num_threads(args.threads)
    print(f"# {args.dataset} · CPU {cpu_name()}, {args.threads} threads · load average {os.getloadavg()[0]:.1f} · "
          f"top-{args.top_k or 'default'} · align {args.align} · by place {args.by_place}"
          f"{' · augmented' if args.augment else ''}")
    print(f"{'category':<12} {'feature (scheme)':<52} {'K':>3} {'image AUROC':>11} {'pixel AUROC':>11} {'ms/image':>9} "
          f"{'build s':>8} {'bank':>6}", flush=True)
    cache: dict = {}
    for cat in categories(args.dataset):
        for name in args.features.split(","):
            if args.normalisation:
                print_normalisation(run_category(cat, name.strip(), args, cache))
                continue
            for r in run_category(cat, name.strip(), args, cache):
                pixel = "—" if r["pixel_auroc"] is None else f"{r['pixel_auroc']:.3f}"
                print(f"{r['category']:<12} {r['feature']:<52} {r['k']:>3} {r['image_auroc']:>11.3f} {pixel:>11} "
                      f"{r['ms']:>9.1f} {r['build_s']:>8.2f} {r['bank']:>6}", flush=True)
    print(f"# load average {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
