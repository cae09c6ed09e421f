"""File → Watch Folder in the real main window: images landing in a real folder are queued and inspected by
the real tiny model through the one task API; a restart inspects nothing twice."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt

from lriad_desktop.core.settings import Settings
from lriad_desktop.core.store.review_store import ReviewStore
from test_ui_helpers import UI_MARKS, deliver, hand_finding, make_window, no_leaked_windows, part_image  # noqa: F401

pytestmark = UI_MARKS



def _inspected(window) -> int:
    q = window.controller.queue
    return sum(1 for r in range(q.rowCount()) if q.entry(r).finding is not None)


def test_watch_mode_inspects_images_as_they_land(qtbot, make_window, tmp_path):
    folder, camera = tmp_path / "line4", tmp_path / "camera"
    folder.mkdir()
    camera.mkdir()
    part_image(folder / "already-there.png", seed=1)
    store_path = tmp_path / "reviews.sqlite3"
    window = make_window(Settings(auto_inspect=False), store_path=store_path)
    mode = window.watch_mode
    mode._ask_folder = lambda _parent, _start: str(folder)  # the folder dialog's answer
    window.actions_["watch_folder"].trigger()
    assert mode.watching and window.actions_["watch_folder"].isChecked()
    assert "Watching" in window.statusBar().currentMessage()
    qtbot.waitUntil(lambda: _inspected(window) == 1, timeout=60000)  # the one already there, though auto is off

    for i in range(2):  # the camera writes elsewhere and moves each frame in
        part_image(camera / f"frame{i}.png", seed=10 + i, scratch=i == 0)
        (camera / f"frame{i}.png").rename(folder / f"frame{i}.png")
    (folder / "frame2.png.part").write_bytes(b"half a frame")  # still being written: not taken
    qtbot.waitUntil(lambda: _inspected(window) == 3, timeout=60000)
    names = sorted(window.controller.queue.entry(r).name for r in range(window.controller.queue.rowCount()))
    assert names == ["already-there.png", "frame0.png", "frame1.png"]
    assert mode.status.isVisible() and mode.status.text() == "◉ Watching line4 · 3 landed · 2 new"  # 1st on screen
    assert window.grab().save(str(tmp_path / "watch-mode.png"))

    window.actions_["watch_folder"].trigger()  # again: stop
    assert not mode.watching and not mode.status.isVisible()
    part_image(folder / "after-stop.png", seed=20)
    qtbot.wait(1000)
    assert window.controller.queue.rowCount() == 3
    window.close()

    with ReviewStore.open(store_path) as store:
        assert len(store.lookup_paths([str(folder / n) for n in names])) == 3

    # a new session watching the same folder: the three keep their findings, only the new one is inspected
    window = make_window(Settings(auto_inspect=False), store_path=store_path)
    inspected = []
    window.controller.inspection.outcome.connect(lambda out: inspected.append(Path(out.path).name))
    window.watch_mode.start(str(folder))
    qtbot.waitUntil(lambda: window.controller.queue.rowCount() == 4 and _inspected(window) == 4, timeout=60000)
    qtbot.wait(300)
    assert inspected == ["after-stop.png"]
    window.close()


def test_a_folder_that_cannot_be_watched_is_one_notice(qtbot, make_window, tmp_path):
    window = make_window(load_model=False)
    mode = window.watch_mode
    mode._ask_folder = lambda _parent, _start: ""  # the dialog was cancelled
    window.actions_["watch_folder"].trigger()
    assert not mode.watching and not window.actions_["watch_folder"].isChecked()
    mode.start(str(tmp_path / "gone"))
    qtbot.waitUntil(lambda: not mode.watching, timeout=10000)
    assert "The folder to watch does not exist" in window.statusBar().currentMessage()
    assert not window.actions_["watch_folder"].isChecked()
    window.close()


def test_one_watch_a_folder_the_apps_or_lriad_watchs(qtbot, make_window, tmp_path):
    """The app's Watch Folder takes the folder's watch lock as `lriad watch` does: while one watches, the other is
    refused with one sentence (two would inspect and publish every image twice); stopping lets it go."""
    from lriad_desktop.core.line.watch import folder_lock

    folder = tmp_path / "line4"
    folder.mkdir()
    window = make_window(load_model=False)
    mode = window.watch_mode
    other = folder_lock(folder.resolve())  # what a running `lriad watch` holds
    assert other.acquire()
    try:
        mode.start(str(folder))
        qtbot.waitUntil(lambda: not mode.watching, timeout=10000)
        assert window.statusBar().currentMessage() == (
            f"Another watch (lriad watch or the app's Watch Folder) is already watching {folder.resolve()}: two "
            "would inspect and publish every image twice (stop the other one first)")
        assert not window.actions_["watch_folder"].isChecked() and not mode.status.isVisible()
    finally:
        other.release()
    part_image(folder / "frame.png", seed=3)
    mode.start(str(folder))  # the other one stopped: the app watches, and holds the lock
    qtbot.waitUntil(lambda: window.controller.queue.rowCount() == 1, timeout=30000)  # its task is under the lock
    probe = folder_lock(folder.resolve())
    assert mode.watching and not probe.acquire()
    mode.stop()
    qtbot.waitUntil(probe.acquire, timeout=10000)  # released once the watching task ends
    probe.release()
    window.close()


def test_an_image_that_lands_never_takes_the_inspectors_keys(qtbot, make_window, tmp_path):
    """Issue 33 #15: an image landing while the inspector reviews another is queued and marked new; the image on
    screen stays current, so Space accepts what the inspector looked at, not the arrival."""
    reviewing, folder = tmp_path / "reviewing", tmp_path / "line4"
    reviewing.mkdir()
    folder.mkdir()
    paths = [part_image(reviewing / f"part{i}.png", seed=i) for i in range(2)]
    window = make_window(Settings(auto_inspect=False))
    q = window.controller.queue
    window.controller.add_paths([str(reviewing)])
    qtbot.waitUntil(lambda: q.rowCount() == 2 and not window.controller.scanning)
    for p in paths:
        deliver(window, p, hand_finding(p))
    window.set_current(0)
    assert window.current_entry().path == str(paths[0])
    window.watch_mode.start(str(folder))
    part_image(tmp_path / "frame.png", seed=7)
    (tmp_path / "frame.png").rename(folder / "frame.png")
    qtbot.waitUntil(lambda: q.rowCount() == 3 and _inspected(window) == 3, timeout=60000)
    landed = q.row_of(str(folder / "frame.png"))
    assert window.current_row == 0 and window.current_entry().path == str(paths[0])  # still the image on screen
    assert window.queue_view.currentIndex().row() == 0
    assert q.entry(landed).landed and q.unseen_count() == 1  # the queue marks it new
    assert window.watch_mode.status.text() == "◉ Watching line4 · 1 landed · 1 new"
    assert window.statusBar().currentMessage() == "frame.png landed · marked new in the queue"
    window.grab().save(str(tmp_path / "landed.png"))

    qtbot.keyClick(window, Qt.Key.Key_Space)  # accepts part0, the image the inspector looked at
    qtbot.waitUntil(lambda: q.entry(0).review is not None)
    assert q.entry(landed).review is None
    assert window.current_row == 1  # and moves on in the queue's order, not to the arrival

    window.set_current(landed)  # looked at: no longer new
    assert not q.entry(landed).landed and q.unseen_count() == 0
    assert window.watch_mode.status.text() == "◉ Watching line4 · 1 landed"
    window.watch_mode.stop()
    window.close()
