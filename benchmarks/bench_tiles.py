"""Tiles on large images: a small defect on a synthetic 4000 x 3000 texture, inspected whole and in tiles.

Each image is one of the synthetic textures rendered at 4000 x 3000 with one defect painted into a 600 x 600
patch (so the defect is the size it has in a 600 px training image: about 1-2 % of the large image's side).
Inspected whole, the model sees the image at its pixel budget (224 x 168 for the bundled model), where the
defect is a few pixels; in tiles (`--tiles auto`), each tile reaches it at about a third of its size. A defect
counts as found when the finding is defective with a box that overlaps the painted defect's box. Good
images of the same textures give the false-alarm rate. Prints one JSON object.

    python benchmarks/bench_tiles.py [--model DIR] [--n 6] [--tiles auto] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TEXTURES = ("fabric", "metal", "wood", "leather", "tile", "carpet")
SIZE = (4000, 3000)
PATCH = 600


def large_sample(seed: int, defective: bool):
    """A 4000 x 3000 texture (cycling through the textures by seed), with one small defect when `defective`:
    (image, object name, the defect's box in image pixels or None)."""
    import numpy as np
    from PIL import Image

    from training.synthetic_data.defects import synthesize_defect
    from training.synthetic_data.parts import PRODUCT_KINDS

    rng = np.random.default_rng(seed)
    kind = PRODUCT_KINDS[TEXTURES[seed % len(TEXTURES)]]
    pixels, _mask = kind.render(rng, *SIZE)
    image = Image.fromarray(pixels)
    if not defective:
        return image, kind.object_name, None
    x = int(rng.integers(0, SIZE[0] - PATCH))
    y = int(rng.integers(0, SIZE[1] - PATCH))
    patch, _patch_mask, defect = synthesize_defect(image.crop((x, y, x + PATCH, y + PATCH)), rng)
    image.paste(patch, (x, y))
    x1, y1, x2, y2 = defect.box
    return image, kind.object_name, (x1 + x, y1 + y, x2 + x, y2 + y)


def _overlaps(box, truth) -> bool:  # noqa: ANN001
    return box is not None and box.x1 < truth[2] and truth[0] < box.x2 and box.y1 < truth[3] and truth[1] < box.y2


def measure(backend, samples) -> dict:  # noqa: ANN001
    """Found / defective, false alarms / good, and ms/image for one backend over the samples."""
    from lriad_desktop.core.inspection.finding import Verdict

    found = alarms = defective = good = 0
    ms: list[float] = []
    detail = []
    for image, object_name, truth in samples:
        t = time.perf_counter()
        finding = backend.inspect_batch([image], [object_name], [""])[0]
        ms.append((time.perf_counter() - t) * 1000)
        anomalous = finding.verdict is Verdict.ANOMALOUS
        if truth is None:
            good += 1
            alarms += anomalous
        else:
            defective += 1
            hit = anomalous and any(_overlaps(d.box, truth) for d in finding.defects)
            found += hit
            detail.append({"object": object_name, "truth": [round(v) for v in truth], "verdict": finding.verdict.value,
                           "boxes": [[round(v) for v in d.box.as_list()] for d in finding.defects if d.box],
                           "found": hit, "tiles": finding.tiling.tiles if finding.tiling else 1})
    return {"found": found, "defective": defective, "false_alarms": alarms, "good": good,
            "ms_per_image": round(sum(ms) / len(ms)), "images": detail}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=None, help="model folder (default: the bundled lriad-tiny)")
    parser.add_argument("--n", type=int, default=6, help="defective images (and as many good ones)")
    parser.add_argument("--tiles", default="auto", help="the tile policy (default auto)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-new-tokens", type=int, default=160)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from lriad_desktop.core.backends.engine import Inspector
    from lriad_desktop.core.paths import model_folder
    from lriad_desktop.core.backends.tiles import TiledBackend, TilePolicy

    samples = [large_sample(seed, True) for seed in range(args.n)] + \
              [large_sample(1000 + seed, False) for seed in range(args.n)]
    inspector = Inspector(model_folder(args.model), device="cpu", max_new_tokens=args.max_new_tokens).load()
    tiled = TiledBackend(inspector, TilePolicy.parse(args.tiles), tile_batch=16)
    plan = tiled.plan(SIZE, samples[0][1])
    whole = measure(inspector, samples)
    in_tiles = measure(tiled, samples)
    print(json.dumps({"image": f"{SIZE[0]}x{SIZE[1]}", "model": inspector.model_version,
                      "pixel_budget": inspector.geometry.max_pixels, "tiles": args.tiles,
                      "grid": f"{plan.columns}x{plan.rows} of {plan.tile_size[0]}x{plan.tile_size[1]}" if plan else "-",
                      "whole": whole, "tiled": in_tiles}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
