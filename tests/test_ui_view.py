"""The image view: boxes where the finding's pixels are, zoom and pan, overlay toggles, large images."""

import threading

from PIL import Image
from PySide6.QtCore import QPoint, QPointF, QRectF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication

from lriad_desktop.core.inspection.finding import Box
from lriad_desktop.ui.window import main_window as main_window_module
from test_ui_helpers import (UI_MARKS, add_and_wait, deliver, hand_finding, make_window,  # noqa: F401
                             no_leaked_windows, part_image, wait_shown)

pytestmark = UI_MARKS


def _corners(item):
    r = item.mapRectToScene(item.rect())
    return (round(r.left(), 3), round(r.top(), 3), round(r.right(), 3), round(r.bottom(), 3))


def test_the_findings_box_is_drawn_where_its_pixels_are(qtbot, make_window, tmp_path):
    img = part_image(tmp_path / "w.png", size=(640, 480))
    window = make_window(load_model=False)
    add_and_wait(qtbot, window, [img], 1)
    deliver(window, img, hand_finding(img, Box(120, 80, 200, 140), size=(640, 480)))
    wait_shown(qtbot, window, img)
    view = window.view
    assert view.image_rect() == QRectF(0, 0, 640, 480)  # scene units are image pixels
    (item,) = view.box_items()
    assert _corners(item) == (120, 80, 200, 140)
    assert item.chip.text == "1  scratch" and item.chip.isVisible()
    # what the inspector sees: the box's centre on screen maps back to the box's centre in the image
    on_screen = view.mapFromScene(QPointF(160, 110))
    back = view.mapToScene(on_screen)
    assert abs(back.x() - 160) <= 1 / view.scale_factor + 1 and abs(back.y() - 110) <= 1 / view.scale_factor + 1
    assert view.viewport().rect().contains(on_screen)
    # the reasoning is shown as numbered steps, with model and time
    assert window.finding_panel.badge.text() == "DEFECTIVE"
    assert "<td" in window.finding_panel.reasoning.toHtml() and "scratch like this" in \
        window.finding_panel.reasoning.toPlainText()
    assert "412 ms" in window.finding_panel.meta.text() and "hand-made" in window.finding_panel.meta.text()
    # overlay key, label chips, line width
    qtbot.keyClick(window, Qt.Key.Key_H)
    assert not item.isVisible()
    qtbot.keyClick(window, Qt.Key.Key_H)
    assert item.isVisible()
    qtbot.keyClick(window, Qt.Key.Key_H, Qt.KeyboardModifier.ShiftModifier)
    assert not view.box_items()[0].chip.isVisible() and window.controller.settings.show_labels is False
    window.controller.update_settings(window.controller.settings.with_changes(box_line_width=5.0))
    assert view.box_items()[0].pen().widthF() == 5.0 and view.box_items()[0].pen().isCosmetic()
    window.close()


def _wheel(view, steps=1):
    pos = QPointF(view.viewport().rect().center())
    ev = QWheelEvent(pos, view.viewport().mapToGlobal(pos), QPoint(), QPoint(0, 120 * steps), Qt.MouseButton.NoButton,
                     Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(view.viewport(), ev)


def test_zoom_fit_100_and_the_zoom_is_kept_between_images(qtbot, make_window, tmp_path):
    a = part_image(tmp_path / "a.png", size=(640, 480))
    b = part_image(tmp_path / "b.png", size=(800, 600), seed=1)
    window = make_window(load_model=False)
    add_and_wait(qtbot, window, [a, b], 2)
    wait_shown(qtbot, window, a, with_finding=False)
    view = window.view
    assert view.fitting
    qtbot.keyClick(window, Qt.Key.Key_1)
    assert view.scale_factor == 1.0 and not view.fitting
    _wheel(view)
    assert abs(view.scale_factor - 1.2) < 1e-9
    _wheel(view, -2)
    assert abs(view.scale_factor - 1 / 1.2) < 1e-9
    qtbot.keyClick(window, Qt.Key.Key_D)
    wait_shown(qtbot, window, b, with_finding=False)
    assert abs(view.scale_factor - 1 / 1.2) < 1e-9  # kept when moving to the next image
    qtbot.keyClick(window, Qt.Key.Key_0)
    assert view.fitting
    fitted = view.mapFromScene(view.image_rect()).boundingRect()
    assert view.viewport().rect().adjusted(-1, -1, 1, 1).contains(fitted)
    window.close()


def test_a_large_image_is_decoded_off_the_ui_thread(qtbot, make_window, tmp_path, monkeypatch):
    big = tmp_path / "big.png"
    Image.new("RGB", (8000, 6000), (90, 94, 99)).save(big, compress_level=1)
    threads = []
    decode = main_window_module.decode_display_image

    def recording(path):
        threads.append(threading.current_thread())
        return decode(path)

    monkeypatch.setattr(main_window_module, "decode_display_image", recording)
    window = make_window(load_model=False)
    add_and_wait(qtbot, window, [big], 1)
    qtbot.waitUntil(lambda: window.view.image is not None, timeout=60000)
    assert threads and threads[0] is not threading.main_thread()
    levels = window.view.image.levels
    assert levels[0].width() == 8000 and levels[-1].width() <= 1024 and len(levels) == 4
    deliver(window, big, hand_finding(big, Box(7000, 5000, 7900, 5900), size=(8000, 6000)))
    qtbot.waitUntil(lambda: len(window.view.box_items()) == 1)
    assert _corners(window.view.box_items()[0]) == (7000, 5000, 7900, 5900)
    assert not window.view.grab().isNull()  # paints from a small pyramid level at this zoom
    window.close()
