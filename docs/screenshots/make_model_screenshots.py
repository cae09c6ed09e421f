"""Screenshots of the Models dialog and the first-launch notice, offscreen:
`python docs/screenshots/make_model_screenshots.py`.

The listed models are random-init folders of several families (`training.bundled_model.tiny_model`), one of
them placed in a Hugging Face cache of the real layout; the download in progress comes from the
test suite's hub on loopback (`tests/fake_hub.py`), throttled so the progress bar is caught
half-way. No network is used.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
OUT = Path(__file__).resolve().parent
REPO_ROOT = OUT.parents[1]
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "tests")]


def _cache(hf_home: Path, repo_id: str, folder: Path) -> None:
    root = hf_home / "hub" / ("models--" + repo_id.replace("/", "--"))
    snapshot = root / "snapshots" / ("c" * 40)
    for d in (root / "blobs", root / "refs", snapshot):
        d.mkdir(parents=True, exist_ok=True)
    for f in folder.iterdir():
        data = f.read_bytes()
        blob = root / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        (snapshot / f.name).symlink_to(os.path.relpath(blob, snapshot))
    (root / "refs" / "main").write_text("c" * 40)


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="lriad-model-shots-"))
    os.environ["LRIAD_DATA_DIR"] = str(work / "data")
    os.environ["HF_HOME"] = str(work / "hf")
    from training.bundled_model.tiny_model import CLI_SPEC, TinyModelSpec, build_family_model

    added = work / "line-3-models"
    build_family_model("qwen3_5", added / "qwen3.5-line3-trial", CLI_SPEC)
    build_family_model("qwen2_vl", added / "qwen2-vl-old-pilot", CLI_SPEC)
    _cache(work / "hf", "acme/Qwen3-VL-Inspect", build_family_model("qwen3_vl", work / "cached", CLI_SPEC))
    big = TinyModelSpec(text_hidden=384, text_layers=4, text_heads=4, text_kv_heads=2, text_intermediate=768,
                        vision_hidden=64, vision_depth=2, vision_heads=2, vision_intermediate=128, vocab_size=600)
    served = build_family_model("qwen3_vl", work / "served" / "Qwen3-VL-4B-Instruct", big)

    from fake_hub import FakeHub, FakeRepo
    from lriad_desktop.core.settings import Settings
    from lriad_desktop.core.store.review_store import ReviewStore
    from lriad_desktop.ui.window.app import create_app
    from lriad_desktop.ui.window.controller import AppController
    from lriad_desktop.ui.window.demo_notice import DemoModelNotice
    from lriad_desktop.ui.window.main_window import MainWindow
    from lriad_desktop.ui.theme import apply_theme

    app = create_app()
    apply_theme(app, "light")
    store = ReviewStore.open()
    controller = AppController(store, Settings(model_folders=(str(added),), device="cpu"), persist_settings=False)
    window = MainWindow(controller, load_model=False)
    window.resize(1440, 900)
    window.show()

    def wait(cond, seconds=60.0):
        end = time.monotonic() + seconds
        while not cond() and time.monotonic() < end:
            app.processEvents()
            time.sleep(0.01)

    def shot(widget, name):
        wait(lambda: False, 0.4)
        widget.grab().save(str(OUT / name))
        print("wrote", OUT / name)

    notice = DemoModelNotice(window)
    notice.show()
    shot(notice, "demo-model-notice.png")
    notice.close()

    window.models.show()
    dialog = window.models.dialog()
    wait(lambda: bool(dialog.entries) and dialog.machine is not None)
    shot(dialog, "models-dialog.png")
    with FakeHub({"Qwen/Qwen3-VL-4B-Instruct": FakeRepo(served)}, throttle_s=0.03) as hub:
        os.environ["HF_ENDPOINT"] = hub.url
        dialog.catalog_table.selectRow(1)
        dialog.download_button.click()
        wait(lambda: dialog.progress.value() > 450 and "left" in dialog.progress.format())
        shot(dialog, "models-dialog-downloading.png")
        dialog.cancel_download()
        wait(lambda: dialog.download is None)
    dialog.close()
    window.close()
    controller.shutdown()
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
