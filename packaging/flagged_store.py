"""Write a small review store of the bundled sample images, as an inspector would leave it.

    python packaging/flagged_store.py STORE.sqlite3

Two flags (the model's answer disagreed with) and four accepts. `scripts/build_app.sh` hands
it to the frozen app's `train` command to check "Improve model" end to end without Python.
"""

from __future__ import annotations

import sys
from pathlib import Path

from lriad_desktop.core.inspection.finding import Box, Defect, Verdict
from lriad_desktop.core.inspection.images import load_image
from lriad_desktop.core.paths import sample_images_dir
from lriad_desktop.core.store.review import Review, ReviewKind
from lriad_desktop.core.store.review_store import ReviewStore

FLAGS = {"capsule_contamination.jpg": ("capsule", "contamination"), "metal_hole.jpg": ("metal plate", "hole")}
ACCEPTS = {"bottle_good.jpg": "bottle", "fabric_good.jpg": "fabric", "pcb_missing_part.jpg": "circuit board",
           "washer_scratch.jpg": "washer"}


def write_store(path: Path) -> Path:
    samples = sample_images_dir()
    with ReviewStore.open(path) as store:
        for name, (obj, label) in FLAGS.items():
            w, h = load_image(samples / name).size
            image = store.add_image(samples / name, obj)
            box = Box(0.35 * w, 0.35 * h, 0.65 * w, 0.65 * h)
            store.save_review(image.id, Review(ReviewKind.FLAG, Verdict.ANOMALOUS, (Defect(label, box),), "check"))
        for name, obj in ACCEPTS.items():
            image = store.add_image(samples / name, obj)
            verdict = Verdict.NORMAL if name.endswith("_good.jpg") else Verdict.ANOMALOUS
            store.save_review(image.id, Review(ReviewKind.ACCEPT, verdict))
    return path


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    print(write_store(Path(sys.argv[1])))
