"""The map's decision on the demo model and the score's one number, in the main window (real widgets, a real
store): an unreadable demo answer with a map reads DEFECTIVE by the map with its regions to review and the
demo model's guess beneath; Space accepts what the banner says; a real model's unreadable answer stays
unreadable with no score shown; the map's figures sit behind *Details*."""

from __future__ import annotations

from PySide6.QtCore import Qt

from lriad_desktop.core.inspection.finding import Box, Finding, MapSummary, Verdict
from lriad_desktop.core.anomaly_map.banks import MIN_FUSED_BANK, finding_with_map
from lriad_desktop.core.store.review import ImageStatus
from lriad_desktop.ui.review.queue_view import chip_text
from test_ui_helpers import (UI_MARKS, add_and_wait, deliver, make_window, no_leaked_windows,  # noqa: F401
                             part_image, wait_shown)

pytestmark = UI_MARKS
MAP_BOX = Box(130, 90, 190, 130)


def _answer(path, version: str, verdict: Verdict = Verdict.UNPARSED, map_score: float = 7.5,
            bank: int = 12) -> Finding:
    finding = Finding(verdict, (), ("Step 1: the part is round.",), "<think>Step 1: the part is round.</think> {{",
                      version, str(path), (320, 240), "washer", parse_error="no <answer> block")
    cells = tuple(tuple(8.0 if (r, c) == (3, 5) else 0.2 for c in range(8)) for r in range(8))
    return finding_with_map(finding, MapSummary(map_score, (MAP_BOX,), cells, bank))


def test_an_unreadable_demo_answer_is_led_by_the_maps_verdict_and_space_accepts_it(qtbot, make_window, tmp_path):
    path = part_image(tmp_path / "washer.png")
    window = make_window(load_model=False)
    add_and_wait(qtbot, window, [path], 1)
    deliver(window, path, _answer(path, "lriad-tiny"))
    wait_shown(qtbot, window, path)
    panel = window.finding_panel
    banner = panel.banner
    assert banner.badge.text() == "DEFECTIVE"  # not UNREADABLE ANSWER: the map has spoken
    assert banner.source.text().startswith("The anomaly map's verdict · score 0.99 · 1 region to review")
    assert banner.guess.isVisible() and banner.guess.text() == "Demo model's guess: unreadable answer"
    assert panel.defect_summary.text().startswith("The anomaly map marks 1 region to review")
    assert "Raw answer" in panel.reasoning.toHtml()  # the guess is still there to read
    entry = window.current_entry()
    assert chip_text(entry) == ("map: defective", "danger")  # the queue says who decided
    assert entry.status is ImageStatus.DEFECT and [d.box for d in entry.finding.defects] == [MAP_BOX]
    assert [b.box() for b in window.view.box_items()] == [MAP_BOX]  # the map's region is the box to review
    qtbot.keyClick(window, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: window.controller.queue.entry(0).review is not None)
    review = window.controller.queue.entry(0).review.review
    assert review.verdict is Verdict.ANOMALOUS and [d.box for d in review.defects] == [MAP_BOX]
    window.set_current(0)
    qtbot.waitUntil(lambda: banner.badge.text() == "✓ DEFECTIVE")
    assert "Anomaly map said: defective" in banner.source.text() and banner.guess.isVisible()
    window.close()


def test_a_calm_map_says_normal_over_the_demo_models_defect_guess(qtbot, make_window, tmp_path):
    path = part_image(tmp_path / "washer.png", scratch=False)
    window = make_window(load_model=False)
    add_and_wait(qtbot, window, [path], 1)
    deliver(window, path, _answer(path, "lriad-tiny+lriad-tiny-v1", Verdict.ANOMALOUS, map_score=0.3))
    wait_shown(qtbot, window, path)
    banner = window.finding_panel.banner
    assert banner.badge.text() == "NORMAL" and banner.source.text().startswith("The anomaly map's verdict · score 0.06")
    assert banner.guess.text() == "Demo model's guess: defective"
    window.close()


def test_a_real_models_unreadable_answer_stays_unreadable_and_shows_no_score(qtbot, make_window, tmp_path):
    paths = [part_image(tmp_path / f"washer{i}.png", seed=i) for i in range(2)]
    window = make_window(load_model=False)
    add_and_wait(qtbot, window, paths, 2)
    deliver(window, paths[0], _answer(paths[0], "Qwen2.5-VL-7B-Instruct"))
    deliver(window, paths[1], _answer(paths[1], "lriad-tiny", bank=MIN_FUSED_BANK - 1))  # a map too thin to decide
    for row, path in enumerate(paths):
        window.set_current(row)
        wait_shown(qtbot, window, path)
        panel = window.finding_panel
        assert panel.banner.badge.text() == "UNREADABLE ANSWER" and not panel.banner.guess.isVisible()
        assert panel.score.text().startswith("No anomaly score: the model's answer could not be read")
        assert "Anomaly score" not in panel.score.text()
    window.close()


def test_the_score_is_one_number_and_the_maps_figures_sit_behind_details(qtbot, make_window, tmp_path):
    path = part_image(tmp_path / "washer.png")
    window = make_window(load_model=False)
    add_and_wait(qtbot, window, [path], 1)
    deliver(window, path, _answer(path, "Qwen2.5-VL-7B-Instruct", Verdict.ANOMALOUS, map_score=7.5))
    wait_shown(qtbot, window, path)
    panel = window.finding_panel
    assert panel.score.text() == "Anomaly score 0.99 · threshold 0.50"
    assert panel.details_button.isVisible() and not panel.details.isVisible()
    qtbot.mouseClick(panel.details_button, Qt.MouseButton.LeftButton)
    assert panel.details.isVisible()
    details = panel.details.text()
    assert "fusion: map alone (default)" in details and "7.5 spreads of the good images" in details
    assert "Anomaly map: probability of a defect 0.99 · 1 region · 12 good images" in details
    qtbot.mouseClick(panel.details_button, Qt.MouseButton.LeftButton)
    assert not panel.details.isVisible()
    window.close()
