"""How long does quitting take? `python benchmarks/bench_quit.py [--model DIR] [--runs N]`.

Starts the real app (`run_gui`, offscreen, a scratch data folder) in a child process and closes its window:
(1) 3 s after start, while the model is still loading; (2) during Inspect All of the sample images, once
the first finding is in. Prints, per case, how long `close()` took and how long until the process was gone
(what the inspector waits for before the app can be started again).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r'''
import sys, time
from PySide6.QtCore import QTimer
import lriad_desktop.ui.window.app as app

case = sys.argv[1]
shown = app.MainWindow.show


def close(window):
    print(f"CLOSE {time.time():.4f}", flush=True)
    window.close()
    print(f"CLOSED {time.time():.4f}", flush=True)


def show(window):
    shown(window)
    if case == "loading":
        QTimer.singleShot(3000, lambda: close(window))
        return
    c = window.controller
    started = []

    def poll():
        if not started and c.inspection.inspector is not None and c.queue.rowCount() and not c.scanning:
            started.append(window.inspect_all())
        if started and any(c.queue.entry(r).finding is not None for r in range(c.queue.rowCount())):
            close(window)  # a finding is in, the next ones are being generated
            return
        QTimer.singleShot(20, poll)

    poll()


app.MainWindow.show = show
sys.exit(app.run_gui(sys.argv[3:], model=sys.argv[2] or None))
'''


def measure(case: str, model: str, images: list[str]) -> tuple[float, float]:
    """(seconds in close(), seconds from close() until the process was gone) for one run."""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "LRIAD_DATA_DIR": tempfile.mkdtemp(prefix="lriad-quit-"),
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-c", CHILD, case, model, *images], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env=env, cwd=ROOT)
    closing = closed = None
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("CLOSE "):
            closing = float(line.split()[1])
        elif line.startswith("CLOSED "):
            closed = float(line.split()[1])
    proc.wait(timeout=300)
    gone = time.time()
    if closing is None or closed is None:
        raise SystemExit(f"{case}: the window never closed (exit status {proc.returncode})")
    return closed - closing, gone - closing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="", help="model folder (default: the app's, the bundled one)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    images = sorted(str(p) for p in (ROOT / "resources" / "samples").glob("*.jpg"))
    print(f"{'case':<22} {'close() s':>10} {'to exit s':>10}  (median of {args.runs}; max)")
    for case, title in (("loading", "closed while loading"), ("inspecting", "closed in Inspect All")):
        figures = [measure(case, args.model, images) for _ in range(args.runs)]
        in_close, to_exit = [f[0] for f in figures], [f[1] for f in figures]
        print(f"{title:<22} {statistics.median(in_close):>10.2f} {statistics.median(to_exit):>10.2f}  "
              f"(max {max(in_close):.2f} / {max(to_exit):.2f})")


if __name__ == "__main__":
    main()
