"""*Teach a Product* in the main window (real widgets, a real store, the session's tiny model): the Model menu's
action opens the dialog; a folder of good images (its masks left out) is recorded under the product's name and
its anomaly map built with progress; *Inspect a Folder…* queues and inspects parts with that map; Stop cancels
a build, leaving no bank; the queue's selection can be taught; bad input is one clear line."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt

from lriad_desktop.core.anomaly_map.banks import BANK_FOLDER
from lriad_desktop.core.anomaly_map.teaching import TAUGHT_NOTE
from lriad_desktop.ui.maps import teach_product
from lriad_desktop.ui.maps.teach_product import TeachProductDialog
from test_ui_helpers import UI_MARKS, add_and_wait, make_window, no_leaked_windows, part_image  # noqa: F401
from training.synthetic_data.samples import generate_line_sample

pytestmark = UI_MARKS


def _fabric(folder: Path, n: int, start: int = 0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(start, start + n):
        generate_line_sample(np.random.default_rng([7, i]), "fabric").image.save(folder / f"{i:02d}.png")
        out.append(folder / f"{i:02d}.png")
    return out


def _dataset(root: Path) -> tuple[list[Path], list[Path]]:
    good = _fabric(root / "train" / "good", 8)
    test = _fabric(root / "test" / "cut", 2, start=20)
    mask = root / "ground_truth" / "cut" / "20_mask.png"
    mask.parent.mkdir(parents=True)
    part_image(mask)
    return good, test


def _open_dialog(qtbot, window) -> TeachProductDialog:
    action = window.actions_["teach_product"]
    assert action in window.menuBar().actions()[5].menu().actions()  # the Model menu
    action.trigger()
    dialog = window.teaching.dialog
    qtbot.waitUntil(dialog.isVisible)
    return dialog


def _choose(monkeypatch, folder: Path) -> None:
    monkeypatch.setattr(teach_product.QFileDialog, "getExistingDirectory", lambda *a, **k: str(folder))


def test_teach_a_product_from_a_folder_builds_its_map_and_inspects_with_it(qtbot, make_window, tmp_path,
                                                                         monkeypatch):
    good, test = _dataset(tmp_path / "fabric")
    window = make_window()
    dialog = _open_dialog(qtbot, window)
    assert not dialog.teach_button.isEnabled()  # nothing to teach from yet
    _choose(monkeypatch, tmp_path / "fabric" / "train" / "good")
    qtbot.mouseClick(dialog.folder_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "8 images" in dialog.folder_label.text())
    assert dialog.name_edit.text() == "fabric"  # from where the images lie; the inspector may change it
    assert "the model is not shown them" in dialog.references_note.text()
    seen = []
    window.controller.maps.progress.connect(lambda _name, done, total: seen.append((done, total)))
    qtbot.mouseClick(dialog.teach_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.built, timeout=180000)
    assert dialog.inspect_button.isVisible() and not dialog.teach_button.isVisible()
    assert "8 good images of “fabric” recorded" in dialog.status.text() and "built from 8 good images" in \
        dialog.status.text()
    assert seen and seen[-1] == (8, 8)
    store = window.controller.store
    goods = store.good_images("fabric")
    assert sorted(g.path for g in goods) == sorted(str(p.resolve()) for p in good)
    assert store.current_review(goods[0].image_id).review.note == TAUGHT_NOTE
    assert store.golden_samples("fabric") == []  # the tiny test model takes no references
    assert len(list((Path(store.path).parent / BANK_FOLDER).glob("*.safetensors"))) == 1
    assert window.controller.maps.status("fabric").usable
    _choose(monkeypatch, tmp_path / "fabric" / "test")
    with qtbot.waitSignal(window.controller.inspection.batchFinished, timeout=180000):
        qtbot.mouseClick(dialog.inspect_button, Qt.MouseButton.LeftButton)
    assert not dialog.isVisible()
    q = window.controller.queue
    assert sorted(e.path for e in q.entries()) == sorted(str(p.resolve()) for p in test)
    qtbot.waitUntil(lambda: all(e.model_finding is not None for e in q.entries()), timeout=180000)
    assert all(e.model_finding.anomaly_map is not None and e.model_finding.anomaly_map.bank_images == 8
               for e in q.entries())
    window.close()


def test_stop_cancels_the_maps_build_and_leaves_no_bank(qtbot, make_window, tmp_path, monkeypatch):
    good, _test = _dataset(tmp_path / "fabric")
    window = make_window()
    c = window.controller
    qtbot.waitUntil(lambda: c.maps.identity is not None, timeout=120000)
    release = threading.Event()
    c.runner.submit(lambda ctx: release.wait(60), lane="model")  # the model lane is busy: the build waits
    dialog = _open_dialog(qtbot, window)
    dialog.set_folder(str(tmp_path / "fabric" / "train" / "good"))
    qtbot.waitUntil(lambda: dialog.teach_button.isEnabled())
    qtbot.mouseClick(dialog.teach_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.stage == "building", timeout=60000)
    assert dialog.bar.isVisible() and dialog.cancel_button.text() == "Stop"
    qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
    release.set()
    qtbot.waitUntil(lambda: c.maps.building is None, timeout=60000)
    assert dialog.stage == "idle" and not dialog.built and "No anomaly map" in dialog.status.text()
    assert list((Path(c.store.path).parent / BANK_FOLDER).glob("*.safetensors")) == []
    assert len(c.store.good_images("fabric")) == len(good)  # the recorded images stay good images
    qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)  # now: Cancel closes
    assert not dialog.isVisible()
    window.close()


def test_the_queues_selection_can_be_taught_and_a_folder_without_images_is_said(qtbot, make_window, tmp_path,
                                                                               monkeypatch):
    good = _fabric(tmp_path / "cloth", 3)
    window = make_window(load_model=False)
    window.controller.update_settings(window.controller.settings.with_changes(anomaly_map=False))
    add_and_wait(qtbot, window, good, 3)
    window.queue_view.selectAll()
    dialog = _open_dialog(qtbot, window)
    assert dialog.selection_radio.isChecked() and "3 images selected" in dialog.selection_radio.text()
    dialog.name_edit.setText("   ")
    assert not dialog.teach_button.isEnabled()  # no name, no teaching
    dialog.name_edit.setText("Cloth")
    qtbot.mouseClick(dialog.teach_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.stage == "idle" and "recorded" in dialog.status.text(), timeout=60000)
    assert "3 good images of “Cloth” recorded" in dialog.status.text() and "off in Settings" in dialog.status.text()
    assert all(e.review is not None for e in window.controller.queue.entries())  # the queue shows them reviewed
    empty = tmp_path / "empty"
    empty.mkdir()
    _choose(monkeypatch, empty)
    qtbot.mouseClick(dialog.folder_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "no images in it" in dialog.folder_label.text())
    assert not dialog.teach_button.isEnabled()
    dialog.close()
    window.close()


def test_the_queued_images_of_the_product_are_inspected_with_its_new_map(qtbot, make_window, tmp_path):
    good, test = _dataset(tmp_path / "fabric")
    window = make_window()
    add_and_wait(qtbot, window, [tmp_path / "fabric" / "test"], 2)  # parts waiting, named fabric from where they lie
    window.clear_queue()
    add_and_wait(qtbot, window, [tmp_path / "fabric"], 10)  # the whole dataset: 8 good + 2 parts, never its mask
    assert not any("ground_truth" in e.path for e in window.controller.queue.entries())
    window.clear_queue()
    add_and_wait(qtbot, window, test, 2)
    dialog = _open_dialog(qtbot, window)
    dialog.set_folder(str(tmp_path / "fabric" / "train" / "good"))
    qtbot.waitUntil(lambda: dialog.teach_button.isEnabled())
    qtbot.mouseClick(dialog.teach_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.built, timeout=180000)
    assert " in all)" in dialog.status.text()
    button = dialog.inspect_queued_button
    assert button.isVisible() and button.text() == "Inspect 2 Queued Images"
    assert "Anomaly map · 8 good images" in window.bank_row.text.text()
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    q = window.controller.queue
    qtbot.waitUntil(lambda: all(e.model_finding is not None for e in q.entries()), timeout=180000)
    assert all(e.model_finding.anomaly_map is not None for e in q.entries())
    window.close()
