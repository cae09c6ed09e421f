"""Issue 33 #19 in the real main window: after Ctrl+Z the queue shows one selected row (the image the undo went
back to), never the old one too; the queue's chips never overlap."""

from __future__ import annotations

from PySide6.QtCore import Qt

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
