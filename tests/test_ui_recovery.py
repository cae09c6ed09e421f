"""The app's start reconciles what killed training runs left: the stale run is closed, the orphan adapter is
listed as a recovered version, temp folders go, and the inspector is told in one line."""

import shutil

from lriad_desktop.core.training_runs.recovery import temp_prefix
from lriad_desktop.core.store.adapter_versions import adapters_dir
from test_run_recovery import saved_adapter  # noqa: F401 - the fixture
from test_ui_helpers import UI_MARKS, make_window, no_leaked_windows  # noqa: F401

pytestmark = UI_MARKS


def test_the_app_start_lists_a_recovered_adapter_and_closes_the_stale_run(qtbot, make_window, saved_adapter,
                                                                          tmp_path):
    from lriad_desktop.ui.improve.versions_dialog import VersionsDialog

    window = make_window(load_model=False)
    controller, store = window.controller, window.controller.store
    folder = adapters_dir() / "lriad-tiny-v2"
    run = store.add_training_run(None, 4, {"out": str(folder)})
    shutil.copytree(saved_adapter, folder)
    (adapters_dir() / (temp_prefix(folder, "work-") + "a1")).mkdir()
    with qtbot.waitSignal(controller.versionsChanged, timeout=30_000):
        controller.reconcile_training()
    message = window.statusBar().currentMessage()
    assert message.startswith("Earlier training runs: 1 interrupted training run closed; recovered adapter "
                              "lriad-tiny-v2 (inactive; see Model → Versions); 1 leftover folder removed")
    (version,) = store.model_versions()
    assert version.recovered and not version.active
    assert store.training_runs()[0].status == "interrupted" and store.training_runs()[0].id == run.id
    assert sorted(p.name for p in adapters_dir().iterdir()) == ["lriad-tiny-v2"]
    dialog = VersionsDialog(controller, window)
    dialog.refresh()
    dialog.show()
    assert dialog.table.item(0, 0).text() == "recovered" and dialog.table.item(0, 1).text() == "lriad-tiny-v2"
    assert "recovered: its training run ended before registering it (found at the app's start)" in \
        dialog.details.text()
    dialog.grab().save(str(tmp_path / "versions-recovered.png"))
    store.add_model_version("lriad-tiny-v3", version.base_path, version.adapter_path, metrics={"before": {}})
    dialog.refresh()
    dialog.table.selectRow(0)  # newest first; registered before the "after" evaluation, which never finished
    assert dialog.table.item(0, 1).text() == "lriad-tiny-v3" and "no \"after\" figures yet" in dialog.details.text()
    dialog.close()
    window.close()
