"""Issue 33 #17 in the real main window: L after drawing a box doesn't type an "l" into the label field, and at
1600 × 1000 a very long file (and folder) name neither widens the side panel nor pushes its Build button and its
Label and Note fields off screen."""

from __future__ import annotations

from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtWidgets import QWidget

from lriad_desktop.ui.narrow_panel import ElidedLabel, breakable, plain
from test_ui_helpers import (UI_MARKS, add_and_wait, deliver, hand_finding, make_window,  # noqa: F401
                             no_leaked_windows, part_image, wait_shown)

pytestmark = UI_MARKS

LONG_NAME = ("hazelnut_line4_station2_camera_left_2026-12-04T17-55-12.123456_batch0042_frame000917_exposure12ms"
             "_gain3dB.png")


def _drag(qtbot, view, a: QPointF, b: QPointF, steps: int = 4) -> None:
    vp = view.viewport()
    start, end = view.mapFromScene(a), view.mapFromScene(b)
    qtbot.mousePress(vp, Qt.MouseButton.LeftButton, pos=start)
    for i in range(1, steps + 1):
        qtbot.mouseMove(vp, pos=start + (end - start) * i / steps)
    qtbot.mouseRelease(vp, Qt.MouseButton.LeftButton, pos=end)


def _in_sight(widget: QWidget, viewport: QWidget) -> bool:
    """The whole width of `widget` lies inside the scroll area's viewport."""
    left = widget.mapTo(viewport, QPoint(0, 0)).x()
    return widget.isVisible() and left >= 0 and left + widget.width() <= viewport.width()


def test_l_after_drawing_a_box_does_not_type_into_the_label_field(qtbot, make_window, tmp_path):
    img = part_image(tmp_path / "a.png", size=(640, 480))
    window = make_window(load_model=False)
    add_and_wait(qtbot, window, [img], 1)
    deliver(window, img, hand_finding(img, size=(640, 480)))
    wait_shown(qtbot, window, img)
    panel = window.review_panel
    qtbot.keyClick(window, Qt.Key.Key_B)
    _drag(qtbot, window.view, QPointF(300, 300), QPointF(420, 400))
    assert panel.label_box.hasFocus() and panel.label_box.currentText() == ""  # the new box's type, typed next
    qtbot.keyClick(panel.label_box, Qt.Key.Key_L)  # the inspector presses L, as the app says, to give it its type
    assert panel.label_box.currentText() == ""
    qtbot.keyClicks(panel.label_box, "crack")
    assert panel.label_box.currentText() == "crack"  # not "lcrack"
    qtbot.keyClick(panel.label_box, Qt.Key.Key_Return)
    entry = window.current_entry()
    assert [d.label for d in entry.review.review.defects] == ["scratch", "crack"]
    assert window.statusBar().currentMessage() == "Box 2: crack"

    qtbot.keyClick(window, Qt.Key.Key_L)  # L on the image: the field, its text selected; L again types an "l"
    assert panel.label_box.hasFocus()
    qtbot.keyClick(panel.label_box, Qt.Key.Key_L)
    qtbot.keyClicks(panel.label_box, "leak")
    assert panel.label_box.currentText() == "leak"  # one L is the key, the next ones are letters
    qtbot.keyClick(panel.label_box, Qt.Key.Key_Escape)
    window.close()


def test_a_long_file_name_keeps_the_side_panel_on_screen_at_1600_by_1000(qtbot, make_window, tmp_path):
    folder = tmp_path / "photos_line4_station2_camera_left_very_long_folder_name_for_the_hazelnut_line"
    folder.mkdir()
    img = part_image(folder / LONG_NAME, size=(640, 480))
    window = make_window(load_model=False)
    window.resize(1600, 1000)
    add_and_wait(qtbot, window, [img], 1)
    deliver(window, img, hand_finding(img, size=(640, 480)))
    wait_shown(qtbot, window, img)
    qtbot.wait(50)
    scroll = window.findChild(QWidget, "sideScroll")
    viewport = scroll.viewport()
    assert scroll.horizontalScrollBar().maximum() == 0 and scroll.widget().width() == viewport.width()
    title = window.finding_panel.title
    assert title.text() == LONG_NAME and title.toolTip() == str(img)  # the whole name and path are kept
    assert "…" in title.elided() and title.elided().startswith("hazelnut_") and title.elided().endswith(".png")
    review = window.review_panel
    for widget in (window.bank_row.rebuild_button, review.label_box, review.note, review.accept_button,
                   review.object_name, window.finding_panel.meta, review.object_hint, window.reference_strip.title):
        assert _in_sight(widget, viewport), widget
    assert LONG_NAME not in review.object_hint.text()  # breakable: it wraps where the name has '_'
    assert plain(review.object_hint.text()).startswith("Changes the prompt of the 1 queued image in photos_line4")

    qtbot.keyClick(window, Qt.Key.Key_B)  # the label field below the fold comes into view when the box is drawn
    _drag(qtbot, window.view, QPointF(300, 300), QPointF(420, 400))
    top = review.label_box.mapTo(viewport, QPoint(0, 0)).y()
    assert review.label_box.hasFocus() and 0 <= top and top + review.label_box.height() <= viewport.height()
    assert window.grab().save(str(tmp_path / "long-name-1600x1000.png"))
    window.close()


def test_breakable_and_elided_text():
    assert breakable("a short name_with_id") == "a short name_with_id"  # short words stay
    long = "photos_line4_station2_camera"
    assert breakable(long) == "photos_\u200bline4_\u200bstation2_\u200bcamera" and plain(breakable(long)) == long
    assert ElidedLabel("x").minimumSizeHint().width() == 0
