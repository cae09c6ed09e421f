"""How long does the UI thread stall while the app works? `python benchmarks/bench_ui.py [--model DIR]`.

A QTimer ticks every 5 ms on the UI thread; the longest gap between ticks (minus the 5 ms)
is the worst stall an inspector could feel. Measured while: the model loads, a batch of
images is inspected (images/s too), a folder of 10,000 files is opened, and an
8000×6000 image is decoded and shown. Runs offscreen; prints a table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TICK_MS = 5


class StallMeter:
    """Records the gaps between 5 ms timer ticks on the UI thread."""

    def __init__(self) -> None:
        from PySide6.QtCore import QTimer

        self.gaps: list[float] = []
        self._last = time.perf_counter()
        self.timer = QTimer()
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(self._tick)

    def _tick(self) -> None:
        now = time.perf_counter()
        self.gaps.append((now - self._last) * 1000)
        self._last = now

    def start(self) -> None:
        self.gaps.clear()
        self._last = time.perf_counter()
        self.timer.start()

    def stop(self) -> dict[str, float]:
        self.timer.stop()
        gaps = sorted(self.gaps) or [0.0]
        p99 = gaps[min(len(gaps) - 1, int(len(gaps) * 0.99))]
        return {"max_stall_ms": max(0.0, gaps[-1] - TICK_MS), "p99_stall_ms": max(0.0, p99 - TICK_MS),
                "median_tick_ms": statistics.median(gaps), "ticks": len(self.gaps)}


def wait(app, cond, timeout_s: float = 600.0) -> float:
    start = time.perf_counter()
    while not cond():
        if time.perf_counter() - start > timeout_s:
            raise TimeoutError("benchmark step timed out")
        app.processEvents()
        time.sleep(0.001)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, default=None, help="model folder (default: bundled, else random tiny)")
    parser.add_argument("--images", type=int, default=24, help="images in the inspected batch")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--folder-files", type=int, default=10_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="lriad-bench-"))
    os.environ["LRIAD_DATA_DIR"] = str(work / "data")

    import numpy as np
    from PIL import Image

    from lriad_desktop.core.paths import bundled_model_dir

    model = args.model or (bundled_model_dir() if (bundled_model_dir() / "config.json").is_file() else None)
    if model is None:
        from training.bundled_model.tiny_model import TinyModelSpec, build_random_model

        model = build_random_model(work / "random-tiny", TinyModelSpec(), seed=0)
        model_note = "random-init tiny Qwen2.5-VL"
    else:
        model_note = str(model)

    from lriad_desktop.core.settings import Settings
    from lriad_desktop.core.store.review_store import ReviewStore
    from lriad_desktop.ui.window.app import create_app
    from lriad_desktop.ui.window.controller import AppController
    from lriad_desktop.ui.review.inspection import ModelState
    from lriad_desktop.ui.window.main_window import MainWindow
    from lriad_desktop.ui.theme import apply_theme

    app = create_app()
    apply_theme(app, "light")
    store = ReviewStore.open()
    settings = Settings(model_dir=str(model), device="cpu", batch_size=args.batch_size,
                        max_new_tokens=args.max_new_tokens)
    controller = AppController(store, settings, persist_settings=False)
    window = MainWindow(controller, load_model=False)
    window.show()
    meter = StallMeter()
    rows: list[tuple[str, dict[str, float], str]] = []

    meter.start()
    controller.inspection.load()
    secs = wait(app, lambda: controller.inspection.state in (ModelState.READY, ModelState.FAILED))
    rows.append(("model load (background)", meter.stop(), f"{secs:.1f} s"))
    if controller.inspection.state is ModelState.FAILED:
        print("model failed to load:", controller.inspection.state_text, file=sys.stderr)
        return 1

    folder = work / "batch"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(args.images):
        Image.fromarray(rng.integers(60, 200, (480, 640, 3), dtype=np.uint8)).save(folder / f"img{i:04d}.png")
    controller.add_paths([str(folder)])
    wait(app, lambda: controller.queue.rowCount() == args.images and not controller.scanning)
    meter.start()
    t0 = time.perf_counter()
    controller.inspect_all()
    wait(app, lambda: not controller.inspection.busy and all(e.finding or e.error for e in controller.queue.entries()))
    secs = time.perf_counter() - t0
    rows.append((f"inspect all ({args.images} images, batch {args.batch_size})", meter.stop(),
                 f"{args.images / secs:.2f} images/s"))

    big_folder = work / "ten-thousand"
    big_folder.mkdir()
    for i in range(args.folder_files):
        (big_folder / f"f{i:05d}.png").write_bytes(b"")
    meter.start()
    secs = wait(app, lambda: False or _add_once(controller, big_folder) or
                (controller.queue.rowCount() == args.images + args.folder_files and not controller.scanning))
    rows.append((f"open a folder of {args.folder_files} files", meter.stop(), f"{secs:.2f} s to fill the queue"))

    huge = work / "huge.png"
    Image.new("RGB", (8000, 6000), (120, 124, 128)).save(huge, compress_level=1)
    controller.add_paths([str(huge)])
    wait(app, lambda: controller.queue.row_of(str(huge.resolve())) is not None and not controller.scanning)
    meter.start()
    window.set_current(controller.queue.row_of(str(huge.resolve())))
    secs = wait(app, lambda: window.view.image is not None and window.view.image.path == str(huge.resolve()))
    window.view.viewport().repaint()
    window.view.actual_size()
    window.view.viewport().repaint()
    window.view.fit()
    window.view.viewport().repaint()
    rows.append(("show an 8000×6000 image (+ 100 % and fit)", meter.stop(), f"{secs:.2f} s decode to display"))

    window.close()
    store.close()
    print(f"LR-IAD Desktop UI benchmark · model: {model_note} · CPU threads: {os.cpu_count()}")
    print(f"{'while':<46} {'max stall':>10} {'p99 stall':>10}  result")
    for name, m, result in rows:
        print(f"{name:<46} {m['max_stall_ms']:>7.1f} ms {m['p99_stall_ms']:>7.1f} ms  {result}")
    return 0


_added: set[str] = set()


def _add_once(controller, folder: Path) -> bool:
    """Queue `folder` the first time it is asked (inside the timed wait, so the scan is measured)."""
    if str(folder) not in _added:
        _added.add(str(folder))
        controller.add_paths([str(folder)])
    return False


if __name__ == "__main__":
    sys.exit(main())
