"""The camera dialog on a generated video file, the settings dialog and its model picker, the dark palette."""

import json

from PySide6.QtCore import Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QApplication, QDialogButtonBox

from lriad_desktop.core.settings import Settings
from lriad_desktop.ui.dialogs.camera_dialog import CameraDialog
from lriad_desktop.ui.dialogs.settings_dialog import SettingsDialog
from lriad_desktop.ui.tasks import TaskRunner
from lriad_desktop.ui.theme import ThemeState, apply_theme
from test_capture import write_video
from test_ui_helpers import UI_MARKS, make_window, no_leaked_windows  # noqa: F401

pytestmark = UI_MARKS


def test_the_camera_dialog_captures_a_frame_from_a_video_file_into_the_queue(qtbot, make_window, tmp_path):
    video = write_video(tmp_path / "line.avi", frames=8)
    window = make_window(load_model=False)
    window.intake.open_camera()
    dialog = window.intake.camera_dialog()
    qtbot.waitExposed(dialog)
    with qtbot.waitSignal(dialog.frameShown, timeout=20000):
        assert dialog.start(str(video))
    assert dialog.snapshot_button.isEnabled() and "96 × 64" in dialog.info.text() and "fps" in dialog.info.text()
    with qtbot.waitSignal(dialog.snapshotTaken, timeout=20000) as saved:
        dialog.snapshot_button.click()
    path = saved.args[0]
    assert path.is_file() and path.parent.name == "captures"
    qtbot.waitUntil(lambda: window.controller.queue.rowCount() == 1)
    assert window.controller.queue.entry(0).path == str(path.resolve())
    assert window.controller.settings.recent_sources[0] == str(video)
    dialog.close()
    assert not dialog.running
    window.close()


def test_no_camera_is_a_message_not_a_crash(qtbot, tmp_path):
    runner = TaskRunner()
    dialog = CameraDialog(runner)
    dialog.show()
    dialog.start("97")
    qtbot.waitUntil(lambda: "No camera at index 97" in dialog.message.text(), timeout=20000)
    assert not dialog.running and not dialog.snapshot_button.isEnabled()
    assert not dialog.start(str(tmp_path / "missing.mp4")) and "No such video file" in dialog.message.text()
    assert dialog.snapshot() is None and "No frame yet" in dialog.message.text()
    dialog.close()
    runner.shutdown()


def test_settings_dialog_validates_the_model_folder_and_applies(qtbot, make_window, tmp_path, tiny_model_dir):
    window = make_window(load_model=False)
    dialog = SettingsDialog(window.controller.settings, window)
    dialog.show()
    ok = dialog.buttons.button(QDialogButtonBox.StandardButton.Ok)
    model = dialog.editors["model_dir"]
    model.edit.setText(str(tmp_path))
    assert not ok.isEnabled() and "no config.json: it is not a Hugging Face model folder" in model.status.text()
    adapter = dialog.editors["adapter_dir"]
    adapter.edit.setText(str(tiny_model_dir))
    assert "not a PEFT adapter" in adapter.status.text()
    adapter.edit.setText("")
    model.edit.setText(str(tiny_model_dir))
    assert ok.isEnabled() and model.status.text().startswith("✓ Qwen2.5-VL")
    model.edit.setText("")  # the bundled model says what it is
    assert ok.isEnabled() and "demo model — trained on synthetic images only" in model.status.text()
    model.edit.setText(str(tiny_model_dir))
    dialog.editors["batch_size"].setValue(2)
    dialog.editors["theme"].setCurrentText("dark")
    dialog.editors["box_line_width"].setValue(3.5)
    settings = dialog.result_settings()
    dialog.accept()
    assert (settings.model_dir, settings.batch_size, settings.theme) == (str(tiny_model_dir), 2, "dark")
    window.settings_action.apply(settings)
    saved = json.loads((window.controller.store.path.parent / "settings.json").read_text())
    assert saved["batch_size"] == 2 and saved["model_dir"] == str(tiny_model_dir) and saved["version"] == 1
    app = QApplication.instance()
    assert ThemeState.current == "dark" and app.palette().color(QPalette.ColorRole.Window).lightness() < 80
    assert window.view.line_width == 3.5
    apply_theme(app, "light")
    assert app.palette().color(QPalette.ColorRole.Window).lightness() > 200
    window.close()


def test_the_export_menu_is_built_from_the_exporters(make_window):
    from lriad_desktop.core.evaluation.export import EXPORTERS

    window = make_window(load_model=False)
    menu = window.menus_["export"]
    assert [a.text() for a in menu.actions()] == [e.menu_label for e in EXPORTERS.values()]
    assert [a.objectName() for a in menu.actions()] == [f"export_{key}" for key in EXPORTERS]
    window.close()


def test_export_from_the_window_runs_in_the_background(qtbot, make_window, tmp_path):
    from test_ui_helpers import add_and_wait, deliver, hand_finding, part_image

    img = part_image(tmp_path / "a.png")
    window = make_window(load_model=False)
    add_and_wait(qtbot, window, [img], 1)
    deliver(window, img, hand_finding(img))
    qtbot.waitUntil(lambda: window.current_entry().finding is not None)
    qtbot.keyClick(window, Qt.Key.Key_Space)
    target = tmp_path / "out" / "train.jsonl"
    window.exports.run("vlm-r1", str(target))
    qtbot.waitUntil(lambda: window.statusBar().currentMessage().startswith("Exported"))
    assert "1 image, 1 box" in window.statusBar().currentMessage()
    assert json.loads(target.read_text())["solution"].startswith("<answer>")
    window.close()


def test_settings_dialog_refuses_out_of_range_values(qtbot):
    dialog = SettingsDialog(Settings())
    dialog.show()
    dialog.editors["device"].addItem("tpu")
    dialog.editors["device"].setCurrentText("tpu")
    dialog.accept()
    assert dialog.isVisible() and "Runs on" in dialog.error.text()
    dialog.close()
