"""The golden-sample strip beside a finding, offscreen: `python docs/screenshots/make_golden_screenshot.py`.

Generated metal nuts: two good ones accepted and marked as golden samples (G), one scratched nut
whose finding (hand-made, as in `make_screenshots.py`, and recording the golden sample it was
compared with) is delivered to the window as the inspection service delivers real ones.
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
sys.path.insert(0, str(OUT))

from make_screenshots import metal_nut  # noqa: E402


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="lriad-golden-shot-"))
    os.environ["LRIAD_DATA_DIR"] = str(work / "data")
    from lriad_desktop.core.inspection.finding import Box, Defect, Finding, Verdict
    from lriad_desktop.core.paths import bundled_model_dir
    from lriad_desktop.core.settings import Settings
    from lriad_desktop.core.store.review_store import ReviewStore, file_sha256
    from lriad_desktop.ui.window.app import create_app
    from lriad_desktop.ui.window.controller import AppController
    from lriad_desktop.ui.review.inspection import InspectionOutcome
    from lriad_desktop.ui.window.main_window import MainWindow
    from lriad_desktop.ui.theme import apply_theme

    app = create_app()
    apply_theme(app, "light")
    folder = work / "line-3" / "metal_nut"
    folder.mkdir(parents=True)
    scratch = (520, 250, 600, 330)
    good = [metal_nut(folder / f"nut_000{i}.png", seed=i) for i in (1, 3)]
    query = metal_nut(folder / "nut_0007.png", scratch=scratch, seed=7)
    store = ReviewStore.open()
    controller = AppController(store, Settings(reference_count=1), persist_settings=False)
    window = MainWindow(controller, load_model=False)
    window.resize(1280, 800)
    window.show()

    def wait(cond, ms=20000):
        end = time.monotonic() + ms / 1000
        while not cond() and time.monotonic() < end:
            app.processEvents()
            time.sleep(0.01)

    def deliver(path, finding):
        controller.inspection.outcome.emit(InspectionOutcome(str(path), finding, "", file_sha256(path)))

    controller.add_paths([str(folder)])
    wait(lambda: controller.queue.rowCount() == 3 and not controller.scanning)
    version = f"{bundled_model_dir().name}"
    for path in good:
        deliver(path, Finding(Verdict.NORMAL, (), ("The nut's surface is evenly brushed and its six edges are intact.",
                                                   "Nothing abnormal is visible: the part is good."),
                              "", version, str(path), (900, 700), "metal_nut", {"total_ms": 410.0}))
        row = controller.queue.row_of(str(path))
        controller.accept(row)
        controller.toggle_golden(row)
    steps = ("Image 1 is a good metal nut; image 2, to inspect, shows the same hexagonal nut, turned a little.",
             "Position and lighting differ; the brushed surface and the six edges match the reference.",
             "On the right flank of the inspected nut there is a thin dark line with a bright rim that the golden "
             "sample does not have.",
             "It is a scratch: the part is defective.")
    deliver(query, Finding(Verdict.ANOMALOUS, (Defect("scratch", Box(506, 238, 614, 340)),), steps, "", version,
                           str(query), (900, 700), "metal_nut", {"total_ms": 690.0, "new_tokens": 121.0},
                           references=(str(good[0]),)))
    window.set_current(controller.queue.row_of(str(query)))
    wait(lambda: window.view.image is not None and window.view.image.path == str(query))
    wait(lambda: all(t.picture.pixmap() is not None and not t.picture.pixmap().isNull()
                     for t in window.reference_strip.tiles))
    wait(lambda: False, 400)
    target = OUT / "golden-samples.png"
    window.grab().save(str(target))
    print("wrote", target)
    window.close()
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
