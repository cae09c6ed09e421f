"""Input a user can get wrong on the command line or in a model folder is one line and a non-zero exit, never
a traceback: a server URL that can't be parsed, a negative token budget, a timeout that is not a number, a
pixel budget of 10^12 (which made the resize try to allocate terabytes)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lriad_desktop.core.inspection.coordinates import MAX_PIXEL_BUDGET, read_model_geometry
from lriad_desktop.core.backends.pipeline import BackendUnavailable
from lriad_desktop.core.backends.server import ServerBackend, ServerConfig

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "resources" / "samples" / "washer_scratch.jpg"
BUNDLED = REPO / "resources" / "models" / "lriad-tiny"


def _lriad(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lriad_desktop", *args], capture_output=True, text=True,
                          cwd=REPO, timeout=300)


@pytest.mark.parametrize("args, says", [
    (["--server", "http://[::1"], "error: 'http://[::1' is not a usable model server URL"),
    (["--max-new-tokens", "-5"], "--max-new-tokens is a whole number from 1 to 32768, not '-5'"),
    (["--server-timeout", "nan", "--server", "http://127.0.0.1:9/v1"], "a timeout is a number of seconds"),
    (["--server-max-pixels", str(10 ** 12), "--server", "http://127.0.0.1:9/v1"],
     f"--server-max-pixels is a whole number from 0 to {MAX_PIXEL_BUDGET}"),
    (["--batch-size", "0"], "a batch size is a whole number from 1 to 1024, not '0'"),
])
def test_bad_command_line_values_are_one_error_line(args, says):
    res = _lriad("inspect", str(SAMPLE), *args)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    errors = [line for line in res.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and says in errors[0], res.stderr


@pytest.mark.parametrize("where", ["lriad.json", "preprocessor_config.json"])
def test_a_model_folder_with_a_pixel_budget_of_10_to_the_12_is_one_line(tmp_path, where):
    folder = tmp_path / "model"
    shutil.copytree(BUNDLED, folder)
    path = folder / where
    data = json.loads(path.read_text()) if path.is_file() else {}
    data.update(min_pixels=10 ** 12, max_pixels=10 ** 12)
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="min_pixels 1000000000000 is over the largest pixel budget"):
        read_model_geometry(folder)
    res = _lriad("inspect", str(SAMPLE), "--model", str(folder))
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert res.stderr.strip().splitlines() == [
        f"error: {folder}: bad lriad.json or processor settings: min_pixels 1000000000000 is over the largest "
        f"pixel budget, {MAX_PIXEL_BUDGET} (67 MP; Qwen-VL processors take up to 16.8 MP)"]


def test_a_served_model_declared_with_a_huge_pixel_budget_is_refused_before_any_image():
    from scripted_server import ScriptedServer

    with ScriptedServer("ok") as server:
        with pytest.raises(BackendUnavailable, match="pixel budget can't be used: max_pixels 1000000000000"):
            ServerBackend(ServerConfig(server.url, max_pixels=10 ** 12)).load()
