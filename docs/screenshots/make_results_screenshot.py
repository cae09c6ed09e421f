"""The Improve panel's before/after on the issue's run: 4 flags learned without boxes, 3 held-out images.

Run from the repository root: `python docs/screenshots/make_results_screenshot.py` (offscreen, a scratch data
folder; the figures are real scores of hand-made findings, from tests/test_run_results.py)."""

import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["LRIAD_DATA_DIR"] = tempfile.mkdtemp()
ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from PySide6.QtWidgets import QApplication  # noqa: E402

app = QApplication([])

from lriad_desktop.core.settings import Settings  # noqa: E402
from lriad_desktop.core.store.review_store import ReviewStore  # noqa: E402
from lriad_desktop.core.training_runs.protocol import (DataPrepared, Evaluated, RunDone, Step, TrainingSetUp,  # noqa: E402
                                               encode_event)
from lriad_desktop.ui.window.controller import AppController  # noqa: E402
from lriad_desktop.ui.window.main_window import MainWindow  # noqa: E402
from lriad_desktop.ui.theme import apply_theme  # noqa: E402
import test_run_results as figures  # noqa: E402

apply_theme(app, "light")
controller = AppController(ReviewStore.open(), Settings(), inspector_factory=lambda s: None)
window = MainWindow(controller, load_model=False)
before, after = figures._boxes_vanish()
steps = [{"contamination": {"success": 0.32, "seen": 4, "weight": 1.2, "rarity": 1.0},
          "missing_part": {"success": 0.4, "seen": 4, "weight": 1.0, "rarity": 1.0}},
         {"contamination": {"success": 0.02, "seen": 8, "weight": 1.9, "rarity": 1.0},
          "missing_part": {"success": 0.7, "seen": 8, "weight": 0.6, "rarity": 1.0}}]
events = [DataPrepared(flagged=4, replay=2, holdout=3, rows=6), Evaluated("before", **before),
          TrainingSetUp(rows=6, max_steps=2),
          *(Step(step=i, max_steps=2, reward=0.1 * i, kl=0.01 * i, classes=c) for i, c in enumerate(steps, 1)),
          Evaluated("after", **after), RunDone(version_id=2, adapter="lriad-tiny-v1", minutes=0.5)]
panel = window.improving.panel()
panel.show()
for event in events:  # the lines a training process prints, read by the app's training service
    controller.training._line(encode_event(event))
controller.training.finished.emit("done")
panel.setup_box.hide()  # no plan was started here: the setup a plan hides
app.processEvents()
panel.grab().save(str(ROOT / "docs" / "screenshots" / "improve-before-after.png"))
