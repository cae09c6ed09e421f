"""Which model said what, in one name: a finding of base + adapter reads as the version's name
('lriad-tiny-v1', as Model Versions and the status bar say it), never 'lriad-tiny+lriad-tiny-v1'."""

from __future__ import annotations

from dataclasses import replace

from lriad_desktop.core.inspection.finding import Verdict
from lriad_desktop.core.store.review import with_verdict
from lriad_desktop.core.store.adapter_versions import version_label
from test_ui_helpers import (UI_MARKS, add_and_wait, deliver, hand_finding, make_window, no_leaked_windows,  # noqa: F401
                             part_image, wait_shown)

pytestmark = UI_MARKS
WITH_ADAPTER = "lriad-tiny+lriad-tiny-v1"  # what the engine stores: base + adapter folder


def test_a_version_has_one_name():
    assert version_label(WITH_ADAPTER) == "lriad-tiny-v1"
    assert version_label("lriad-tiny") == "lriad-tiny" and version_label("") == ""
    assert version_label("Qwen2.5-VL-3B+line4-v2") == "line4-v2" and version_label("odd+") == "odd+"


def test_the_finding_and_the_banner_name_the_version_as_model_versions_does(qtbot, make_window, tmp_path):
    path = part_image(tmp_path / "a.png")
    window = make_window(load_model=False)
    add_and_wait(qtbot, window, [path], 1)
    deliver(window, path, replace(hand_finding(path), model_version=WITH_ADAPTER))
    window.set_current(0)
    wait_shown(qtbot, window, path)
    panel = window.finding_panel
    assert panel.meta.text().startswith("Model lriad-tiny-v1 · ") and "+" not in panel.meta.text()
    assert WITH_ADAPTER in panel.meta.toolTip()  # base and adapter still one hover away
    assert window.controller.edit(0, lambda r: with_verdict(r, Verdict.NORMAL), "Flag")
    qtbot.waitUntil(lambda: "Model said: defective (lriad-tiny-v1)" in panel.banner.source.text())
    window.close()


def test_after_a_re_inspection_model_said_is_the_version_the_review_was_made_against(qtbot, make_window, tmp_path):
    path = part_image(tmp_path / "b.png")
    window = make_window(load_model=False)
    c = window.controller
    add_and_wait(qtbot, window, [path], 1)
    deliver(window, path, replace(hand_finding(path), verdict=Verdict.NORMAL, defects=(), model_version="lriad-tiny"))
    window.set_current(0)
    wait_shown(qtbot, window, path)
    assert c.edit(0, lambda r: with_verdict(r, Verdict.ANOMALOUS), "Flag")  # the base model missed it
    banner = window.finding_panel.banner
    qtbot.waitUntil(lambda: "Model said: normal (lriad-tiny)" in banner.source.text())
    first = c.queue.entry(0).inspection_id
    deliver(window, path, replace(hand_finding(path), model_version=WITH_ADAPTER))  # re-inspected with the new one
    qtbot.waitUntil(lambda: c.queue.entry(0).inspection_id not in (None, first))
    window.set_current(0)
    qtbot.waitUntil(lambda: banner.agreement.isVisible())
    assert "Model said: normal (lriad-tiny)" in banner.source.text()  # what the review answered, not the newest
    assert banner.agreement.text() == "✓ lriad-tiny-v1 now agrees with your review"
    window.close()
