"""Synthetic inspection data: procedural products with painted defects, and an MVTec-AD writer.

Used to train the bundled tiny model, to build evaluation sets in the MVTec-AD layout, and
for a cold start on a user's folder of good images (defects painted onto real photos).
Everything is deterministic for a given seed / ``numpy.random.Generator``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np
from PIL import Image

from lriad_desktop.core.defect_kinds import DEFECT_LABELS
from lriad_desktop.core.inspection.finding import Box
from lriad_desktop.core.inspection.images import open_raster
from lriad_desktop.core.inspection.side_by_side import compose, to_composite
from training.synthetic_data.defects import Defect, synthesize_defect
from training.synthetic_data.parts import PRODUCT_KINDS, ProductKind

__all__ = [
    "DEFECT_LABELS", "PRODUCT_KINDS", "Defect", "ProductKind", "Sample", "synthesize_defect",
    "generate_sample", "generate_line_sample", "as_side_by_side", "model_view", "generate_dataset", "write_mvtec_layout",
    "defects_from_folder_of_good_images", "IMAGE_SUFFIXES",
]

IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
USER_SURFACE = "the usual surface of this part"
_SIZE_MIN, _SIZE_MAX = 160, 512
_TWO_DEFECTS_P = 0.1
_LINE_SEED = 0x11E  # the line-like variants' own stream, apart from every sample seed


@dataclass(frozen=True)
class Sample:
    """One training/evaluation image with its ground truth."""

    image: Image.Image  # RGB
    mask: np.ndarray  # H x W uint8, 255 on defect pixels (union of all defects), else 0
    kind: str  # key of PRODUCT_KINDS, or "user" for a user's photos
    object_name: str  # inspector's name of the object, e.g. "metal washer"
    surface: str  # how its surface normally looks
    defects: tuple[Defect, ...]
    reference: Image.Image | None = None  # a golden sample of the same product, when asked for

    @property
    def anomalous(self) -> bool:
        """True when the image shows at least one defect."""
        return bool(self.defects)


def _random_size(rng: np.random.Generator) -> tuple[int, int]:
    w = int(rng.integers(_SIZE_MIN, _SIZE_MAX + 1))
    if rng.random() < 0.4:
        return w, w
    h = int(np.clip(w * np.exp(rng.uniform(np.log(0.6), np.log(1.6))), _SIZE_MIN, _SIZE_MAX))
    return w, h


def _overlaps(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _paint_defects(
    image: Image.Image, rng: np.random.Generator, label: str, object_mask: np.ndarray | None,
) -> tuple[Image.Image, np.ndarray, tuple[Defect, ...]]:
    """One defect of ``label``, or occasionally two that do not overlap."""
    image, mask, first = synthesize_defect(image, rng, label, object_mask)
    defects = [first]
    if rng.random() < _TWO_DEFECTS_P:
        for _ in range(4):
            img2, mask2, second = synthesize_defect(image, rng, label, object_mask)
            if not _overlaps(first.box, second.box):
                image, mask, defects = img2, np.maximum(mask, mask2), [first, second]
                break
    return image, mask, tuple(defects)


def _choose_label(rng: np.random.Generator, defect: str | bool | None,
                  labels: Sequence[str] = DEFECT_LABELS) -> str | None:
    if defect is False:
        return None
    if defect is None:
        if rng.random() < 0.5:
            return None
        defect = True
    if defect is True:
        return labels[int(rng.integers(len(labels)))]
    if defect not in DEFECT_LABELS:
        raise ValueError(f"unknown defect label {defect!r}; expected one of {DEFECT_LABELS}")
    return defect


def generate_sample(
    rng: np.random.Generator,
    kind: str | None = None,
    defect: str | bool | None = None,
    size: tuple[int, int] | None = None,
    reference: bool = False,
) -> Sample:
    """Render one product image.

    ``kind``: a key of :data:`PRODUCT_KINDS` (random when None). ``defect``: False for a good
    image, None for a 50 % chance of a random defect, True for a random defect, or a label
    from :data:`DEFECT_LABELS`. ``size``: (width, height); random 160-512 px when None.
    About 10 % of anomalous images carry two defects of the same label. ``reference``: also
    render a good golden sample of the same product (same colour and shape, slightly moved,
    other lighting), drawn after everything else so the sample itself is the same either way.
    """
    if kind is None:
        kind = list(PRODUCT_KINDS)[int(rng.integers(len(PRODUCT_KINDS)))]
    if kind not in PRODUCT_KINDS:
        raise ValueError(f"unknown product kind {kind!r}; expected one of {tuple(PRODUCT_KINDS)}")
    spec = PRODUCT_KINDS[kind]
    label = _choose_label(rng, defect)
    width, height = size if size is not None else _random_size(rng)
    painter_state = rng.bit_generator.state
    pixels, object_mask = spec.render(rng, width, height)
    image = Image.fromarray(pixels)
    if label is None:
        mask, defects = np.zeros((height, width), np.uint8), ()
    else:
        image, mask, defects = _paint_defects(image, rng, label, object_mask)
    golden = Image.fromarray(spec.render_reference(painter_state, rng, width, height)) if reference else None
    return Sample(image, mask, kind, spec.object_name, spec.surface, defects, golden)


def generate_line_sample(rng: np.random.Generator, kind: str, defect: str | bool = False, variant: int = 0) -> Sample:
    """One image from a line that makes a single product variant: ``kind`` and ``variant`` fix colour,
    shape and size (every call the same); ``rng`` draws the fixture jitter (a few pixels and degrees),
    mild lighting, noise and the defect (``defect`` as in `generate_sample`, but False by default)."""
    if kind not in PRODUCT_KINDS:
        raise ValueError(f"unknown product kind {kind!r}; expected one of {tuple(PRODUCT_KINDS)}")
    spec = PRODUCT_KINDS[kind]
    variant_rng = np.random.default_rng([_LINE_SEED, list(PRODUCT_KINDS).index(kind), variant])
    width, height = _random_size(variant_rng)
    pixels, object_mask = spec.render_line(variant_rng.bit_generator.state, rng, width, height)
    image, label = Image.fromarray(pixels), _choose_label(rng, defect)
    if label is None:
        mask, defects = np.zeros((height, width), np.uint8), ()
    else:
        image, mask, defects = _paint_defects(image, rng, label, object_mask)
    return Sample(image, mask, kind, spec.object_name, spec.surface, defects)


def as_side_by_side(sample: Sample) -> Sample:
    """The sample as the model sees it when comparing with a golden sample: one composite image
    (reference left, query right, each `HALF_SIZE`: `lriad_desktop.core.inspection.side_by_side`), mask and
    boxes moved and scaled along."""
    if sample.reference is None:
        raise ValueError("as_side_by_side needs a sample rendered with reference=True")
    composite = compose(sample.reference, sample.image)
    half = np.asarray(Image.fromarray(sample.mask).resize(composite.half_size, Image.NEAREST))
    mask = np.concatenate([np.zeros_like(half), half], axis=1)
    defects = []
    for d in sample.defects:
        b = to_composite(Box(*map(float, d.box)), composite)
        x1, y1 = int(np.floor(b.x1)), int(np.floor(b.y1))
        defects.append(replace(d, box=(x1, y1, max(x1 + 1, int(np.ceil(b.x2))), max(y1 + 1, int(np.ceil(b.y2))))))
    return replace(sample, image=composite.image, mask=mask, defects=tuple(defects), reference=None)


def model_view(sample: Sample) -> Sample:
    """What the model is shown for `sample`: the side-by-side composite when it carries a golden
    sample, else the sample itself."""
    return as_side_by_side(sample) if sample.reference is not None else sample


def _sample_rng(seed: int, index: int) -> np.random.Generator:
    # one independent stream per sample, so sample i does not depend on n or on earlier samples
    return np.random.default_rng([seed, index])


def generate_dataset(
    n: int,
    seed: int,
    kinds: Iterable[str] | None = None,
    labels: Iterable[str] | None = None,
    good_fraction: float = 0.5,
    size: tuple[int, int] | None = None,
) -> Iterator[Sample]:
    """Yield ``n`` samples, deterministic for ``seed``; kinds and labels drawn uniformly."""
    kind_list = list(kinds) if kinds is not None else list(PRODUCT_KINDS)
    label_list = list(labels) if labels is not None else list(DEFECT_LABELS)
    for i in range(n):
        rng = _sample_rng(seed, i)
        kind = kind_list[int(rng.integers(len(kind_list)))]
        good = rng.random() < good_fraction or not label_list
        label = None if good else label_list[int(rng.integers(len(label_list)))]
        yield generate_sample(rng, kind, False if label is None else label, size)


def _save_png(image: Image.Image | np.ndarray, path: Path) -> None:
    img = Image.fromarray(image) if isinstance(image, np.ndarray) else image
    img.save(path, compress_level=3)


def write_mvtec_layout(
    root: Path,
    samples_per_kind: int,
    seed: int,
    kinds: Iterable[str] | None = None,
    labels: Iterable[str] | None = None,
    size: tuple[int, int] | None = None,
    line_variant: int | None = None,
) -> Path:
    """Write an MVTec-AD style data set under ``root`` and return ``root``.

    For each kind: ``samples_per_kind`` images in ``train/good`` and in ``test/good``, and
    ``samples_per_kind`` images per defect label in ``test/<label>`` with their masks
    (single channel, 0/255) in ``ground_truth/<label>/NNN_mask.png``. ``line_variant``: every image
    of a kind is that one product variant, as on a line (`generate_line_sample`; ``size`` is ignored).
    """
    root = Path(root)

    def make(rng: np.random.Generator, kind: str, defect: str | bool) -> Sample:
        if line_variant is None:
            return generate_sample(rng, kind, defect, size)
        return generate_line_sample(rng, kind, defect, line_variant)

    kind_list = list(kinds) if kinds is not None else list(PRODUCT_KINDS)
    label_list = list(labels) if labels is not None else list(DEFECT_LABELS)
    for k, kind in enumerate(kind_list):
        base = root / kind
        train_good, test_good = base / "train" / "good", base / "test" / "good"
        for folder in (train_good, test_good):
            folder.mkdir(parents=True, exist_ok=True)
        for i in range(samples_per_kind):
            _save_png(make(_sample_rng(seed, 100_000 * k + i), kind, False).image,
                      train_good / f"{i:03d}.png")
            _save_png(make(_sample_rng(seed + 1, 100_000 * k + i), kind, False).image,
                      test_good / f"{i:03d}.png")
        for j, label in enumerate(label_list):
            images, masks = base / "test" / label, base / "ground_truth" / label
            images.mkdir(parents=True, exist_ok=True)
            masks.mkdir(parents=True, exist_ok=True)
            for i in range(samples_per_kind):
                rng = _sample_rng(seed + 2 + j, 100_000 * k + i)
                sample = make(rng, kind, label)
                _save_png(sample.image, images / f"{i:03d}.png")
                _save_png(sample.mask, masks / f"{i:03d}_mask.png")
    return root


def _object_name_from_folder(folder: Path) -> str:
    name = folder.resolve().name.replace("_", " ").replace("-", " ").strip()
    return " ".join(name.split()) or "part"


def defects_from_folder_of_good_images(
    folder: Path,
    n: int,
    seed: int,
    labels: Iterable[str] | None = None,
) -> Iterator[Sample]:
    """Cold start: paint synthetic defects onto a user's good images.

    Searches ``folder`` recursively for png/jpg/jpeg/bmp/tif images and yields ``n``
    anomalous samples (kind ``"user"``, one defect each, occasionally two), cycling through
    the images in a seed-dependent order. The defect may land anywhere on the image, since
    the part's outline is unknown. Raises ``FileNotFoundError`` when no image is found.
    """
    folder = Path(folder)
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"no images (png, jpg, jpeg, bmp, tif) found under {folder}")
    label_list = list(labels) if labels is not None else list(DEFECT_LABELS)
    object_name = _object_name_from_folder(folder)
    order = np.random.default_rng(seed).permutation(len(files))
    for i in range(n):
        rng = _sample_rng(seed, i)
        path = files[int(order[i % len(files)])]
        with open_raster(path) as im:
            image = im.convert("RGB")
        label = label_list[int(rng.integers(len(label_list)))]
        image, mask, defects = _paint_defects(image, rng, label, None)
        yield Sample(image, mask, "user", object_name, USER_SURFACE, defects)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m training.synthetic_data.samples OUT --per-kind N --seed S`: write an MVTec-layout test set."""
    import argparse

    p = argparse.ArgumentParser(description="Write a synthetic inspection set in the MVTec-AD layout.")
    p.add_argument("out", type=Path)
    p.add_argument("--per-kind", type=int, default=4, help="images per kind and label (and good)")
    p.add_argument("--seed", type=int, required=True, help="use a seed that no training run used")
    p.add_argument("--line-variant", type=int, default=None, metavar="V",
                   help="line-like: one product variant V per kind, placed in a fixture (default: mixed)")
    args = p.parse_args(argv)
    root = write_mvtec_layout(args.out, args.per_kind, args.seed, line_variant=args.line_variant)
    print(f"wrote {sum(1 for _ in root.rglob('*.png'))} files under {root}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
