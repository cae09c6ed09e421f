"""The review loop as an inspector lives it: a box redrawn in place, the inspector's decision up front, re-inspection
with the model in use, device choices this computer has, the help page, drops, the last queue and the reviewer."""

from PySide6.QtCore import QMimeData, QPoint, QPointF, QRectF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QDialogButtonBox

from lriad_desktop.core.devices import DeviceOption
from lriad_desktop.core.inspection.finding import Box, Verdict
from lriad_desktop.core.store.review import ImageStatus, ReviewKind, with_verdict
from lriad_desktop.core.settings import Settings
from lriad_desktop.ui.window.help_page import HelpPage
from lriad_desktop.ui.review.queue_view import agreement_chip, chip_text
from lriad_desktop.ui.dialogs.settings_dialog import SettingsDialog
from test_ui_helpers import (UI_MARKS, add_and_wait, deliver, hand_finding, make_window,  # noqa: F401
                             no_leaked_windows, part_image, wait_shown)
from test_ui_review import _close, _drag, _normal

pytestmark = UI_MARKS


def test_b_with_a_box_selected_redraws_that_box_and_it_is_a_box_correction(qtbot, make_window, tmp_path):
    img = part_image(tmp_path / "washer.png")
    window = make_window(load_model=False)
    add_and_wait(qtbot, window, [img], 1)
    deliver(window, img, hand_finding(img, box=Box(120, 80, 200, 140), label="scratch"))
    wait_shown(qtbot, window, img)
    view, c = window.view, window.controller
    view.select_defect(0)
    qtbot.keyClick(window, Qt.Key.Key_B)
    _drag(qtbot, view, QPointF(30, 40), QPointF(90, 100))
    entry = c.queue.entry(0)
    review = c.store.current_review(entry.image_id).review
    (defect,) = review.defects  # replaced, not a second box
    assert review.kind is ReviewKind.BOX and review.verdict is Verdict.ANOMALOUS
    assert defect.label == "scratch" and _close(defect.box, (30, 40, 90, 100), 1 / view.scale_factor + 1)
    assert view.selected_index() == 0 and len(view.box_items()) == 1  # the new box is the selected one
    assert entry.status is ImageStatus.CORRECTED and chip_text(entry)[0] == "✎ corrected"
    assert "Box corrected by" in window.review_panel.state.text()
    # with no box selected, B adds a box, which has no type and is selected
    view.select_defect(-1)
    qtbot.keyClick(window, Qt.Key.Key_B)
    _drag(qtbot, view, QPointF(200, 150), QPointF(260, 200))
    review = c.store.current_review(entry.image_id).review
    assert [d.label for d in review.defects] == ["scratch", ""] and view.selected_index() == 1
    window.close()


def test_badges_banner_and_counts_say_the_inspectors_decision(qtbot, make_window, tmp_path):
    paths = [part_image(tmp_path / f"{name}.png", seed=i) for i, name in enumerate(("good", "bad", "capsule"))]
    window = make_window(load_model=False)
    add_and_wait(qtbot, window, paths, 3)
    deliver(window, paths[0], _normal(paths[0], size=(320, 240)))
    deliver(window, paths[1], hand_finding(paths[1]))
    deliver(window, paths[2], _normal(paths[2], size=(320, 240)))
    c = window.controller
    assert c.accept(0) and c.accept(1)
    assert c.edit(2, lambda r: with_verdict(r, Verdict.ANOMALOUS), "Flag")  # the model said normal: wrong
    chips = [chip_text(e)[0] for e in c.queue.entries()]
    assert chips == ["✓ normal", "✓ defective", "⚑ flagged defective"]  # with the verdict it stands at
    window.set_current(2)
    wait_shown(qtbot, window, paths[2])
    banner = window.finding_panel.banner
    assert banner.badge.text() == "⚑ DEFECTIVE" and "Model said: normal" in banner.source.text()
    window.set_current(1)
    wait_shown(qtbot, window, paths[1])
    assert banner.badge.text() == "✓ DEFECTIVE"  # accepted: the same verdict, another mark
    qtbot.waitUntil(lambda: "2 defective" in window.inspection_status.counts_label.text())
    assert "3 reviewed (1 flagged)" in window.inspection_status.counts_label.text()
    window.grab().save(str(tmp_path / "decision.png"))
    window.close()


def test_reinspect_flagged_with_the_model_in_use_says_whether_it_now_agrees(qtbot, make_window, tmp_path):
    paths = [part_image(tmp_path / f"p{i}.png", seed=i) for i in range(2)]
    window = make_window()  # the real tiny model
    c = window.controller
    add_and_wait(qtbot, window, paths, 2)
    deliver(window, paths[0], hand_finding(paths[0]))
    deliver(window, paths[1], hand_finding(paths[1]))
    assert c.edit(0, lambda r: with_verdict(r, Verdict.NORMAL), "Flag") and c.accept(1)
    assert window.actions_["reinspect_flagged"].text().startswith("Re-inspect &Flagged with ")
    flagged_id, accepted_id = c.queue.entry(0).image_id, c.queue.entry(1).image_id
    before = len(c.store.inspection_history(flagged_id))
    before_accepted = len(c.store.inspection_history(accepted_id))
    with qtbot.waitSignal(c.notice, timeout=120000,
                          check_params_cb=lambda text: text.startswith("Re-inspected 1 flagged image with")) as sig:
        window.actions_["reinspect_flagged"].trigger()
    assert len(c.store.inspection_history(flagged_id)) == before + 1  # the old inspection is kept
    assert len(c.store.inspection_history(accepted_id)) == before_accepted  # only the flagged image went again
    entry = c.queue.entry(0)
    chip = agreement_chip(entry)
    assert chip is not None and chip[0].startswith(("✓", "✗"))  # the queue says whether it agrees now
    assert ("agree" in sig.args[0]) and (entry.review.review.kind is ReviewKind.FLAG)  # the review stands
    window.close()


def test_reinspect_all_from_the_menu_the_shortcut_and_the_improve_panel(qtbot, make_window, tmp_path):
    """Every way to Re-inspect All queues every inspected or reviewed image again (a NameError once made all
    three do nothing)."""
    paths = [part_image(tmp_path / f"q{i}.png", seed=i) for i in range(2)]
    window = make_window()  # the real tiny model
    c = window.controller
    add_and_wait(qtbot, window, paths, 2)
    deliver(window, paths[0], hand_finding(paths[0]))
    deliver(window, paths[1], hand_finding(paths[1]))
    assert c.accept(0)
    ids = [c.queue.entry(r).image_id for r in range(2)]

    def history() -> list[int]:
        return [len(c.store.inspection_history(i)) for i in ids]

    def is_done(text: str) -> bool:
        return text.startswith("Re-inspected 2 images with")

    before = history()
    with qtbot.waitSignal(c.notice, timeout=120000, check_params_cb=is_done):
        window.actions_["reinspect_all"].trigger()
    assert history() == [n + 1 for n in before]  # both images, the reviewed and the merely inspected one
    window.activateWindow()
    window.setFocus()
    with qtbot.waitSignal(c.notice, timeout=120000, check_params_cb=is_done):
        qtbot.keyClick(window, Qt.Key.Key_I, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert history() == [n + 2 for n in before]
    panel = window.improving.panel()
    with qtbot.waitSignal(c.notice, timeout=120000, check_params_cb=is_done):
        panel.reinspect_all_button.click()
    assert history() == [n + 3 for n in before]
    assert "Re-inspecting 2 images" in panel.status.text()
    panel.close()
    window.close()


def test_device_choices_are_what_this_computer_has(qtbot):
    dialog = SettingsDialog(Settings(device="cuda"))
    dialog.show()
    dialog.show_devices((DeviceOption("auto", "Best this computer has", True),
                         DeviceOption("cuda", "NVIDIA GPU", False, "no NVIDIA GPU found on this computer"),
                         DeviceOption("mps", "Apple GPU", False, "no Apple GPU (Metal) on this computer"),
                         DeviceOption("cpu", "Processor (CPU)", True)))
    combo = dialog.editors["device"]
    model = combo.model()
    i = combo.findData("cuda")
    assert not model.item(i).isEnabled() and "no NVIDIA GPU" in combo.itemText(i)
    assert model.item(combo.findData("cpu")).isEnabled()
    assert "would run on the processor" in dialog.device_note.text()  # the saved choice it lacks is said
    assert "max new tokens" in dialog.editors["max_new_tokens"].toolTip().lower()  # plain words, tech in the tip
    dialog.close()


def test_f1_opens_a_help_page_on_the_review_loop_with_a_close_button(qtbot, make_window, tmp_path):
    window = make_window(load_model=False)
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window)
    qtbot.keyClick(window, Qt.Key.Key_F1)
    page = window._help
    assert isinstance(page, HelpPage), [a.text() for a in window.actions() if "F1" in a.shortcut().toString()]
    qtbot.waitExposed(page)
    text = page.text.toPlainText().lower()
    assert page.buttons.button(QDialogButtonBox.StandardButton.Close) is not None
    page.grab().save(str(tmp_path / "help.png"))
    assert "the review loop" in text and "flag the verdict" in text and "improve model" in text
    assert "ctrl+i" in text  # the keys are on the page too
    qtbot.mouseClick(page.buttons.button(QDialogButtonBox.StandardButton.Close), Qt.MouseButton.LeftButton)
    assert not page.isVisible()
    window.close()


def _mime(paths) -> QMimeData:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    return mime


def test_a_drag_highlights_what_dropping_does_and_the_drop_says_how_many_came(qtbot, make_window, tmp_path):
    folder = tmp_path / "washers"
    folder.mkdir()
    for i in range(3):
        part_image(folder / f"p{i}.png", seed=i)
    window = make_window(load_model=False)
    mime = _mime([folder])
    enter = QDragEnterEvent(QPoint(50, 50), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, enter)
    assert window.view.drop_hint == "Drop to add 1 folder to the queue"
    with qtbot.waitSignal(window.controller.notice, timeout=20000,
                          check_params_cb=lambda text: "3 images" in text or "Added 3" in text):
        QApplication.sendEvent(window, QDropEvent(QPointF(50, 50), Qt.DropAction.CopyAction, mime,
                                                  Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier))
    assert window.view.drop_hint == ""
    qtbot.waitUntil(lambda: window.controller.queue.rowCount() == 3 and not window.controller.scanning)
    window.close()


def test_the_last_queue_reopens_and_the_reviewer_is_asked_once(qtbot, make_window, tmp_path):
    folder = tmp_path / "capsules"
    folder.mkdir()
    for i in range(2):
        part_image(folder / f"c{i}.png", seed=i)
    window = make_window(load_model=False)
    assert window.reviewer_prompt.isVisible()
    window.reviewer_prompt._answer("Ada")
    assert not window.reviewer_prompt.isVisible() and window.controller.reviewer_name() == "Ada"
    add_and_wait(qtbot, window, [folder], 2)
    deliver(window, folder / "c0.png", _normal(folder / "c0.png", size=(320, 240)))
    assert window.controller.accept(0)
    record = window.controller.store.current_review(window.controller.queue.entry(0).image_id)
    assert record.reviewer == "Ada"
    settings = window.controller.settings
    assert str(folder) in settings.last_queue and settings.reviewer_asked
    window.close()
    again = make_window(settings, load_model=False)
    assert not again.reviewer_prompt.isVisible()
    assert again.intake.reopen_last_queue() == 1
    qtbot.waitUntil(lambda: again.controller.queue.rowCount() == 2 and not again.controller.scanning)
    again.close()


def test_open_and_export_dialogs_start_in_the_folder_used_last(qtbot, make_window, tmp_path, monkeypatch):
    from lriad_desktop.ui.window import window_io
    shelf = tmp_path / "shelf"
    (shelf / "washers").mkdir(parents=True)
    part_image(shelf / "washers" / "w.png")
    out = tmp_path / "exports"
    out.mkdir()
    starts = []

    def pick(folder):  # the modal folder dialog answers `folder`; where it started is recorded
        return lambda _parent, _title, start="", *a, **k: starts.append(start) or str(folder)

    window = make_window(load_model=False)
    monkeypatch.setattr(window_io.QFileDialog, "getExistingDirectory", pick(shelf / "washers"))
    window.intake.open_folder()
    qtbot.waitUntil(lambda: window.controller.queue.rowCount() == 1 and not window.controller.scanning)
    window.intake.open_folder()
    assert starts[-1] == str(shelf)  # the second time: where the first folder was picked from
    deliver(window, shelf / "washers" / "w.png", hand_finding(shelf / "washers" / "w.png"))
    assert window.controller.accept(0)
    monkeypatch.setattr(window_io.QFileDialog, "getExistingDirectory", pick(out))
    window.exports.ask("yolo")
    window.exports.ask("yolo")
    assert starts[-1] == str(out) and window.exports.start_folder() == out
    window.close()


def test_for_this_folder_says_what_it_will_change(qtbot, make_window, tmp_path):
    folder = tmp_path / "washer" / "line3"
    folder.mkdir(parents=True)
    paths = [part_image(folder / f"w{i}.png", seed=i) for i in range(2)]
    window = make_window(load_model=False)
    add_and_wait(qtbot, window, paths, 2)
    wait_shown(qtbot, window, paths[0], with_finding=False)
    panel = window.review_panel
    assert panel.object_hint.text() == ("Changes the prompt of the 2 queued images in line3/ (and any added there "
                                        "later); now “washer”. An image with its own name keeps it.")
    panel.object_scope.setCurrentIndex(1)
    assert panel.object_hint.text() == "Changes the prompt of w0.png only; now “washer”."
    window.close()


def test_a_label_chip_stays_inside_the_image(qtbot, make_window, tmp_path):
    img = part_image(tmp_path / "edge.png")
    window = make_window(load_model=False)
    add_and_wait(qtbot, window, [img], 1)
    deliver(window, img, hand_finding(img, box=Box(250, 0, 320, 60), label="contamination"))  # top-right corner
    wait_shown(qtbot, window, img)
    (item,) = window.view.box_items()
    view = window.view
    # on screen (the chip keeps its size while the image zooms): inside the image's rectangle
    chip = item.chip.deviceTransform(view.viewportTransform()).mapRect(item.chip.boundingRect())
    image = view.mapFromScene(QRectF(0, 0, 320, 240)).boundingRect()
    assert chip.right() <= image.right() + 1 and chip.top() >= image.top() - 1, (chip, image)
    assert "contamination" in item.chip.text
    window.close()
