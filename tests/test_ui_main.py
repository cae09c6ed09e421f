"""The main window with real widgets, a real store and the real tiny model: getting images in, inspecting."""

import io

import numpy as np
from PIL import Image
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QGuiApplication, QImage
from PySide6.QtWidgets import QApplication

from lriad_desktop.core.store.review import ImageStatus
from lriad_desktop.core.settings import Settings
from lriad_desktop.ui.review.inspection import ModelState
from test_ui_helpers import UI_MARKS, add_and_wait, make_window, no_leaked_windows, part_image  # noqa: F401

pytestmark = UI_MARKS


def _drop(widget, paths):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    pos = QPointF(widget.width() / 2, widget.height() / 2)
    enter = QDragEnterEvent(pos.toPoint(), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, enter)
    assert enter.isAccepted()
    drop = QDropEvent(pos, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, drop)
    assert drop.isAccepted()


def test_dropping_a_folder_fills_the_queue(qtbot, make_window, tmp_path):
    folder = tmp_path / "washers"
    (folder / "line2").mkdir(parents=True)
    for i in range(3):
        part_image(folder / f"p{i}.png", seed=i)
    part_image(folder / "line2" / "deep.png")
    (folder / "notes.txt").write_text("not an image")
    window = make_window()
    _drop(window.view.viewport(), [folder])  # dropped on the image: the window takes it
    qtbot.waitUntil(lambda: window.controller.queue.rowCount() == 4 and not window.controller.scanning)
    names = [e.name for e in window.controller.queue.entries()]
    assert names == ["p0.png", "p1.png", "p2.png", "deep.png"]
    assert all(e.status is ImageStatus.NOT_INSPECTED for e in window.controller.queue.entries())
    # the first image becomes current and is shown; the status bar counts the queue
    qtbot.waitUntil(lambda: window.view.image is not None)
    assert window.current_row == 0 and window.view.image.size == (320, 240)
    assert window.inspection_status.counts_label.text().startswith("4 images · 0 inspected")
    assert str(folder) in window.controller.settings.recent_folders
    window.close()


def test_a_real_inspection_through_the_task_api(qtbot, make_window, tmp_path):
    img = part_image(tmp_path / "one.png")
    window = make_window()
    qtbot.waitUntil(lambda: window.controller.inspection.state is ModelState.READY)
    assert window.inspection_status.model_label.text().endswith(" · ready")
    assert "ready on cpu" in window.inspection_status.model_label.toolTip()
    add_and_wait(qtbot, window, [img], 1)
    assert window.inspection_status.counts_label.text().startswith("1 image · 0 inspected")  # one, not "1 images"
    with qtbot.waitSignal(window.controller.inspection.batchFinished, timeout=60000):
        qtbot.keyClick(window, Qt.Key.Key_I)
    entry = window.controller.queue.entry(0)
    assert entry.finding is not None and entry.status in (ImageStatus.UNPARSED, ImageStatus.NORMAL,
                                                          ImageStatus.DEFECT)
    assert not entry.busy and entry.image_id is not None
    stored = window.controller.store.latest_finding(entry.image_id)
    assert stored.raw_text == entry.finding.raw_text and stored.model_version == entry.finding.model_version
    assert window.finding_panel.meta.text().startswith("Model ")
    assert "1 inspected" in window.inspection_status.counts_label.text()
    window.close()


def test_unreadable_files_are_errors_and_the_batch_goes_on(qtbot, make_window, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    for i in range(3):
        part_image(folder / f"good{i}.png", size=(96, 64), seed=i)
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (80, 80, 3), dtype=np.uint8)).save(buf, "PNG")
    (folder / "cut.png").write_bytes(buf.getvalue()[:300])
    (folder / "text.png").write_text("hello")
    Image.new("RGB", (4000, 10)).save(folder / "linescan.png")  # one line-scan strip: refused, the chunk goes on
    window = make_window(Settings(batch_size=2))
    add_and_wait(qtbot, window, [folder], 6)
    with qtbot.waitSignal(window.controller.inspection.batchFinished, timeout=120000):
        window.actions_["inspect_all"].trigger()
        assert window.inspection_status.progress.isVisible()
    by_name = {e.name: e for e in window.controller.queue.entries()}
    assert by_name["cut.png"].status is ImageStatus.ERROR and "truncated" in by_name["cut.png"].error
    assert by_name["text.png"].status is ImageStatus.ERROR and "not an image" in by_name["text.png"].error
    strip = by_name["linescan.png"]
    assert strip.status is ImageStatus.ERROR and "4000x10" in strip.error and "200:1" in strip.error
    assert all(by_name[f"good{i}.png"].finding is not None for i in range(3))
    assert "3 errors" in window.inspection_status.counts_label.text()
    assert not window.inspection_status.progress.isVisible()
    window.set_current(window.controller.queue.row_of(by_name["text.png"].path))
    assert window.finding_panel.badge.text() == "CAN'T INSPECT IMAGE"
    window.set_current(window.controller.queue.row_of(strip.path))
    assert window.finding_panel.defect_summary.text() == strip.error
    window.close()


def test_pause_resume_and_cancel_a_batch(qtbot, make_window, tmp_path):
    paths = [part_image(tmp_path / f"p{i}.png", size=(64, 48), seed=i) for i in range(6)]
    window = make_window(Settings(batch_size=1))
    insp = window.controller.inspection
    qtbot.waitUntil(lambda: insp.state is ModelState.READY)
    add_and_wait(qtbot, window, paths, 6)

    def inspected():
        return sum(e.finding is not None for e in window.controller.queue.entries())

    def pause_and_settle():
        qtbot.keyClick(window, Qt.Key.Key_P, Qt.KeyboardModifier.ControlModifier)
        # the chunk under way ends, and none follows it (a finished chunk starts the next one at once)
        qtbot.waitUntil(lambda: not insp._running)
        count = inspected()
        insp.enqueue([])  # what every enqueue and every finished chunk does: start the next chunk, unless paused
        assert not insp._running and inspected() == count and insp.busy
        return count

    window.actions_["inspect_all"].trigger()
    first = pause_and_settle()
    assert insp.paused and window.actions_["pause"].text() == "&Resume" and window.inspection_status.progress.isVisible()
    qtbot.keyClick(window, Qt.Key.Key_P, Qt.KeyboardModifier.ControlModifier)  # resume
    qtbot.waitUntil(lambda: inspected() > first)
    pause_and_settle()
    with qtbot.waitSignal(insp.batchFinished, timeout=60000):
        window.actions_["cancel"].trigger()
    entries = window.controller.queue.entries()
    assert not any(e.busy for e in entries) and any(e.finding is None for e in entries)
    assert not window.inspection_status.progress.isVisible() and not insp.busy
    window.close()


def test_auto_inspect_on_arrival_and_paste_from_the_clipboard(qtbot, make_window, tmp_path):
    window = make_window(Settings(auto_inspect=True))
    image = QImage(120, 80, QImage.Format.Format_RGB32)
    image.fill(Qt.GlobalColor.darkGray)
    QGuiApplication.clipboard().setImage(image)
    with qtbot.waitSignal(window.controller.inspection.batchFinished, timeout=60000):
        window.actions_["paste"].trigger()
    entry = window.controller.queue.entry(0)
    assert "captures" in entry.path and entry.name.startswith("clipboard-") and entry.finding is not None
    window.close()


def test_a_big_folder_arrives_in_chunks(qtbot, make_window, tmp_path):
    folder = tmp_path / "big"
    folder.mkdir()
    for i in range(1200):  # names only: the scan never opens the files
        (folder / f"img{i:05d}.png").write_bytes(b"")
    window = make_window(load_model=False)
    inserts = []
    window.controller.queue.rowsInserted.connect(lambda *a: inserts.append(a))
    add_and_wait(qtbot, window, [folder], 1200)
    assert len(inserts) > 1  # the queue filled in chunks, not in one blocking go
    assert window.controller.queue.entry(1199).name == "img01199.png"
    window.close()


def test_keyboard_navigation(qtbot, make_window, tmp_path):
    paths = [part_image(tmp_path / f"n{i}.png", size=(64, 48), seed=i) for i in range(3)]
    window = make_window(load_model=False)
    add_and_wait(qtbot, window, paths, 3)
    qtbot.waitUntil(lambda: window.current_row == 0)
    qtbot.keyClick(window, Qt.Key.Key_D)
    assert window.current_row == 1
    qtbot.keyClick(window, Qt.Key.Key_Right)
    assert window.current_row == 2
    qtbot.keyClick(window, Qt.Key.Key_D)  # the last image: stays
    assert window.current_row == 2 and "Last image" in window.statusBar().currentMessage()
    qtbot.keyClick(window, Qt.Key.Key_A)
    assert window.current_row == 1
    qtbot.keyClick(window, Qt.Key.Key_U)  # next unreviewed wraps around
    assert window.current_row == 2
    qtbot.mouseClick(window.queue_view.viewport(), Qt.MouseButton.LeftButton,
                     pos=window.queue_view.visualRect(window.controller.queue.index(0)).center())
    assert window.current_row == 0
    window.close()
