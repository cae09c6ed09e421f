"""A review store held by another program: the window keeps running, says so, and saves the review when the
store is free (a real SQLite lock held by a real second process)."""

import subprocess
import sys

from PySide6.QtCore import QTimer

from lriad_desktop.core.inspection.finding import Finding, Verdict
from lriad_desktop.core.store.review import ImageStatus
from test_ui_helpers import (UI_MARKS, add_and_wait, deliver, make_window,  # noqa: F401
                             no_leaked_windows, part_image, wait_shown)

pytestmark = UI_MARKS

HOLDER = ("import sqlite3, sys\n"
          "db = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
          "db.execute('BEGIN IMMEDIATE')\n"
          "print('held', flush=True)\n"
          "sys.stdin.readline()\n"
          "db.execute('COMMIT')\n")


def _normal(path):
    return Finding(Verdict.NORMAL, (), ("Looks fine.",), "", "hand-made", str(path), (320, 240), "washer")


def test_a_store_held_by_another_program_never_freezes_the_window(qtbot, make_window, tmp_path):
    images = [part_image(tmp_path / "a.png"), part_image(tmp_path / "b.png", seed=1)]
    window = make_window(load_model=False)
    add_and_wait(qtbot, window, images, 2)
    for img in images:
        deliver(window, img, _normal(img))
    wait_shown(qtbot, window, images[0])
    controller, status = window.controller, window.statusBar()
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(controller.store.path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    ticks = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start(20)
    try:
        assert holder.stdout.readline().strip() == "held"
        entry = controller.queue.entry(0)
        assert controller.accept(0)  # taken: it waits for the store, the window doesn't
        assert controller.store.current_review(entry.image_id) is None
        qtbot.waitUntil(lambda: "is busy: another program is writing to it" in status.currentMessage(),
                        timeout=20_000)
        seen = len(ticks)
        qtbot.waitUntil(lambda: len(ticks) > seen + 5)  # the event loop runs while the store is held
        assert not controller.accept(0) and "still waiting for the review store" in status.currentMessage()
        assert controller.undo() is None and "Wait a moment" in status.currentMessage()
        assert controller.toggle_verdict(1)  # another image's change waits in line too
    finally:
        holder.communicate("release\n", timeout=30)
        timer.stop()
    qtbot.waitUntil(lambda: "free again: 2 waiting changes saved" in status.currentMessage(), timeout=20_000)
    store = controller.store
    assert store.current_review(entry.image_id).review.verdict is Verdict.NORMAL
    assert entry.status is ImageStatus.ACCEPTED_NORMAL
    second = controller.queue.entry(1)
    assert store.current_review(second.image_id).review.verdict is Verdict.ANOMALOUS
    assert controller.undo() is not None and store.current_review(second.image_id) is None  # undo as usual
    window.close()
