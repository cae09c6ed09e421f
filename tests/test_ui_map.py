"""The anomaly map in the main window (real widgets, a real store, the bundled model): M shows the heatmap, its
legend and the map's own dashed boxes apart from the model's; an inspection builds the object's bank from its
golden samples beside the store and puts the fused score and its rule on the finding; Rebuild with progress;
no good images is a notice; the region hint reaches the prompt only when its setting is on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt

from lriad_desktop.core.anomaly_map.patch_map import DEFAULT_FUSION
from lriad_desktop.core.backends.engine import Inspector
from lriad_desktop.core.inspection.finding import Box, MapSummary, Verdict
from lriad_desktop.core.anomaly_map.banks import BANK_FOLDER, finding_with_map
from lriad_desktop.core.store.review import Review, ReviewKind
from lriad_desktop.core.settings import Settings
from lriad_desktop.core.store.review_store import ReviewStore
from lriad_desktop.ui.review.heatmap import MAP_BOX_COLOR
from lriad_desktop.ui.review.inspection import ModelState
from test_ui_helpers import (UI_MARKS, add_and_wait, deliver, hand_finding, make_window, no_leaked_windows,  # noqa: F401
                             part_image, wait_shown)
from training.synthetic_data.samples import generate_line_sample

pytestmark = UI_MARKS
BUNDLED = Path(__file__).resolve().parents[1] / "resources" / "models" / "lriad-tiny"


@pytest.fixture(scope="module")
def bundled() -> Inspector:
    return Inspector(BUNDLED, device="cpu", max_new_tokens=48).load()


def _fabric(folder: Path, n: int, start: int = 0, defect: bool = False) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(start, start + n):
        image = generate_line_sample(np.random.default_rng([5, i]), "fabric").image
        if defect:
            image.paste((250, 30, 200), (image.width // 2, image.height // 4, image.width // 2 + 40,
                                         image.height // 4 + 40))
        image.save(folder / f"{i:02d}.png")
        out.append(folder / f"{i:02d}.png")
    return out


def _store_with_golden(path: Path, goods: list[Path]) -> Path:
    store = ReviewStore.open(path)
    for p in goods:
        image = store.add_image(str(p), "fabric")
        store.save_review(image.id, Review(ReviewKind.ACCEPT, Verdict.NORMAL), "tester")
        store.add_golden_sample(image.id, "fabric")
    store.close()
    return path


def test_m_shows_the_heatmap_with_its_legend_and_the_maps_boxes_apart(qtbot, make_window, tmp_path):
    path = part_image(tmp_path / "washer.png")
    window = make_window(load_model=False)
    add_and_wait(qtbot, window, [path], 1)
    cells = tuple(tuple(8.0 if (r, c) == (3, 5) else 0.2 for c in range(8)) for r in range(8))
    summary = MapSummary(7.5, (Box(190, 80, 240, 120),), cells, 12)
    finding = finding_with_map(hand_finding(path), summary)
    deliver(window, path, finding)
    wait_shown(qtbot, window, path)
    view, action = window.view, window.actions_["toggle_map"]
    assert not view.map_visible and not view.heatmap_item().isVisible()
    qtbot.keyClick(window, Qt.Key.Key_M)
    assert action.isChecked() and view.map_visible and view.heatmap_item().isVisible()
    assert window.controller.settings.show_map  # kept for the next start
    [map_box] = view.map_box_items()
    assert map_box.isVisible() and map_box.pen().style() == Qt.PenStyle.DashLine
    assert map_box.pen().color().name() == MAP_BOX_COLOR and map_box.box() == Box(190, 80, 240, 120)
    assert [b.box() for b in view.box_items()] == [Box(120, 80, 200, 140)]  # the model's box, editable, apart
    assert view.box_items()[0].pen().style() != Qt.PenStyle.DashLine
    panel = window.finding_panel
    assert panel.score.text() == "Anomaly score 0.99 · threshold 0.50"  # one number; how it was made: Details
    assert DEFAULT_FUSION.describe() in panel.details.text() and "1 region · 12 good images" in panel.details.text()
    window.grab().save(str(tmp_path / "map.png"))
    qtbot.keyClick(window, Qt.Key.Key_M)
    assert not view.map_visible and not view.heatmap_item().isVisible() and not map_box.isVisible()
    assert not window.controller.settings.show_map
    window.close()


def test_an_inspection_builds_the_bank_from_golden_samples_and_fuses_the_score(qtbot, make_window, tmp_path,
                                                                                bundled):
    goods = _fabric(tmp_path / "fabric", 8)
    store_path = _store_with_golden(tmp_path / "store.sqlite3", goods)
    defective = _fabric(tmp_path / "fabric", 1, start=10, defect=True)[0]
    window = make_window(store_path=store_path, factory=lambda s: bundled, settings=Settings(region_hint=True))
    add_and_wait(qtbot, window, [defective], 1)
    qtbot.waitUntil(lambda: window.controller.inspection.state is ModelState.READY, timeout=60000)
    window.set_current(0)
    row = window.bank_row
    qtbot.waitUntil(lambda: "not built yet: 8 good images" in row.text.text())
    with qtbot.waitSignal(window.controller.inspection.batchFinished, timeout=120000):
        qtbot.keyClick(window, Qt.Key.Key_I)
    finding = window.current_entry().model_finding
    assert finding.anomaly_map is not None and finding.anomaly_map.bank_images == 8
    assert finding.score_rule == DEFAULT_FUSION.describe() and finding.anomaly_score is not None
    assert finding.anomaly_map.hint.startswith("Compared with good images")
    assert finding.anomaly_map.hint in bundled.last_prompts[0]
    assert window.finding_panel.score.text().startswith("Anomaly score ")
    banner = window.finding_panel.banner  # the bundled demo model: the map's verdict leads, the model's is a guess
    assert banner.source.text().startswith("The anomaly map's verdict · score ")
    assert banner.guess.isVisible() and banner.guess.text().startswith("Demo model's guess: ")
    stored = window.controller.store.latest_finding(window.current_entry().image_id)
    assert stored.anomaly_map == finding.anomaly_map and stored.score_rule == finding.score_rule
    assert len(list((tmp_path / BANK_FOLDER).glob("*.safetensors"))) == 1
    qtbot.waitUntil(lambda: "Anomaly map · 8 good images · built just now" in row.text.text())
    qtbot.keyClick(window, Qt.Key.Key_M)
    assert window.view.heatmap_item() is not None and window.view.heatmap_item().isVisible()
    notices = []
    window.controller.notice.connect(notices.append)
    qtbot.mouseClick(row.rebuild_button, Qt.MouseButton.LeftButton)
    assert not row.rebuild_button.isEnabled() and row.bar.isVisible()
    qtbot.waitUntil(lambda: any("rebuilt from 8 good images" in n for n in notices), timeout=60000)
    assert row.rebuild_button.isEnabled() and not row.bar.isVisible()
    window.close()


def test_no_good_images_is_a_notice_and_the_image_is_inspected_without_a_map(qtbot, make_window, tmp_path,
                                                                             bundled):
    image = _fabric(tmp_path / "fabric", 1)[0]
    window = make_window(factory=lambda s: bundled)
    add_and_wait(qtbot, window, [image], 1)
    qtbot.waitUntil(lambda: window.controller.inspection.state is ModelState.READY, timeout=60000)
    window.set_current(0)
    notices = []
    window.controller.notice.connect(notices.append)
    with qtbot.waitSignal(window.controller.inspection.batchFinished, timeout=120000):
        qtbot.keyClick(window, Qt.Key.Key_I)
    finding = window.current_entry().model_finding
    assert finding is not None and finding.anomaly_map is None and finding.score_rule == ""
    assert not any("anomaly map" in n.lower() for n in notices), notices  # the bank row says it, not each image
    row = window.bank_row
    assert row.text.text().startswith("No anomaly map: it needs at least two good images of the fabric")
    qtbot.keyClick(window, Qt.Key.Key_M)
    assert window.statusBar().currentMessage().startswith("No anomaly map: it needs at least two good images")
    assert row.rebuild_button.text() == "Build"
    notices.clear()
    qtbot.mouseClick(row.rebuild_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: any(n.startswith("No anomaly map for the fabric: it needs at least two good images")
                                and "there is none" in n for n in notices))
    assert row.rebuild_button.isEnabled() and not row.bar.isVisible()
    window.close()


def test_the_region_hint_is_in_the_prompt_only_when_its_setting_is_on(qtbot, make_window, tmp_path, bundled):
    goods = _fabric(tmp_path / "fabric", 3)
    store_path = _store_with_golden(tmp_path / "store.sqlite3", goods)
    defective = _fabric(tmp_path / "fabric", 1, start=20, defect=True)[0]
    window = make_window(store_path=store_path, factory=lambda s: bundled, settings=Settings(region_hint=False))
    add_and_wait(qtbot, window, [defective], 1)
    qtbot.waitUntil(lambda: window.controller.inspection.state is ModelState.READY, timeout=60000)
    window.set_current(0)
    with qtbot.waitSignal(window.controller.inspection.batchFinished, timeout=120000):
        qtbot.keyClick(window, Qt.Key.Key_I)
    assert window.current_entry().model_finding.anomaly_map is not None
    assert "differs most" not in bundled.last_prompts[0] and window.current_entry().model_finding.anomaly_map.hint == ""
    window.controller.update_settings(window.controller.settings.with_changes(region_hint=True))
    with qtbot.waitSignal(window.controller.inspection.batchFinished, timeout=120000):
        qtbot.keyClick(window, Qt.Key.Key_I)
    hint = window.current_entry().model_finding.anomaly_map.hint
    assert "differs most" in hint and hint in bundled.last_prompts[0]
    assert "The map's region was named in the prompt" in window.finding_panel.details.text()
    window.close()
