"""Quitting at once loses nothing: the lanes that write are waited for to the end (a queued review write still
runs), a model call is left behind after a moment, and the real app, closed while its model still loads,
ends with every review and setting in place. (How long a quit takes: benchmarks/bench_quit.py.)"""

import os
import subprocess
import sys
import threading
from pathlib import Path

from lriad_desktop.core.inspection.finding import Verdict
from lriad_desktop.core.store.review import ReviewKind
from lriad_desktop.core.settings import load_settings
from lriad_desktop.core.store.review_store import ReviewStore
from lriad_desktop.ui.tasks import TaskRunner

REPO = Path(__file__).resolve().parents[1]


def test_a_quit_waits_for_the_writes_even_queued_ones_and_leaves_a_stuck_model_call(qapp):
    runner = TaskRunner()
    gate, stuck, written = threading.Event(), threading.Event(), []

    def first(ctx):
        gate.wait(60)
        written.append("first")

    runner.submit(first, lane="store")
    runner.submit(lambda ctx: written.append("queued behind it"), lane="store")  # still queued at the quit
    runner.submit(lambda ctx: stuck.wait(60), lane="model")  # a call deep in torch: it can't see a cancel
    threading.Timer(0.2, gate.set).start()
    runner.shutdown()
    assert written == ["first", "queued behind it"]  # both reviews are in, the second ran though cancelled
    assert runner.left_running == 1  # the model call is left behind, not waited for
    stuck.set()
    assert runner.wait_left(60) and runner.left_running == 0


CHILD = r'''
import sys
from PySide6.QtCore import QTimer
import lriad_desktop.ui.window.app as app
from lriad_desktop.core.inspection.finding import Verdict
from lriad_desktop.core.store.review import with_verdict

shown = app.MainWindow.show


def show(window):
    shown(window)
    c = window.controller

    def poll():
        if c.queue.rowCount() == 1 and not c.scanning:
            c.update_settings(c.settings.with_changes(reviewer_name="Ada"))
            assert c.edit(0, lambda r: with_verdict(r, Verdict.ANOMALOUS), "Flag")
            print("closed while", c.inspection.state.name, flush=True)
            window.close()  # at once, the model still loading: the process must end with all of it saved
            return
        QTimer.singleShot(10, poll)

    poll()


app.MainWindow.show = show
sys.exit(app.run_gui([sys.argv[1]]))
'''


def test_closing_the_app_while_the_model_loads_keeps_every_review_and_setting(tmp_path, monkeypatch):
    data = tmp_path / "data"
    image = REPO / "resources" / "samples" / "capsule_contamination.jpg"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "LRIAD_DATA_DIR": str(data),
           "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run([sys.executable, "-c", CHILD, str(image)], env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "closed while LOADING" in done.stdout and "Traceback" not in done.stderr
    monkeypatch.setenv("LRIAD_DATA_DIR", str(data))  # the app's own store and settings, as a restart finds them
    settings, notes = load_settings()
    with ReviewStore.open() as store:
        states = store.reviewed_states()
    assert settings.reviewer_name == "Ada" and notes == []
    assert len(states) == 1 and states[0].review is not None
    review = states[0].review.review
    assert review.kind is ReviewKind.FLAG and review.verdict is Verdict.ANOMALOUS
    assert states[0].review.reviewer == "Ada"
