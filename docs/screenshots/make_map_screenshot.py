"""The anomaly map over a defective part beside the reasoning, offscreen, all real: the bundled model, eight
good line-like washers as golden samples (their bank is built by the first inspection), one washer with a
defect inspected with I, the map shown with M.

    python docs/screenshots/make_map_screenshot.py [KIND] [SEED]    # writes anomaly-map.png here
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
OUT = Path(__file__).resolve().parent
sys.path.insert(0, str(OUT.parents[1]))


def main(argv: list[str]) -> int:
    kind = argv[0] if argv else "washer"
    seed = int(argv[1]) if len(argv) > 1 else 3
    work = Path(tempfile.mkdtemp(prefix="lriad-map-shot-"))
    os.environ["LRIAD_DATA_DIR"] = str(work / "data")
    import numpy as np

    from lriad_desktop.core.inspection.finding import Verdict
    from lriad_desktop.core.store.review import Review, ReviewKind
    from lriad_desktop.core.settings import Settings
    from lriad_desktop.core.store.review_store import ReviewStore
    from lriad_desktop.ui.window.app import create_app
    from lriad_desktop.ui.window.controller import AppController
    from lriad_desktop.ui.review.inspection import ModelState
    from lriad_desktop.ui.window.main_window import MainWindow
    from lriad_desktop.ui.theme import apply_theme
    from training.synthetic_data.samples import PRODUCT_KINDS, generate_line_sample

    name = PRODUCT_KINDS[kind].object_name
    folder = work / "line-2" / name.replace(" ", "_")
    folder.mkdir(parents=True)
    rng = np.random.default_rng([seed, 17])
    good = []
    for i in range(8):
        good.append(folder / f"good_{i:02d}.png")
        generate_line_sample(rng, kind).image.save(good[-1])
    query = folder / "part_0042.png"
    sample = generate_line_sample(rng, kind, defect=True)
    sample.image.save(query)
    store = ReviewStore.open()
    for path in good:
        image = store.add_image(str(path), name)
        store.save_review(image.id, Review(ReviewKind.ACCEPT, Verdict.NORMAL), "line lead")
        store.add_golden_sample(image.id, name)
    app = create_app()
    apply_theme(app, "light")
    settings = Settings(reference_count=0, show_map=True, reviewer_asked=True, demo_notice_shown=True)
    controller = AppController(store, settings, persist_settings=False)
    window = MainWindow(controller)
    window.resize(1440, 900)
    window.show()

    def wait(cond, seconds=300.0):
        end = time.monotonic() + seconds
        while not cond() and time.monotonic() < end:
            app.processEvents()
            time.sleep(0.01)
        return cond()

    controller.add_paths([str(query)])
    wait(lambda: controller.queue.rowCount() == 1 and not controller.scanning)
    wait(lambda: controller.inspection.state is ModelState.READY)
    window.set_current(0)
    controller.inspect_rows([0], front=True)
    if not wait(lambda: controller.queue.entry(0).model_finding is not None):
        print("error: the inspection did not finish", file=sys.stderr)
        return 1
    wait(lambda: window.view.image is not None and window.view.heatmap_item() is not None, 30)
    wait(lambda: all(t.picture.pixmap() is not None and not t.picture.pixmap().isNull()
                     for t in window.reference_strip.tiles), 20)
    for _ in range(20):
        app.processEvents()
        time.sleep(0.02)
    finding = controller.queue.entry(0).model_finding
    print(f"truth: {[d.label for d in sample.defects]} at {[d.box for d in sample.defects]}; model: "
          f"{finding.verdict.value} {[d.label for d in finding.defects]}; map {finding.anomaly_map.score:+.1f} "
          f"boxes {[b.as_list(0) for b in finding.map_boxes]}; score {finding.anomaly_score:.2f} ({finding.score_rule})")
    target = OUT / "anomaly-map.png"
    window.grab().save(str(target))
    print(f"saved {target}")
    window.close()
    controller.shutdown()
    store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
