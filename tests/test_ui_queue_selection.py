"""Issue 33 #19 in the real main window: after Ctrl+Z the queue shows one selected row (the image the undo went
back to), never the old one too; the label chips of boxes that start close together never overlap; a notice too
long for the status bar is read whole."""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import QRectF, Qt

from lriad_desktop.core.inspection.finding import Box, Defect

from test_ui_helpers import (UI_MARKS, add_and_wait, deliver, hand_finding, make_window,  # noqa: F401
                             no_leaked_windows, part_image, wait_shown)

pytestmark = UI_MARKS


def _selected_rows(window) -> list[int]:
    return sorted({i.row() for i in window.queue_view.selectionModel().selectedIndexes()})


def test_undo_goes_back_to_one_selected_row(qtbot, make_window, tmp_path):
    paths = [part_image(tmp_path / f"p{i}.png", seed=i) for i in range(3)]
    window = make_window(load_model=False)
    add_and_wait(qtbot, window, paths, 3)
    for p in paths:
        deliver(window, p, hand_finding(p))
    wait_shown(qtbot, window, paths[0])
    qtbot.keyClick(window, Qt.Key.Key_Space)  # accept the first, on to the second
    qtbot.waitUntil(lambda: window.controller.queue.entry(0).review is not None)
    assert window.current_row == 1 and _selected_rows(window) == [1]
    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # undo: back to the first image
    qtbot.waitUntil(lambda: window.controller.queue.entry(0).review is None)
    assert window.current_row == 0
    assert _selected_rows(window) == [0]  # one row looks selected, not the first and the second
    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    qtbot.waitUntil(lambda: window.controller.queue.entry(0).review is not None)
    assert window.current_row == 0 and _selected_rows(window) == [0]
    window.go(1)
    assert _selected_rows(window) == [1]
    window.close()


def _chip_on_screen(view, item):
    """The chip's rectangle in the view's pixels (it ignores the zoom: its size is its size on screen)."""
    at = view.mapFromScene(item.chip.scenePos())
    r = item.chip.boundingRect()
    return QRectF(at.x(), at.y() - r.height(), r.width(), r.height())


def test_label_chips_of_boxes_that_start_close_together_do_not_overlap(qtbot, make_window, tmp_path):
    img = part_image(tmp_path / "a.png", size=(640, 480))
    window = make_window(load_model=False)
    add_and_wait(qtbot, window, [img], 1)
    finding = hand_finding(img, size=(640, 480))
    boxes = (Defect("scratch", Box(100, 100, 220, 200)), Defect("contamination", Box(104, 103, 180, 190)),
             Defect("crack", Box(110, 98, 300, 150)), Defect("hole", Box(560, 100, 630, 150)),
             Defect("missing_part", Box(570, 104, 620, 140)))
    deliver(window, img, replace(finding, defects=boxes))
    wait_shown(qtbot, window, img)
    view = window.view
    for zoom in (None, 2.0):
        if zoom:
            view.zoom_by(zoom)
        chips = [_chip_on_screen(view, item) for item in view.box_items()]
        assert len(chips) == 5
        assert not [(a, b) for i, a in enumerate(chips) for b in chips[i + 1:] if a.intersects(b)]
    window.close()


def test_a_notice_too_long_for_the_status_bar_is_read_whole_above_the_review_panel(qtbot, make_window, tmp_path):
    """The status bar cuts a message off at its permanent widgets (counts, model, watch): one that doesn't fit is
    shown whole, wrapped, above the review panel too, and goes when the status bar's does."""
    window = make_window(load_model=False)
    window.resize(1280, 800)
    add_and_wait(qtbot, window, [part_image(tmp_path / "a.png")], 1)
    qtbot.wait(50)
    status, bar = window.inspection_status, window.statusBar()
    assert 0 < status.message_room() < bar.width()
    long = ("Box 3 has no type yet: pick or type it, Enter (Esc: later, with L) · " * 3).strip(" ·")
    window.show_notice(long)
    assert not status.fits(long) and window.notice_label.isVisible() and window.notice_label.text() == long
    bar.clearMessage()  # the status bar's message timed out: the copy goes with it
    assert not window.notice_label.isVisible()
    window.show_notice("Undone: Accept (a.png)")
    assert status.fits("Undone: Accept (a.png)") and not window.notice_label.isVisible()
    window.show_notice("The model can't be loaded", sticky=True)  # a sticky one stays
    bar.clearMessage()
    assert window.notice_label.isVisible()
    window.close()
