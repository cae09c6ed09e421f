"""`lriad inspect --map GOOD`: each finding also carries the anomaly map's verdict-free view of the image —
its score against the good images GOOD (files or folders) on the model's own vision tower, and the regions
where it differs most from them (`core.anomaly_map`)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Sequence

from lriad_desktop.core.anomaly_map import AnomalyMapError, MemoryBank, build_bank, map_images
from lriad_desktop.core.images import ImageLoadError, iter_image_files, load_image


class MapOption:
    """A memory bank of the `--map` good images and the tower it was built with (loaded once)."""

    def __init__(self, tower: Any, bank: MemoryBank) -> None:
        self.tower = tower
        self.bank = bank

    @classmethod
    def build(cls, good: Sequence[Path], model_dir: Path, adapter_dir: Path | None, device: str,
              object_name: str) -> "MapOption | None":
        """Load the tower and build the bank, or print one error line and return None (a server backend,
        unreadable or too few good images, a tower that can't give features)."""
        from lriad_desktop.core.devices import pick_device
        from lriad_desktop.core.vision_features import FeatureError, VisionTower

        images = []
        for path in iter_image_files(good):
            try:
                images.append(load_image(path).image)
            except ImageLoadError as err:
                print(f"error: --map {path}: {err.reason}", file=sys.stderr)
                return None
        try:
            tower = VisionTower.load(model_dir, adapter_dir, device=pick_device(device)[0])
            bank = build_bank(tower, object_name, images)
        except (AnomalyMapError, FeatureError) as err:
            print(f"error: --map: {err}", file=sys.stderr)
            return None
        print(f"anomaly map: {bank.size} features from {len(images)} good image(s), built in "
              f"{bank.build_seconds:.1f} s", file=sys.stderr, flush=True)
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
