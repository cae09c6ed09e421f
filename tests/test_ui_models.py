"""The Models dialog (list, use, download with progress / Cancel / resume / offline) and the
first-launch notice about the bundled demo model, on real widgets and a hub on loopback."""

from __future__ import annotations

import socket

from PySide6.QtWidgets import QApplication

from fake_hub import FakeHub, FakeRepo
from lriad_desktop.core.models.listing import DEMO_MODEL_NOTE, Source
from lriad_desktop.core.paths import models_dir
from lriad_desktop.core.settings import Settings
from lriad_desktop.ui.window.demo_notice import DemoModelNotice, offer_real_model
from lriad_desktop.ui.dialogs.models_dialog import ModelsDialog
from test_models import REPO, served_model  # noqa: F401
from test_ui_helpers import UI_MARKS, make_window, no_leaked_windows  # noqa: F401

pytestmark = UI_MARKS


def _open(qtbot, window) -> ModelsDialog:
    window.models.show()
    dialog = window.models.dialog()
    qtbot.waitExposed(dialog)
    qtbot.waitUntil(lambda: bool(dialog.entries) and dialog.machine is not None, timeout=30000)
    return dialog


def _row_text(dialog: ModelsDialog, row: int) -> list[str]:
    return [dialog.models_table.item(row, c).text() for c in range(dialog.models_table.columnCount())]


def test_the_demo_model_says_what_it_is(qtbot, make_window):
    window = make_window(load_model=False)
    label = window.inspection_status.model_label  # short in the status bar (its messages need the room), whole below
    assert label.text() == "Model: lriad-tiny (demo model) · not loaded" and DEMO_MODEL_NOTE in label.toolTip()
    dialog = _open(qtbot, window)
    bundled = next(r for r, e in enumerate(dialog.entries) if e.source == Source.BUNDLED)
    cells = _row_text(dialog, bundled)
    assert cells[0] == "● in use" and DEMO_MODEL_NOTE in cells[1] and cells[2] == "Qwen2.5-VL"
    assert cells[3] == "6.3 M" and cells[5] == "input pixels" and cells[6]  # a fit line
    dialog.close()
    window.close()


def test_use_an_added_folder(qtbot, make_window, tiny_model_dir, monkeypatch):
    window = make_window(Settings(model_folders=(str(tiny_model_dir),)), load_model=False)
    dialog = _open(qtbot, window)
    row = next(r for r, e in enumerate(dialog.entries) if e.path == tiny_model_dir)
    dialog.models_table.selectRow(row)
    assert dialog.use_button.isEnabled() and dialog.remove_button.isEnabled()
    dialog.use_button.click()
    assert window.controller.settings.model_dir == str(tiny_model_dir)
    assert _row_text(dialog, row)[0] == "● in use" and not dialog.use_button.isEnabled()
    qtbot.waitUntil(lambda: DEMO_MODEL_NOTE not in window.inspection_status.model_label.toolTip())
    assert "demo model" not in window.inspection_status.model_label.text()
    dialog.remove_button.click()
    assert window.controller.settings.model_folders == ()
    dialog.close()
    window.close()


def test_download_with_progress_cancel_resume_and_verification(qtbot, make_window, served_model, monkeypatch):
    window = make_window(Settings(device="cpu"), load_model=False)
    with FakeHub({REPO: FakeRepo(served_model)}, throttle_s=0.004) as hub:
        hub.slow_after = (10 * 1024 ** 2, 0.1)  # past the first 10 MB the rest comes slowly: Cancel is never late
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        dialog = _open(qtbot, window)
        dialog.repo_edit.setText(REPO)
        dialog.download_button.click()
        qtbot.waitUntil(lambda: " of " in dialog.progress.format() and "/s" in dialog.progress.format()
                        and dialog.progress.value() > 480, timeout=60000)  # past the weights' first 10 MB
        assert not dialog.download_button.isEnabled() and dialog.cancel_button.isVisible()
        dialog.cancel_button.click()
        qtbot.waitUntil(lambda: dialog.download is None, timeout=30000)
        assert "cancelled" in dialog.progress.format() and "carry on" in dialog.status.text()
        target = models_dir() / REPO.replace("/", "--")
        assert (target / ".lriad-download.json").is_file()  # kept for the resume
        hub.slow_after = None
        dialog.download_button.click()  # resume
        qtbot.waitUntil(lambda: dialog.download is None, timeout=120000)
    assert "loads on cpu and inspects" in dialog.status.text(), dialog.status.text()
    assert any(r.range for r in hub.resolve_requests("model.safetensors"))  # carried on with a Range request
    qtbot.waitUntil(lambda: dialog.selected_entry() is not None and dialog.selected_entry().path == target)
    assert dialog.selected_entry().name == REPO and dialog.use_button.isEnabled()
    dialog.use_button.click()
    assert window.controller.settings.model_dir == str(target)
    dialog.close()
    window.close()


def test_offline_download_shows_the_command_to_run_elsewhere(qtbot, make_window, monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{s.getsockname()[1]}")
    window = make_window(load_model=False)
    dialog = _open(qtbot, window)
    dialog.catalog_table.selectRow(1)
    assert dialog.repo_edit.text() == "Qwen/Qwen3-VL-4B-Instruct"
    dialog.download_button.click()
    qtbot.waitUntil(lambda: dialog.download is None, timeout=60000)
    assert "hf download Qwen/Qwen3-VL-4B-Instruct --local-dir Qwen3-VL-4B-Instruct" in dialog.status.text()
    assert not dialog.progress.isVisible() and dialog.download_button.isEnabled()
    dialog.close()
    window.close()


def test_first_launch_notice_offers_a_real_model_once(qtbot, make_window):
    window = make_window(load_model=False)
    opened = []
    notice = offer_real_model(window.controller, window, lambda: opened.append(True))
    assert isinstance(notice, DemoModelNotice)
    qtbot.waitExposed(notice)
    notice.get_button.click()
    assert opened == [True] and window.controller.settings.demo_notice_shown
    assert offer_real_model(window.controller, window, lambda: opened.append(True)) is None  # never again
    window.close()
    QApplication.processEvents()


def test_first_launch_notice_keep_the_demo(qtbot, make_window, tiny_model_dir):
    other = make_window(Settings(model_dir=str(tiny_model_dir)), load_model=False)
    assert offer_real_model(other.controller, other, print) is None
    window = make_window(load_model=False)
    notice = offer_real_model(window.controller, window, lambda: None)
    qtbot.waitExposed(notice)
    notice.keep_button.click()
    assert notice.choice == "keep" and window.controller.settings.demo_notice_shown
    for w in QApplication.topLevelWidgets():
        w.close()
