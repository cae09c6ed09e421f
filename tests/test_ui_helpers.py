"""Shared pieces of the GUI tests (fixtures are imported by the test_ui_* modules; no tests here).

Every GUI test fails if it leaves a window open, and on Qt warnings (pytest-qt's
`qt_log_level_fail`); stores are real SQLite files in the test's own data dir.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from lriad_desktop.core.inspection.finding import Box, Defect, Finding, Verdict
from lriad_desktop.core.settings import Settings
from lriad_desktop.core.store.review_store import ReviewStore, file_sha256
from lriad_desktop.ui.review.inspection import InspectionOutcome

UI_MARKS = [pytest.mark.qt_log_level_fail("WARNING"),
            # the offscreen platform can't raise windows or grab the keyboard (a popup menu asks it to)
            pytest.mark.qt_log_ignore(r"propagateSizeHints", r"does not support raise", r"does not support grabbing",
                                      r"QFont::setPointSize", r"Populating font family"),
            pytest.mark.filterwarnings("error::DeprecationWarning:lriad_desktop")]


@pytest.fixture(autouse=True)
def no_leaked_windows(qapp):
    """Fail a test that leaves a visible top-level window behind (and close it, so others don't inherit it)."""
    yield
    qapp.processEvents()
    leaked = [w for w in qapp.topLevelWidgets() if w.isVisible()]
    for w in leaked:
        w.close()
    assert not leaked, f"windows left open: {[type(w).__name__ for w in leaked]}"


def part_image(path, size=(320, 240), scratch: bool = True, seed: int = 0):
    """A grey part with a dark scratch: something that looks like an inspection image."""
    rng = np.random.default_rng(seed)
    w, h = size
    arr = (rng.normal(150, 6, (h, w, 3))).clip(0, 255).astype(np.uint8)
    im = Image.fromarray(arr)
    d = ImageDraw.Draw(im)
    d.ellipse((w * 0.15, h * 0.1, w * 0.85, h * 0.9), fill=(120, 122, 126), outline=(80, 80, 85), width=3)
    if scratch:
        d.line((w * 0.4, h * 0.35, w * 0.6, h * 0.55), fill=(40, 40, 40), width=3)
    im.save(path)
    return path


def hand_finding(path, box=Box(120, 80, 200, 140), label="scratch", size=(320, 240)) -> Finding:
    """A finding as the engine would give it, with a box in original pixels."""
    return Finding(Verdict.ANOMALOUS, (Defect(label, box),),
                   ("The part is a round washer with a uniform grey surface.",
                    "A dark thin line crosses the upper middle of the surface.",
                    "A scratch like this is a defect."),
                   "<think>…</think><answer>…</answer>", "hand-made", str(path), size, "washer",
                   {"total_ms": 412.0, "new_tokens": 96.0, "batch_size": 1.0})


def deliver(window, path, finding: Finding | None = None, error: str = "") -> None:
    """Hand the window an inspection outcome as the inspection service would."""
    sha = file_sha256(path) if finding is not None else None
    window.controller.inspection.outcome.emit(InspectionOutcome(str(path), finding, error, sha))


@pytest.fixture
def make_window(qtbot, inspector):
    """Build main windows on a real store (default: the test's data dir) and the session's tiny inspector."""
    from lriad_desktop.ui.window.controller import AppController
    from lriad_desktop.ui.window.main_window import MainWindow

    stores, controllers = [], []

    def make(settings: Settings | None = None, store_path=None, factory=None, load_model: bool = True):
        store = ReviewStore.open(store_path)
        stores.append(store)
        controller = AppController(store, settings or Settings(),
                                   inspector_factory=factory or (lambda s: inspector))
        controllers.append(controller)
        window = MainWindow(controller, load_model=load_model)
        window.resize(1280, 800)
        window.show()
        qtbot.waitExposed(window)
        return window

    yield make
    for c in controllers:  # a model call a quick close left running ends before the next test uses the model
        c.runner.wait_left(120)
    for s in stores:
        s.close()


def add_and_wait(qtbot, window, paths, count: int) -> None:
    window.controller.add_paths([str(p) for p in paths])
    qtbot.waitUntil(lambda: window.controller.queue.rowCount() == count and not window.controller.scanning)


def wait_shown(qtbot, window, path, with_finding: bool = True) -> None:
    qtbot.waitUntil(lambda: window.view.image is not None and window.view.image.path == str(path)
                    and (not with_finding or window.current_entry().finding is not None))
