"""Two more real image sets for `bench_real_photos.py`, in the MVTec-AD layout, from clones of public repositories
(the images never go into this project): greyscale surface defects, as the held-out categories are.

    git clone https://github.com/abin24/Magnetic-tile-defect-datasets. mtd-src
    git clone https://github.com/stoy95536/KolektorSDD_Yolov8_Datasets ksdd-src
    python benchmarks/make_real_sets.py --mtd mtd-src --kolektor ksdd-src --out ~/realsets_extra
    PYTHONPATH=. python benchmarks/bench_real_photos.py ~/realsets_extra/kolektor --shots 1,4,16,64

- `mtd/magnetic_tile`: the Magnetic Tile Defect set (Huang, Qiu and Yuan, "Surface defect saliency of magnetic
  tile", The Visual Computer 2020; the authors welcome its use with a citation, no licence file): train/good 100 and
  test/good 40 from `MT_Free`, 8 of each of the five defects (blowhole, break, crack, fray, uneven) with their masks.
- `kolektor/commutator`: KolektorSDD (Tabernik et al., "Segmentation-based deep-learning approach for surface-defect
  detection", J. Intell. Manuf. 2019; CC BY-NC-SA 4.0) as the YOLO copy holds it: images without a defect polygon
  are good (train 100, test 40), 40 of the 52 cracked images with masks drawn from the polygons.

Seeded (0) shuffles; no image is in two folders.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
from pathlib import Path

from PIL import Image, ImageDraw

DEFECTS = ("Blowhole", "Break", "Crack", "Fray", "Uneven")


def make_mtd(source: Path, out: Path) -> int:
    rng = random.Random(0)
    root = out / "mtd" / "magnetic_tile"
    free = sorted((source / "MT_Free" / "Imgs").glob("*.jpg"))
    rng.shuffle(free)
    for folder, part in (("train/good", free[:100]), ("test/good", free[100:140])):
        (root / folder).mkdir(parents=True, exist_ok=True)
        for image in part:
            shutil.copyfile(image, root / folder / image.name)
    count = 140
    for kind in DEFECTS:
        images = sorted((source / f"MT_{kind}" / "Imgs").glob("*.jpg"))
        rng.shuffle(images)
        name = kind.lower()
        (root / "test" / name).mkdir(parents=True, exist_ok=True)
        (root / "ground_truth" / name).mkdir(parents=True, exist_ok=True)
        for image in images[:8]:
            shutil.copyfile(image, root / "test" / name / image.name)
            with Image.open(image.with_suffix(".png")) as mask:
                binary = mask.convert("L").point(lambda v: 255 if v > 127 else 0)
            binary.save(root / "ground_truth" / name / f"{image.stem}_mask.png")
            count += 1
    return count


def make_kolektor(source: Path, out: Path) -> int:
    rng = random.Random(0)
    root = out / "kolektor" / "commutator"
    good, cracked = [], []
    for image in sorted((source / "Datasets" / "images").glob("*/*.jpg")):
        label = source / "Datasets" / "labels" / image.parent.name / f"{image.stem}.txt"
        text = label.read_text() if label.is_file() else ""
        (cracked if text.strip() else good).append((image, text))
    rng.shuffle(good)
    rng.shuffle(cracked)

    def name(image: Path) -> str:
        return f"{image.parent.name}_{image.name}"

    for folder, part in (("train/good", good[:100]), ("test/good", good[100:140])):
        (root / folder).mkdir(parents=True, exist_ok=True)
        for image, _ in part:
            shutil.copyfile(image, root / folder / name(image))
    (root / "test" / "crack").mkdir(parents=True, exist_ok=True)
    (root / "ground_truth" / "crack").mkdir(parents=True, exist_ok=True)
    for image, text in cracked[:40]:
        shutil.copyfile(image, root / "test" / "crack" / name(image))
        with Image.open(image) as im:
            w, h = im.size
        mask = Image.new("L", (w, h), 0)
        draw = ImageDraw.Draw(mask)
        for line in text.strip().splitlines():
            v = [float(x) for x in line.split()[1:]]  # class, then x y pairs as fractions of the image
            draw.polygon([(v[i] * w, v[i + 1] * h) for i in range(0, len(v) - 1, 2)], fill=255)
        mask.save(root / "ground_truth" / "crack" / f"{Path(name(image)).stem}_mask.png")
    return 140 + min(40, len(cracked))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mtd", type=Path, help="a clone of abin24/Magnetic-tile-defect-datasets.")
    p.add_argument("--kolektor", type=Path, help="a clone of stoy95536/KolektorSDD_Yolov8_Datasets")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    if args.mtd:
        print(f"mtd/magnetic_tile: {make_mtd(args.mtd, args.out)} images")
    if args.kolektor:
        print(f"kolektor/commutator: {make_kolektor(args.kolektor, args.out)} images")
    return 0


if __name__ == "__main__":
    sys.exit(main())
