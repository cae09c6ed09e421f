"""The review loop with the mouse and the keyboard: flags written at once, undo/redo, a new window sees them."""

from PySide6.QtCore import QPointF, Qt

from lriad_desktop.core.inspection.finding import Box, Finding, Verdict
from lriad_desktop.core.store.review import ImageStatus, ReviewKind
from test_ui_helpers import (UI_MARKS, add_and_wait, deliver, hand_finding, make_window,  # noqa: F401
                             no_leaked_windows, part_image, wait_shown)

pytestmark = UI_MARKS


def _normal(path, size=(640, 480)):
    return Finding(Verdict.NORMAL, (), ("Looks fine.",), "", "hand-made", str(path), size, "washer")


def _drag(qtbot, view, a, b, steps=4):
    vp = view.viewport()
    start, end = view.mapFromScene(a), view.mapFromScene(b)
    qtbot.mousePress(vp, Qt.MouseButton.LeftButton, pos=start)
    for i in range(1, steps + 1):
        qtbot.mouseMove(vp, pos=start + (end - start) * i / steps)
    qtbot.mouseRelease(vp, Qt.MouseButton.LeftButton, pos=end)


def _close(box, expected, tol):
    return all(abs(x - y) <= tol for x, y in zip(box.as_list(ndigits=None), expected))


def test_a_box_drawn_with_the_mouse_is_a_flag_in_the_store_and_undo_reverts_it(qtbot, make_window, tmp_path):
    img = part_image(tmp_path / "a.png", size=(640, 480))
    window = make_window(load_model=False)
    add_and_wait(qtbot, window, [img], 1)
    deliver(window, img, _normal(img))
    wait_shown(qtbot, window, img)
    view, store = window.view, window.controller.store
    qtbot.keyClick(window, Qt.Key.Key_B)
    assert view.draw_mode
    _drag(qtbot, view, QPointF(100, 120), QPointF(300, 260))
    assert not view.draw_mode  # one drag, one box
    entry = window.controller.queue.entry(0)
    current = store.current_review(entry.image_id)
    tol = 1 / view.scale_factor + 1
    assert current.review.kind is ReviewKind.FLAG and current.review.verdict is Verdict.ANOMALOUS
    (defect,) = current.review.defects
    assert defect.label == "" and _close(defect.box, (100, 120, 300, 260), tol)  # no type until one is chosen
    assert entry.status is ImageStatus.FLAGGED and len(view.box_items()) == 1
    assert view.box_items()[0].chip.text == "1  no type yet" and view.selected_index() == 0
    assert "Verdict flagged by" in window.review_panel.state.text()
    assert window.review_panel.label_box.lineEdit().hasFocus()  # asked for at once
    qtbot.keyClick(window.review_panel.label_box.lineEdit(), Qt.Key.Key_Escape)  # later
    assert view.hasFocus()
    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert store.current_review(entry.image_id) is None and store.review_history(entry.image_id) == []
    assert entry.status is ImageStatus.NORMAL and view.box_items() == []
    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert store.current_review(entry.image_id).review == current.review
    window.close()


def test_move_resize_and_delete_a_box(qtbot, make_window, tmp_path):
    img = part_image(tmp_path / "a.png", size=(640, 480))
    window = make_window(load_model=False)
    add_and_wait(qtbot, window, [img], 1)
    deliver(window, img, hand_finding(img, Box(120, 80, 200, 140), size=(640, 480)))
    wait_shown(qtbot, window, img)
    view, store = window.view, window.controller.store
    image_id = window.controller.queue.entry(0).image_id
    tol = 1 / view.scale_factor + 1
    _drag(qtbot, view, QPointF(160, 110), QPointF(260, 210))  # grab inside: move
    moved = store.current_review(image_id).review
    assert moved.kind is ReviewKind.BOX and _close(moved.defects[0].box, (220, 180, 300, 240), tol)  # box only
    _drag(qtbot, view, QPointF(300, 240), QPointF(340, 300))  # grab the bottom-right corner: resize
    resized = store.current_review(image_id).review.defects[0].box
    assert _close(resized, (220, 180, 340, 300), tol)
    assert view.selected_index() == 0
    qtbot.keyClick(window, Qt.Key.Key_Delete)
    assert store.current_review(image_id).review.defects == () and view.box_items() == []
    for _ in range(3):
        qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert store.current_review(image_id) is None
    assert [round(v) for v in view.box_items()[0].box().as_list()] == [120, 80, 200, 140]
    window.close()


def test_accept_flag_label_note_and_a_new_window_shows_them(qtbot, make_window, tmp_path):
    folder = tmp_path / "washers"
    folder.mkdir()
    a, b, c = (part_image(folder / f"{n}.png", size=(640, 480), seed=i) for i, n in enumerate("abc"))
    window = make_window(load_model=False)
    add_and_wait(qtbot, window, [folder], 3)
    deliver(window, a, hand_finding(a, size=(640, 480)))
    deliver(window, b, _normal(b))
    deliver(window, c, Finding(Verdict.UNPARSED, raw_text="???", model_version="hand-made", image_size=(640, 480)))
    wait_shown(qtbot, window, a)
    q, store = window.controller.queue, window.controller.store
    qtbot.keyClick(window, Qt.Key.Key_Space)  # accept and next
    assert window.current_row == 1
    accepted = store.current_review(q.entry(0).image_id)
    assert accepted.review.kind is ReviewKind.ACCEPT and accepted.review.defects == q.entry(0).finding.defects
    qtbot.keyClick(window, Qt.Key.Key_V)  # the model said normal: wrong
    assert window.view.draw_mode  # a defect needs its box: drawing starts at once
    qtbot.keyClick(window, Qt.Key.Key_Escape)
    assert not window.view.draw_mode
    qtbot.keyClick(window, Qt.Key.Key_L)
    qtbot.keyClicks(window.review_panel.label_box.lineEdit(), "crack")
    qtbot.keyClick(window.review_panel.label_box.lineEdit(), Qt.Key.Key_Return)
    qtbot.keyClick(window, Qt.Key.Key_N)
    qtbot.keyClicks(window.review_panel.note, "hairline near the rim")
    qtbot.keyClick(window.review_panel.note, Qt.Key.Key_Return)
    flag = store.current_review(q.entry(1).image_id).review
    assert flag.kind is ReviewKind.FLAG and flag.verdict is Verdict.ANOMALOUS
    assert [d.label for d in flag.defects] == ["crack"] and flag.note == "hairline near the rim"
    window.view.setFocus()
    qtbot.keyClick(window, Qt.Key.Key_D)
    assert "Space: say Normal or Defective" in window.finding_panel.banner.source.text()
    assert "accepts" not in window.finding_panel.banner.source.text()  # nothing to accept: it doesn't promise it
    qtbot.keyClick(window, Qt.Key.Key_Space)  # an unreadable answer can't be accepted: Normal / Defective offered
    menu = window.boxes.verdict_menu
    qtbot.waitUntil(lambda: menu.isVisible())
    assert [a.text() for a in menu.actions()] == ["Normal: the part is good", "Defective: draw where"]
    menu.close()  # dismissed: nothing written
    assert window.current_row == 2 and store.current_review(q.entry(2).image_id) is None
    window.close()

    again = make_window(load_model=False)  # a new window on the same store
    add_and_wait(qtbot, again, [folder], 3)
    statuses = [e.status for e in again.controller.queue.entries()]
    assert statuses == [ImageStatus.ACCEPTED_DEFECTIVE, ImageStatus.FLAGGED, ImageStatus.UNPARSED]
    again.set_current(1)
    assert "Verdict flagged by" in again.review_panel.state.text()
    assert again.review_panel.note.text() == "hairline near the rim"
    assert again.finding_panel.badge.text() == "⚑ DEFECTIVE"  # the inspector's verdict, big, marked as a flag
    assert "Model said: normal" in again.finding_panel.banner.source.text()  # the model's beneath it
    assert again.controller.store.flagged_images()[0].path == str(b)
    again.close()


def test_space_on_an_unreadable_answer_says_normal_or_defective_directly(qtbot, make_window, tmp_path):
    folder = tmp_path / "washers"
    folder.mkdir()
    paths = [part_image(folder / f"{n}.png", size=(640, 480), seed=i) for i, n in enumerate("abc")]
    window = make_window(load_model=False)
    add_and_wait(qtbot, window, [folder], 3)
    for p in paths:
        deliver(window, p, Finding(Verdict.UNPARSED, raw_text="Step 2d\": [0, 0", model_version="hand-made",
                                   image_size=(640, 480)))
    wait_shown(qtbot, window, paths[0])
    q, store = window.controller.queue, window.controller.store
    qtbot.keyClick(window, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: window.boxes.verdict_menu.isVisible())
    window.boxes.verdict_menu.actions()[0].trigger()  # Normal
    qtbot.waitUntil(lambda: store.current_review(q.entry(0).image_id) is not None)
    said = store.current_review(q.entry(0).image_id).review
    assert said.verdict is Verdict.NORMAL and said.kind is ReviewKind.FLAG
    assert window.current_row == 1  # and on to the next image
    qtbot.keyClick(window, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: window.boxes.verdict_menu.isVisible())
    window.boxes.verdict_menu.actions()[1].trigger()  # Defective: its box is drawn next
    qtbot.waitUntil(lambda: store.current_review(q.entry(1).image_id) is not None)
    assert store.current_review(q.entry(1).image_id).review.verdict is Verdict.ANOMALOUS
    assert window.view.draw_mode and window.current_row == 1
    window.close()


def test_object_name_per_folder_and_per_image_is_remembered(qtbot, make_window, tmp_path):
    folder = tmp_path / "parts"
    folder.mkdir()
    a, b = part_image(folder / "a.png", size=(96, 64)), part_image(folder / "b.png", size=(96, 64), seed=2)
    window = make_window()
    add_and_wait(qtbot, window, [a, b], 2)
    panel, c = window.review_panel, window.controller
    assert panel.object_name.text() == "parts"  # the folder's name until told otherwise
    panel.object_name.clear()
    qtbot.keyClicks(panel.object_name, "metal nut")
    qtbot.keyClick(panel.object_name, Qt.Key.Key_Return)
    assert c.store.object_name_for(b) == "metal nut" and c.object_name_for(str(b)) == "metal nut"
    panel.object_scope.setCurrentIndex(1)  # for this image only
    panel.object_name.clear()
    qtbot.keyClicks(panel.object_name, "screw")
    qtbot.keyClick(panel.object_name, Qt.Key.Key_Return)
    assert c.object_name_for(str(a)) == "screw" and c.object_name_for(str(b)) == "metal nut"
    with qtbot.waitSignal(c.inspection.batchFinished, timeout=60000):
        qtbot.keyClick(window, Qt.Key.Key_I)
    entry = c.queue.entry(0)
    assert entry.finding.object_name == "screw" and c.store.image(entry.image_id).object_name == "screw"
    window.close()


def test_the_label_picker_offers_the_known_defect_kinds_after_the_stores_labels(make_window, tmp_path):
    from lriad_desktop.core.defect_kinds import DEFECT_KINDS
    from lriad_desktop.core.inspection.finding import Box, Defect, Verdict
    from lriad_desktop.core.store.review import Review
    from test_ui_helpers import part_image

    window = make_window(load_model=False)
    c = window.controller
    assert c.known_labels() == [k.name for k in DEFECT_KINDS]
    image = c.store.add_image(part_image(tmp_path / "a.png"), "washer")
    c.store.save_review(image.id, Review(ReviewKind.FLAG, Verdict.ANOMALOUS, (Defect("burr", Box(1, 1, 9, 9)),
                                                                               Defect("crack", Box(2, 2, 8, 8)))))
    assert c.known_labels() == ["burr", "crack"] + [k.name for k in DEFECT_KINDS if k.name != "crack"]
    for label in ("missing_part", "missing part", "Missing-Part"):  # one kind, however it was spelt
        c.store.save_review(image.id, Review(ReviewKind.FLAG, Verdict.ANOMALOUS, (Defect(label, None),)))
    labels = c.known_labels()
    assert labels[0] == "missing part" and "missing_part" not in labels and labels.count("missing part") == 1
    window.close()
