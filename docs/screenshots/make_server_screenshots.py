"""Screenshots of the app on a model server: `python docs/screenshots/make_server_screenshots.py`.

Starts a real `transformers serve` on the bundled model (loopback, CPU, fp32), shows the settings with
"On a model server" chosen after *Test connection*, then the window with a finding that came from the server.
Needs the serving extra (`pip install "transformers[serving]==5.24.0"`).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
OUT = Path(__file__).resolve().parent
REPO = OUT.parents[1]
sys.path.insert(0, str(REPO))


def start_server() -> tuple[subprocess.Popen, str]:
    import httpx2

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = "import sys; from transformers.cli.transformers import main; sys.argv[0] = 'transformers'; sys.exit(main())"
    proc = subprocess.Popen([sys.executable, "-c", code, "serve", "resources/models/lriad-tiny", "--device", "cpu",
                             "--dtype", "float32", "--host", "127.0.0.1", "--port", str(port)], cwd=REPO,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    for _ in range(360):
        try:
            if httpx2.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return proc, f"http://127.0.0.1:{port}/v1"
        except httpx2.HTTPError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit("transformers serve did not start")


def main() -> int:
    os.chdir(REPO)  # the served model's id is its relative folder, which this process then sees too
    work = Path(tempfile.mkdtemp(prefix="lriad-server-shots-"))
    os.environ["LRIAD_DATA_DIR"] = str(work / "data")
    proc, url = start_server()
    try:
        from PySide6.QtWidgets import QApplication

        from lriad_desktop.core.settings import Settings
        from lriad_desktop.core.store.review_store import ReviewStore
        from lriad_desktop.ui.window.app import create_app
        from lriad_desktop.ui.window.controller import AppController
        from lriad_desktop.ui.review.inspection import default_inspector
        from lriad_desktop.ui.window.main_window import MainWindow
        from lriad_desktop.ui.dialogs.settings_dialog import SettingsDialog
        from lriad_desktop.ui.theme import apply_theme

        app = create_app()
        apply_theme(app, "light")

        def wait(predicate, seconds=120.0):
            deadline = time.monotonic() + seconds
            while not predicate() and time.monotonic() < deadline:
                app.processEvents()
                time.sleep(0.02)

        settings = Settings(inference="server", server_url=url, server_in_flight=4)
        folder = work / "washer"
        folder.mkdir()
        for name in ("washer_scratch.jpg", "bottle_good.jpg", "metal_hole.jpg"):
            shutil.copy(REPO / "resources" / "samples" / name, folder / name)
        controller = AppController(ReviewStore.open(), settings, inspector_factory=default_inspector,
                                   persist_settings=False)
        window = MainWindow(controller)
        window.resize(1280, 800)
        window.show()
        dialog = SettingsDialog(settings, window, runner=controller.runner)
        dialog.show()
        dialog.test_button.click()
        wait(lambda: dialog.test_button.isEnabled() and dialog.test_status.text().startswith(("✓", "The", "http")))
        dialog.resize(620, dialog.sizeHint().height())
        app.processEvents()
        dialog.grab().save(str(OUT / "settings-model-server.png"))
        dialog.close()
        controller.add_paths([str(folder / "washer_scratch.jpg")])
        wait(lambda: controller.queue.rowCount() == 1 and not controller.scanning)
        window.inspect_all()
        wait(lambda: controller.queue.entry(0).finding is not None)
        window.queue_view.setCurrentIndex(controller.queue.index(0, 0))
        wait(lambda: window.view.image is not None, 10)
        for _ in range(20):
            app.processEvents()
            time.sleep(0.02)
        window.grab().save(str(OUT / "server-finding.png"))
        print(controller.queue.entry(0).finding.model_version, controller.queue.entry(0).finding.labels)
        window.close()
        controller.shutdown()
        QApplication.processEvents()
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
