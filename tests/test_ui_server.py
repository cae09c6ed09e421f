"""The app on a model server: the settings' Model server choice with Test connection (in the background),
and the window inspecting through a real `transformers serve`, findings recorded and shown."""

import shutil

from PySide6.QtWidgets import QDialogButtonBox, QLineEdit

from lriad_desktop.core.settings import Settings
from lriad_desktop.ui.review.inspection import ModelState, default_inspector
from lriad_desktop.ui.dialogs.settings_dialog import SettingsDialog
from lriad_desktop.ui.tasks import TaskRunner
from test_server import SAMPLES
from test_ui_helpers import UI_MARKS, add_and_wait, make_window, no_leaked_windows  # noqa: F401

pytestmark = UI_MARKS


def test_settings_choose_a_model_server_and_test_the_connection(qtbot, tmp_path, model_server):
    runner = TaskRunner()
    dialog = SettingsDialog(Settings(model_dir=str(tmp_path)), runner=runner)  # a folder that is no model
    dialog.show()
    ok = dialog.buttons.button(QDialogButtonBox.StandardButton.Ok)
    assert not ok.isEnabled() and not dialog.server_box.isEnabled()
    combo = dialog.editors["inference"]
    combo.setCurrentIndex(combo.findData("server"))
    assert combo.currentText() == "On a model server" and dialog.server_box.isEnabled()
    assert ok.isEnabled()  # the local folder doesn't matter when the server runs the model
    assert dialog.editors["server_api_key"].echoMode() is QLineEdit.EchoMode.Password
    dialog.editors["server_url"].setText("http://127.0.0.1:9/v1")
    dialog.test_button.click()
    qtbot.waitUntil(lambda: dialog.test_button.isEnabled() and "connection refused" in dialog.test_status.text(),
                    timeout=20000)
    dialog.editors["server_url"].setText(model_server.url)
    dialog.editors["server_in_flight"].setValue(2)
    dialog.test_button.click()
    qtbot.waitUntil(lambda: dialog.test_status.text().startswith("✓"), timeout=20000)
    assert "boxes in model pixels" in dialog.test_status.text()
    dialog.resize(640, dialog.sizeHint().height())
    dialog.grab().save(str(tmp_path / "settings-model-server.png"))
    settings = dialog.result_settings()
    assert (settings.inference, settings.server_url, settings.server_in_flight) == ("server", model_server.url, 2)
    dialog.close()
    runner.shutdown()


def test_the_window_inspects_through_the_server(qtbot, make_window, tmp_path, model_server):
    folder = tmp_path / "line3"
    folder.mkdir()
    for name in ("washer_scratch.jpg", "bottle_good.jpg"):
        shutil.copy(SAMPLES / name, folder / name)
    (folder / "broken.png").write_bytes(b"\x89PNG no")
    settings = Settings(inference="server", server_url=model_server.url, server_in_flight=2)
    window = make_window(settings, factory=default_inspector)
    add_and_wait(qtbot, window, [folder], 3)
    window.inspect_all()
    c = window.controller
    qtbot.waitUntil(lambda: not c.inspection.busy and all(
        c.queue.entry(r).finding is not None or c.queue.entry(r).error for r in range(3)), timeout=120000)
    assert c.inspection.state is ModelState.READY and "at 127.0.0.1:" in c.inspection.state_text
    entries = {c.queue.entry(r).name: c.queue.entry(r) for r in range(3)}
    washer = entries["washer_scratch.jpg"]
    assert washer.finding.anomalous and washer.finding.defects and washer.finding.reasoning
    assert washer.finding.model_version == f"lriad-tiny @ 127.0.0.1:{model_server.port}"
    assert entries["broken.png"].error and entries["bottle_good.jpg"].finding is not None
    assert c.store.lookup_paths([str(folder / "washer_scratch.jpg")])  # recorded like any inspection
    window.queue_view.setCurrentIndex(c.queue.index(c.queue.row_of(str(folder / "washer_scratch.jpg")), 0))
    qtbot.waitUntil(lambda: window.current_entry() is washer and window.view.image is not None)
    qtbot.wait(200)
    window.grab().save(str(tmp_path / "server-finding.png"))
    window.close()


def test_a_server_that_is_down_is_one_message_in_the_window(qtbot, make_window, tmp_path):
    shutil.copy(SAMPLES / "metal_hole.jpg", tmp_path / "metal_hole.jpg")
    window = make_window(Settings(inference="server", server_url="http://127.0.0.1:9/v1"), factory=default_inspector)
    add_and_wait(qtbot, window, [tmp_path / "metal_hole.jpg"], 1)
    window.inspect_all()
    c = window.controller
    qtbot.waitUntil(lambda: c.inspection.state is ModelState.FAILED, timeout=20000)
    assert c.inspection.state_text == "The model server at http://127.0.0.1:9/v1 can't be reached (connection refused)"
    assert not c.inspection.busy
    window.settings_action.apply(Settings())  # back to this computer: nothing sticks
    window.close()


def test_activate_on_a_server_that_cannot_load_adapters_names_the_command(qtbot, make_window, tmp_path,
                                                                          model_server):
    adapter = tmp_path / "adapters" / "line3-v2"
    adapter.mkdir(parents=True)
    window = make_window(Settings(inference="server", server_url=model_server.url), factory=default_inspector,
                         load_model=False)
    c = window.controller
    version = c.store.add_model_version("line3-v2", str(model_server.model_dir), str(adapter))
    notices = []
    c.notice.connect(notices.append)
    assert c.activate_version(version.id)
    qtbot.waitUntil(lambda: any("restart it with the adapter" in n for n in notices), timeout=20000)
    said = next(n for n in notices if "restart it" in n)
    assert f"--enable-lora --lora-modules line3-v2={adapter}" in said
    assert c.settings.adapter_dir == str(adapter) and c.settings.server_model == ""  # requests stay on the base
    window.close()
