"""File → Shift Report in the real main window: the period asked, the report made on the io lane from the
real store, one notice; a bad period or a file that can't be written is one notice too."""

from __future__ import annotations

from lriad_desktop.core.inspection.finding import Box, Defect, Finding, Verdict
from lriad_desktop.core.store.review_store import ReviewStore
from test_ui_helpers import UI_MARKS, make_window, no_leaked_windows, part_image  # noqa: F401

pytestmark = UI_MARKS


def test_file_shift_report_writes_one_html_file(qtbot, make_window, tmp_path):
    store_path = tmp_path / "reviews.sqlite3"
    with ReviewStore.open(store_path) as store:
        for i, anomalous in enumerate((True, False, True)):
            path = part_image(tmp_path / f"p{i}.png", seed=i)
            image = store.add_image(path, "metal nut")
            store.record_inspection(image.id, Finding(
                Verdict.ANOMALOUS if anomalous else Verdict.NORMAL,
                (Defect("scratch", Box(40, 40, 120, 90)),) if anomalous else (), model_version="lriad-tiny",
                image_path=str(path), image_size=(320, 240), object_name="metal nut"))
    window = make_window(store_path=store_path, load_model=False)
    action = window.report
    target = tmp_path / "out" / "shift.html"
    asked = []
    action._ask_period = lambda _parent: "8h"
    action._ask_target = lambda _parent, suggested: asked.append(suggested) or str(target)
    window.actions_["shift_report"].trigger()
    assert asked and asked[0].endswith(".html") and "shift-report-" in asked[0]
    qtbot.waitUntil(lambda: not action.running, timeout=30000)
    assert window.statusBar().currentMessage() == \
        f"Shift report written to {target}: 3 images, 2 defective or flagged"
    text = target.read_text(encoding="utf-8")
    assert text.count('src="data:image/jpeg;base64,') == 2 and "<h1>Shift report</h1>" in text

    action._ask_period = lambda _parent: "after lunch"
    window.actions_["shift_report"].trigger()
    assert "'after lunch' is not a time" in window.statusBar().currentMessage()
    action._ask_period = lambda _parent: "8h"
    action._ask_target = lambda _parent, _suggested: str(target / "inside-a-file.html")
    window.actions_["shift_report"].trigger()
    qtbot.waitUntil(lambda: not action.running, timeout=30000)
    assert window.statusBar().currentMessage().startswith("Can't write the report to")
    window.close()
