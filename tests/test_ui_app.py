"""`lriad gui … --screenshot`: a real inspection drawn and saved headless; failures exit non-zero with a message."""

import subprocess
import sys

from PIL import Image

from lriad_desktop.core.backends.engine import ModelFolderError
from lriad_desktop.core.store.review_store import ReviewStore
from lriad_desktop.ui.window.app import run_gui
from test_ui_helpers import UI_MARKS, no_leaked_windows, part_image  # noqa: F401

pytestmark = UI_MARKS


def test_screenshot_mode_from_the_command_line(tmp_path, tiny_model_dir):
    img = part_image(tmp_path / "part.png")
    out = tmp_path / "shots" / "window.png"
    res = subprocess.run([sys.executable, "-m", "lriad_desktop", "gui", str(img), "--model", str(tiny_model_dir),
                          "--device", "cpu", "--screenshot", str(out)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "screenshot saved" in res.stdout
    assert Image.open(out).size == (1440, 900)


def test_screenshot_mode_in_process_and_its_failures(qapp, tmp_path, inspector, capsys):
    img = part_image(tmp_path / "part.png")
    out = tmp_path / "ok.png"
    assert run_gui([img], screenshot=out, inspector_factory=lambda s: inspector) == 0
    assert out.is_file()
    # a second run waits for its own inspection, not the finding already in the store
    assert run_gui([img], screenshot=out, inspector_factory=lambda s: inspector) == 0
    with ReviewStore.open() as store:
        (image,) = [s.image for s in store.lookup_paths([str(img)]).values()]
        count = store._db.execute("SELECT count(*) FROM inspections WHERE image_id = ?", (image.id,)).fetchone()[0]
    assert count == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run_gui([empty], screenshot=tmp_path / "no.png", inspector_factory=lambda s: inspector) == 1
    assert "no images found" in capsys.readouterr().err
    assert run_gui([img], model=tmp_path / "nope", screenshot=tmp_path / "no.png") == 2
    assert "error: Model folder not found" in capsys.readouterr().err

    def broken(settings):
        raise ModelFolderError("weights don't match the config")

    assert run_gui([img], screenshot=tmp_path / "no.png", inspector_factory=broken) == 2
    assert "weights don't match the config" in capsys.readouterr().err
    assert not (tmp_path / "no.png").exists()
