"""`lriad inspect --map GOOD`: each finding also carries the anomaly map's verdict-free view of the image —
its score against the good images GOOD (files or folders) and the regions where it differs most from them
(`core.anomaly_map.patch_map`), on the features `--map-feature` names (`core.anomaly_map.features`: the shipped ImageNet CNN by
default, or the model's own vision tower)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Sequence

from lriad_desktop.core.anomaly_map.patch_map import AnomalyMapError, MemoryBank, build_bank, map_images
from lriad_desktop.core.inspection.images import ImageLoadError, iter_image_files, load_image
from lriad_desktop.core.anomaly_map.features import DEFAULT_MAP_FEATURE, check_choice, feature_string, map_source, needs_model
from lriad_desktop.core.plurals import count
from lriad_desktop.core.inspection.images import open_raster


class MapOption:
    """A memory bank of the `--map` good images and the tower it was built with (loaded once)."""

    def __init__(self, tower: Any, bank: MemoryBank) -> None:
        self.tower = tower
        self.bank = bank

    @classmethod
    def build(cls, good: Sequence[Path], model_dir: Path | None, adapter_dir: Path | None, device: str,
              object_name: str, feature: str = DEFAULT_MAP_FEATURE) -> "MapOption | None":
        """Load the feature source and build the bank, or print one error line and return None (unreadable or
        too few good images, a tower that can't give features, the tower asked for without a local model)."""
        from lriad_desktop.core.backends.vision_features import FeatureError

        images = []
        for path in iter_image_files(good):
            try:
                images.append(load_image(path).image)
            except ImageLoadError as err:
                print(f"error: --map {path}: {err.reason}", file=sys.stderr)
                return None
        try:
            tower = load_source(feature, model_dir, adapter_dir, device)
            bank = build_bank(tower, object_name, images, feature_string(feature, tower))
        except (AnomalyMapError, FeatureError) as err:
            print(f"error: --map: {err}", file=sys.stderr)
            return None
        print(f"anomaly map: {bank.size} features ({bank.identity.feature}) from {count(len(images), 'good image')}, "
              f"built in {bank.build_seconds:.1f} s", file=sys.stderr, flush=True)
        return cls(tower, bank)

    def describe(self, image_path: str) -> dict[str, Any]:
        """The map's figures for one image: `score` (normalised: about 0 on the good images, larger is more
        anomalous), `raw_score`, `boxes` in original-image pixels, `bank_images`; or `error`."""
        try:
            amap = map_images(self.tower, self.bank, [load_image(image_path).image])[0]
        except (ImageLoadError, AnomalyMapError) as err:
            return {"error": getattr(err, "reason", None) or str(err)}
        return {"score": round(float(amap.score), 4), "raw_score": round(float(amap.raw_score), 4),
                "boxes": [b.as_list(1) for b in amap.boxes], "bank_images": self.bank.n_images}


def load_source(feature: str, model_dir: Path | None, adapter_dir: Path | None, device: str) -> Any:
    """The feature source `feature` names (`core.anomaly_map.features`): the shipped CNN, or the tower of the local model
    folder (raises `FeatureError` when the tower is asked for without one, `ModelFolderError` for a bad one)."""
    from lriad_desktop.core.devices import pick_device
    from lriad_desktop.core.backends.vision_features import FeatureError, VisionTower

    check_choice(feature)
    if not needs_model(feature):
        return map_source(None, feature)
    if model_dir is None:
        raise FeatureError("the anomaly map on the model's own vision tower needs the model's local folder (--model)")
    return VisionTower.load(model_dir, adapter_dir, device=pick_device(device)[0])


def shots_map_note(shots: int, server_only: bool, feature: str = DEFAULT_MAP_FEATURE) -> str:
    """Why `lriad evaluate --shots K` runs no anomaly map ("" when it does)."""
    if shots < 2:
        return f"--shots {shots}: the anomaly map needs at least 2 good images per category; it is not run"
    if server_only and needs_model(feature):
        return "--shots: the anomaly map compares on the model's own vision tower; give its local folder with --model"
    return ""


def mask_of(item: Any) -> Any:
    """The ground-truth mask (bool array) of an MVTec-style test image (`<cat>/ground_truth/<defect>/<stem>_mask.png`),
    all False for a good image; None when an anomalous image has no such mask (VisA keeps its own paths)."""
    import numpy as np
    from PIL import Image

    if not item.anomalous:
        with open_raster(item.path) as im:
            return np.zeros((im.height, im.width), bool)
    path = Path(item.path).parents[2] / "ground_truth" / item.defect_type / f"{Path(item.path).stem}_mask.png"
    if not getattr(item, "has_mask", False) or not path.is_file():
        return None
    with open_raster(path) as im:
        return np.asarray(im.convert("L")) > 0


def evaluate_maps(pairs: Sequence[tuple[Any, Any]], good: dict[str, Sequence[Path]], model_dir: Path | None,
                  adapter_dir: Path | None, device: str, feature: str = DEFAULT_MAP_FEATURE) -> dict[str, dict[str, Any]]:
    """`lriad evaluate --shots K` (or `--map K`): per category, a bank from its K normal training images (`good`),
    then image AUROC of the map, of the model's own score and of their fusion (`core.anomaly_map.fusion.DEFAULT_FUSION`)
    on the same test images, and pixel AUROC of the map where every defective image has a mask; "all" pools
    the categories' images (its pixel AUROC: the mean of the categories', as the field reports it)."""
    import cv2
    import numpy as np

    from lriad_desktop.core.anomaly_map.patch_map import DEFAULT_FUSION, fused_score, pixel_auroc
    from lriad_desktop.core.evaluation.score_curves import auroc

    tower = load_source(feature, model_dir, adapter_dir, device)
    feature = feature_string(feature, tower)
    rows: dict[str, list[tuple[bool, float | None, float | None]]] = {}
    banks: dict[str, int] = {}
    pixels: dict[str, float | None] = {}
    for category in sorted({item.category for item, _ in pairs}):
        bank = build_bank(tower, category, [load_image(p).image for p in good.get(category, ())], feature)
        banks[category] = bank.n_images
        chosen = [(item, finding) for item, finding in pairs if item.category == category]
        print(f"\ranomaly map: {category} ({len(chosen)} images)", end="", file=sys.stderr, flush=True)
        heats, masks = [], []
        for item, finding in chosen:
            try:
                amap = map_images(tower, bank, [load_image(item.path).image])[0]
                score = float(amap.score)
                mask = mask_of(item)
                if mask is not None and mask.shape != amap.heat.shape:  # as read_dataset does: to the image
                    mask = cv2.resize(mask.astype(np.uint8), amap.heat.shape[::-1],
                                      interpolation=cv2.INTER_NEAREST) > 0
                if masks is not None and mask is not None:
                    heats.append(amap.heat)
                    masks.append(mask)
                else:
                    masks = None  # one defective image without its mask: no pixel figure for the category
            except (ImageLoadError, AnomalyMapError, OSError):
                score = None
            rows.setdefault(category, []).append((item.anomalous, finding.anomaly_score, score))
        pixels[category] = pixel_auroc(heats, masks) if masks else None
    print(file=sys.stderr)
    rows["all"] = [r for cat in sorted(banks) for r in rows.get(cat, [])]
    known = [v for v in pixels.values() if v is not None]
    pixels["all"] = sum(known) / len(known) if known and len(known) == len(banks) else None

    def area(values: list[tuple[bool, float | None]]) -> float | None:
        kept = [(t, s) for t, s in values if s is not None]
        return auroc([s for _, s in kept], [t for t, _ in kept]) if kept else None

    out = {}
    for name, values in rows.items():
        out[name] = {"map_auroc": area([(t, m) for t, _, m in values]),
                     "model_auroc": area([(t, p) for t, p, _ in values]),
                     "fusion_auroc": area([(t, fused_score(p, m)) for t, p, m in values]),
                     "pixel_auroc": pixels.get(name),
                     "images": len(values), "bank_images": banks.get(name, sum(banks.values())),
                     "fusion": DEFAULT_FUSION.describe(), "feature": feature}
    return out


def format_map_table(figures: dict[str, dict[str, Any]]) -> str:
    """The map, the model and the fusion side by side, a row per category."""
    def num(v: float | None) -> str:
        return "—" if v is None else f"{v:.3f}"

    lines = [f"{'anomaly map':<14} {'images':>6} {'bank':>5} {'map AUROC':>10} {'model AUROC':>12} "
             f"{'fusion AUROC':>13} {'pixel AUROC':>12}"]
    for name, f in figures.items():
        lines.append(f"{name:<14} {f['images']:>6} {f['bank_images']:>5} {num(f['map_auroc']):>10} "
                     f"{num(f['model_auroc']):>12} {num(f['fusion_auroc']):>13} {num(f.get('pixel_auroc')):>12}")
    rule = next((f["fusion"] for f in figures.values() if f.get("fusion")), "")
    feature = next((f["feature"] for f in figures.values() if f.get("feature")), "")
    if rule:
        lines.append(f"({rule}; the map on {feature}; pixel AUROC of the map where the set has masks)")
    return "\n".join(lines)
