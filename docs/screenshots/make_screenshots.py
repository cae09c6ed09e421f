"""Make the README screenshots offscreen: `python docs/screenshots/make_screenshots.py [--model DIR]`.

The images are generated parts; the findings shown are hand-made (a random or tiny model
rarely draws a convincing box), delivered to the window exactly as the inspection service
delivers real ones. `lriad gui IMAGE --screenshot out.png` makes a screenshot of a real
inspection instead (see `cli-screenshot.png`).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
OUT = Path(__file__).resolve().parent
sys.path.insert(0, str(OUT.parents[1]))

import numpy as np  # noqa: E402
from PIL import Image, ImageDraw, ImageFilter  # noqa: E402


def metal_nut(path: Path, size=(900, 700), scratch=None, seed=0) -> Path:
    """A hexagonal metal nut on a dark belt, optionally with a scratch (x1, y1, x2, y2)."""
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    belt = 38 + 10 * np.sin(xx / 37.0) * 0.2 + rng.normal(0, 3, (h, w))
    img = np.stack([belt, belt + 2, belt + 6], -1)
    cx, cy, r = w / 2 + rng.integers(-30, 30), h / 2 + rng.integers(-20, 20), min(w, h) * 0.36
    ang = np.arctan2(yy - cy, xx - cx)
    dist = np.hypot(xx - cx, yy - cy)
    hex_r = r * math.cos(math.pi / 6) / np.cos(((ang + rng.uniform(0, 1)) % (math.pi / 3)) - math.pi / 6)
    body = dist < hex_r
    shade = 150 + 55 * np.cos(ang - 0.8) * (dist / r) + rng.normal(0, 4, (h, w))
    rings = 6 * np.sin(dist / 3.1)
    for c, k in enumerate((1.0, 1.01, 1.05)):
        img[..., c] = np.where(body, (shade + rings) * k, img[..., c])
    hole = dist < r * 0.42
    thread = 70 + 25 * np.sin(dist / 2.2) + 20 * np.cos(ang * 3)
    img[hole] = np.stack([thread, thread, thread + 4], -1)[hole]
    pil = Image.fromarray(img.clip(0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(0.8))
    if scratch is not None:
        d = ImageDraw.Draw(pil)
        x1, y1, x2, y2 = scratch
        pts = [(x1 + (x2 - x1) * t + 4 * math.sin(t * 9), y1 + (y2 - y1) * t) for t in np.linspace(0, 1, 30)]
        d.line(pts, fill=(35, 33, 30), width=4)
        d.line([(x + 2, y + 1) for x, y in pts], fill=(205, 200, 190), width=1)
    pil.save(path)
    return path


def video(path: Path, frames=60) -> Path:
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (640, 480))
    base = np.asarray(Image.open(metal_nut(path.with_suffix(".png"), (640, 480), seed=3)))[..., ::-1]
    for i in range(frames):
        writer.write(np.roll(base, i * 4, axis=1).copy())
    writer.release()
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, default=None, help="a model folder (default: a random tiny one)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="lriad-shots-"))
    os.environ["LRIAD_DATA_DIR"] = str(work / "data")
    model = args.model
    if model is None:
        from training.bundled_model.tiny_model import TinyModelSpec, build_random_model

        model = build_random_model(work / "qwen2.5-vl-tiny", TinyModelSpec(), seed=0)

    from PySide6.QtCore import QTimer

    from lriad_desktop.core.backends.engine import Inspector
    from lriad_desktop.core.inspection.finding import Box, Defect, Finding, Verdict
    from lriad_desktop.core.settings import Settings
    from lriad_desktop.core.store.review_store import ReviewStore, file_sha256
    from lriad_desktop.ui.window.app import create_app
    from lriad_desktop.ui.window.controller import AppController
    from lriad_desktop.ui.review.inspection import InspectionOutcome, ModelState
    from lriad_desktop.ui.window.main_window import MainWindow
    from lriad_desktop.ui.theme import apply_theme

    app = create_app()
    apply_theme(app, "light")
    folder = work / "line-3" / "metal_nut"
    folder.mkdir(parents=True)
    scratch = (520, 250, 600, 330)
    specs = [("nut_0007.png", scratch, 7), ("nut_0001.png", None, 1), ("nut_0002.png", (300, 420, 380, 470), 2),
             ("nut_0003.png", None, 3), ("nut_0004.png", None, 4), ("nut_0005.png", (410, 200, 470, 260), 5),
             ("nut_0006.png", None, 6), ("nut_0008.png", None, 8)]
    paths = [metal_nut(folder / n, scratch=s, seed=seed) for n, s, seed in specs]
    (folder / "nut_0009.png").write_bytes(b"\x89PNG broken")
    store = ReviewStore.open()
    settings = Settings(model_dir=str(model), device="cpu", max_new_tokens=96)
    inspector = Inspector(model, device="cpu", max_new_tokens=96)
    controller = AppController(store, settings, inspector_factory=lambda s: inspector, persist_settings=False)
    window = MainWindow(controller)
    window.resize(1440, 900)
    window.show()
    version = inspector.model_version
    steps = ("The image shows a hexagonal metal nut with a threaded hole, lit from the upper left.",
             "A good metal nut has a smooth, evenly brushed surface and six clean edges.",
             "On the right flank there is a thin dark line with a bright rim, about 110 px long, "
             "running diagonally across the brushed texture.",
             "Its shape and the bright rim are typical of a scratch, not of a shadow or dirt.",
             "The part is defective: one scratch on the right flank.")

    def finding(path, verdict, box=None, label="scratch", ms=640.0):
        defects = (Defect(label, Box(*box)),) if box else ()
        reasoning = steps if box else ("The nut's surface is evenly brushed and its six edges are intact.",
                                       "The threads in the hole are regular and clean.",
                                       "Nothing abnormal is visible: the part is good.")
        return Finding(verdict, defects, reasoning, "", version, str(path), (900, 700), "metal nut",
                       {"total_ms": ms, "new_tokens": 118.0, "batch_size": 1.0})

    def deliver(path, f=None, error=""):
        controller.inspection.outcome.emit(InspectionOutcome(str(path), f, error, file_sha256(path) if f else None))

    def wait(cond, ms=60000):
        import time

        end = time.monotonic() + ms / 1000
        while not cond() and time.monotonic() < end:
            app.processEvents()
            time.sleep(0.01)

    def shot(widget, name):
        wait(lambda: False, 400)
        target = args.out / name
        widget.grab().save(str(target))
        print("wrote", target)

    controller.add_paths([str(folder)])
    wait(lambda: controller.queue.rowCount() == 9 and not controller.scanning)
    wait(lambda: controller.inspection.state is ModelState.READY)
    deliver(paths[0], finding(paths[0], Verdict.ANOMALOUS, (scratch[0] - 14, scratch[1] - 12, scratch[2] + 14,
                                                             scratch[3] + 10)))
    deliver(paths[1], finding(paths[1], Verdict.NORMAL, ms=590.0))
    deliver(paths[2], finding(paths[2], Verdict.ANOMALOUS, (290, 410, 392, 478), "dent"))
    deliver(paths[3], finding(paths[3], Verdict.NORMAL))
    deliver(paths[5], finding(paths[5], Verdict.NORMAL))
    deliver(paths[6], Finding(Verdict.UNPARSED, (), ("The surface", ), "<think>The surface", version,
                              str(paths[6]), (900, 700), parse_error="no <answer> and no verdict in the text"))
    deliver(folder / "nut_0009.png", None, "image file is truncated or corrupt")
    row = {p: controller.queue.row_of(str(p)) for p in paths}
    controller.accept(row[paths[1]])
    controller.accept(row[paths[3]])
    missed = row[paths[5]]  # the model missed this scratch: the inspector flags it and draws the box
    controller.set_verdict(missed, Verdict.ANOMALOUS)
    controller.add_box(missed, Box(402, 192, 478, 268), "scratch")
    window.set_current(row[paths[0]])
    wait(lambda: window.view.image is not None and window.view.image.path == str(paths[0]))
    shot(window, "main-window.png")

    r2 = row[paths[2]]  # the model's dent box is off: moved by the inspector (the model's box stays dashed)
    window.set_current(r2)
    wait(lambda: window.view.image is not None and window.view.image.path == str(paths[2]))
    controller.set_box(r2, 0, Box(292, 405, 392, 478))
    controller.set_label(r2, 0, "scratch")
    controller.set_note(r2, "long scratch, not a dent")
    controller.set_box(r2, 0, Box(296, 414, 388, 474))
    window.view.select_defect(0)
    shot(window, "flag-editing.png")

    apply_theme(app, "dark")
    window.refresh_icons()
    window.set_current(row[paths[0]])
    shot(window, "main-window-dark.png")
    apply_theme(app, "light")
    window.refresh_icons()

    from lriad_desktop.ui.dialogs.settings_dialog import SettingsDialog

    dialog = SettingsDialog(settings, window)
    dialog.show()
    shot(dialog, "settings-dialog.png")
    dialog.editors["model_dir"].edit.setText(str(folder))
    shot(dialog, "settings-dialog-not-a-model.png")
    dialog.close()

    from lriad_desktop.ui.dialogs.camera_dialog import CameraDialog

    cam = CameraDialog(controller.runner, (), window)
    cam.show()
    cam.start(str(video(work / "belt.avi")))
    wait(lambda: cam.last_frame is not None and cam.last_frame.index > 20)
    shot(cam, "camera-dialog.png")
    cam.close()

    # "Improve model": a real `lriad train` run on the flags above, followed in the training panel
    import json

    from lriad_desktop.core.training_runs.protocol import RECIPE_ENV

    os.environ.setdefault(RECIPE_ENV, json.dumps({"preset": "cpu_tiny", "max_steps": 12, "batch_size": 4,
                                                  "max_completion_length": 32}))
    window.actions_["improve"].trigger()
    panel = window.improving.panel()
    panel.resize(1000, 800)
    wait(lambda: controller.training.progress.step >= 6, 900_000)
    shot(panel, "improve-training.png")
    wait(lambda: not controller.training.running, 900_000)
    shot(panel, "improve-finished.png")
    panel.activate()
    window.versions.show()
    shot(window.versions.dialog(), "versions-dialog.png")
    window.versions.dialog().close()
    panel.close()
    window.close()
    QTimer.singleShot(0, app.quit)
    store.close()
    # the real thing: `lriad gui … --screenshot` inspects the first image with the model and draws what it said
    import subprocess

    target = args.out / "cli-screenshot.png"
    env = dict(os.environ, LRIAD_DATA_DIR=str(work / "cli-data"))  # a first run: nothing inspected yet
    subprocess.run([sys.executable, "-m", "lriad_desktop", "gui", str(paths[0]), "--model", str(model),
                    "--device", "cpu", "--screenshot", str(target)], check=True, cwd=OUT.parents[1], env=env)
    print("wrote", target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
