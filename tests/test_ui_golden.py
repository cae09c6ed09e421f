"""Golden samples in the main window (real widgets, a real store, the real tiny model): mark with G, the strip
with remove, references used for inspection and kept across a restart, a deleted golden sample."""

from __future__ import annotations

from PySide6.QtCore import Qt

from lriad_desktop.core.inspection.finding import Finding, Verdict
from lriad_desktop.core.settings import Settings
from lriad_desktop.ui.review.inspection import ModelState
from test_ui_helpers import UI_MARKS, add_and_wait, deliver, make_window, no_leaked_windows, part_image  # noqa: F401

pytestmark = UI_MARKS


def _normal(path, size=(320, 240)) -> Finding:
    return Finding(Verdict.NORMAL, (), ("The washer is round and clean.", "Nothing abnormal."),
                   "<think>…</think><answer>…</answer>", "hand-made", str(path), size, "washer")


def _washers(tmp_path, n=3):
    folder = tmp_path / "washer"
    folder.mkdir()
    return [part_image(folder / f"w{i}.png", scratch=i > 0, seed=i) for i in range(n)]


def _accept_normal(qtbot, window, row, path):
    window.set_current(row)
    deliver(window, path, _normal(path))
    qtbot.waitUntil(lambda: window.current_entry().finding is not None)
    qtbot.keyClick(window, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: window.controller.queue.entry(row).review is not None)
    window.set_current(row)


ONE_BESIDE = Settings(reference_count=1)


def test_g_marks_a_normal_image_golden_and_the_strip_removes_it(qtbot, make_window, tmp_path):
    paths = _washers(tmp_path)
    window = make_window(settings=ONE_BESIDE, load_model=False)
    add_and_wait(qtbot, window, paths, 3)
    strip, c = window.reference_strip, window.controller
    assert strip.tiles == [] and "No golden sample of the washer yet" in strip.hint.text()
    window.set_current(1)
    qtbot.keyClick(window, Qt.Key.Key_G)  # not reviewed: refused
    assert c.store.golden_samples("washer") == [] and "judged normal" in window.statusBar().currentMessage()
    _accept_normal(qtbot, window, 0, paths[0])
    qtbot.keyClick(window, Qt.Key.Key_G)
    assert [g.path for g in c.store.golden_samples("washer")] == [str(paths[0])]
    assert "golden sample of “washer” (1 in all)" in window.statusBar().currentMessage()
    assert len(strip.tiles) == 1 and strip.title.text() == "GOLDEN SAMPLES · WASHER · 1"
    assert "This image is a golden sample" in strip.hint.text()
    qtbot.waitUntil(lambda: strip.tiles[0].picture.pixmap() is not None and not strip.tiles[0].picture.pixmap().isNull())
    window.set_current(2)  # another washer: the same strip, now as its reference
    assert len(strip.tiles) == 1 and "compares this image with the highlighted golden sample" in strip.hint.text()
    assert c.references_for(str(paths[2])) == (str(paths[0]),) and c.references_for(str(paths[0])) == ()
    qtbot.mouseClick(strip.tiles[0].remove_button, Qt.MouseButton.LeftButton)
    assert c.store.golden_samples("washer") == [] and strip.tiles == []
    assert c.store.current_review(c.queue.entry(0).image_id) is not None  # the image's review stays
    window.close()


def test_golden_samples_persist_across_a_restart_and_go_beside_each_inspection(qtbot, make_window, tmp_path):
    paths = _washers(tmp_path)
    store_path = tmp_path / "store.sqlite3"
    first = make_window(settings=ONE_BESIDE, store_path=store_path, load_model=False)
    add_and_wait(qtbot, first, paths, 3)
    _accept_normal(qtbot, first, 0, paths[0])
    first.controller.toggle_golden(0)
    first.close()
    second = make_window(settings=ONE_BESIDE, store_path=store_path)  # a new window and controller on the same store
    add_and_wait(qtbot, second, paths, 3)
    qtbot.waitUntil(lambda: second.controller.inspection.state is ModelState.READY)
    second.set_current(2)
    assert [t.sample.path for t in second.reference_strip.tiles] == [str(paths[0])]
    with qtbot.waitSignal(second.controller.inspection.batchFinished, timeout=60000):
        qtbot.keyClick(second, Qt.Key.Key_I)
    finding = second.current_entry().finding
    assert finding.references == (str(paths[0]),)
    stored = second.controller.store.latest_finding(second.current_entry().image_id)
    assert stored.references == (str(paths[0]),)  # recorded with the finding in the store
    assert "beside 1 golden sample" in second.finding_panel.meta.text()
    second.close()


def test_a_deleted_golden_sample_is_a_notice_and_the_image_is_inspected_without_it(qtbot, make_window, tmp_path):
    paths = _washers(tmp_path)
    window = make_window(settings=ONE_BESIDE)
    add_and_wait(qtbot, window, paths, 3)
    _accept_normal(qtbot, window, 0, paths[0])
    window.controller.toggle_golden(0)
    paths[0].unlink()
    qtbot.waitUntil(lambda: window.controller.inspection.state is ModelState.READY)
    window.set_current(1)
    notices = []
    window.controller.notice.connect(notices.append)
    with qtbot.waitSignal(window.controller.inspection.batchFinished, timeout=60000):
        qtbot.keyClick(window, Qt.Key.Key_I)
    assert window.current_entry().finding is not None and window.current_entry().finding.references == ()
    assert any(str(paths[0]) in n and "inspected without it" in n for n in notices), notices
    assert "no golden sample" in window.finding_panel.meta.text()
    window.close()


def test_golden_samples_per_image_is_a_setting(qtbot, make_window, tmp_path):
    paths = _washers(tmp_path)
    window = make_window(settings=Settings(reference_count=0), load_model=False)
    add_and_wait(qtbot, window, paths, 3)
    _accept_normal(qtbot, window, 0, paths[0])
    window.controller.toggle_golden(0)
    window.set_current(1)
    assert window.controller.references_for(str(paths[1])) == ()
    assert "golden samples per image is 0" in window.reference_strip.hint.text()
    window.controller.update_settings(window.controller.settings.with_changes(reference_count=2))
    assert window.controller.references_for(str(paths[1])) == (str(paths[0]),)
    window.close()


def test_by_default_golden_samples_go_beside_an_image_only_for_a_model_trained_with_them(qtbot, make_window,
                                                                                        tmp_path):
    """The bundled model's folder says nothing about golden samples: none go beside the image, the strip says
    why, and G still marks one; a folder whose lriad.json says it takes them gets them (reference_count: 2)."""
    import json
    import shutil

    from lriad_desktop.core.paths import bundled_model_dir

    paths = _washers(tmp_path)
    window = make_window(load_model=False)
    assert window.controller.settings.reference_count == -1  # the default: as the model says
    add_and_wait(qtbot, window, paths, 3)
    _accept_normal(qtbot, window, 0, paths[0])
    window.controller.toggle_golden(0)
    window.set_current(1)
    assert window.controller.references_for(str(paths[1])) == ()
    assert len(window.reference_strip.tiles) == 1  # still marked, for the map and the strip
    assert "wasn't trained with golden samples" in window.reference_strip.hint.text()
    trained = tmp_path / "trained-with-references"
    shutil.copytree(bundled_model_dir(), trained)
    (trained / "lriad.json").write_text(json.dumps({"coordinate_frame": "model_pixels", "references": "images",
                                                    "reference_count": 2}))
    window.controller.update_settings(window.controller.settings.with_changes(model_dir=str(trained)))
    assert window.controller.reference_count() == 2
    assert window.controller.references_for(str(paths[1])) == (str(paths[0]),)
    window.close()
