"""A hub's file list is input from the network: paths that would land outside the models folder on some
system (`..`, a drive, a root, a backslash) and entries without a path or a size are refused with one
message before anything is written (a hostile listing served by the loopback hub, the real client)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lriad_desktop.core.models.download import DownloadError, listed_path_problem, plan_download
from fake_hub import FakeHub, FakeRepo

REPO = "org/hostile"


@pytest.fixture()
def small_model(tmp_path) -> Path:
    folder = tmp_path / "served"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "qwen2_5_vl"}))
    (folder / "model.safetensors").write_bytes(b"\0" * 64)
    return folder


def _entry(path, size=64) -> dict:
    return {"type": "file", "path": path, "size": size, "oid": "0" * 40}


@pytest.mark.parametrize("path", ["..\\..\\evil.safetensors", "../evil.safetensors", "sub/../../evil.safetensors",
                                  "C:evil.safetensors", "C:\\Windows\\evil.safetensors", "/etc/evil.safetensors",
                                  "\\\\server\\share\\evil.safetensors", "a\\config.json"])
def test_a_listed_path_that_leaves_the_folder_is_refused_before_anything_is_written(small_model, tmp_path, path):
    target = tmp_path / "models" / "org--hostile"
    with FakeHub({REPO: FakeRepo(small_model, extra_listing=[_entry(path)])}) as hub:
        with pytest.raises(DownloadError, match="can't be written inside the models folder.*nothing was downloaded"):
            plan_download(REPO, target, endpoint=hub.url)
        assert not any("/resolve/" in r.path for r in hub.requests)
    assert not (tmp_path / "models").exists()
    assert not list(tmp_path.rglob("evil.safetensors"))


@pytest.mark.parametrize("entry, says", [(_entry("model-2.safetensors", None), "no usable size"),
                                         (_entry("model-2.safetensors", -1), "no usable size"),
                                         (_entry("model-2.safetensors", "64"), "no usable size"),
                                         ({"type": "file", "size": 64, "oid": "0" * 40}, "can't be read")])
def test_a_listing_without_a_size_or_a_path_is_one_message(small_model, tmp_path, entry, says):
    with FakeHub({REPO: FakeRepo(small_model, extra_listing=[entry])}) as hub:
        with pytest.raises(DownloadError, match=says):
            plan_download(REPO, tmp_path / "m", endpoint=hub.url)
    assert not (tmp_path / "m").exists()


def test_ordinary_paths_pass_and_files_never_fetched_are_not_judged(small_model, tmp_path):
    for ok in ("model.safetensors", "config.json", "model-00001-of-00002.safetensors"):
        assert listed_path_problem(ok) == ""
    extra = [_entry("images/a:b.png"), _entry("docs\\notes.txt")]  # never fetched: no reason to refuse the repo
    with FakeHub({REPO: FakeRepo(small_model, extra_listing=extra)}) as hub:
        plan = plan_download(REPO, tmp_path / "m", endpoint=hub.url)
    assert sorted(f.path for f in plan.files) == ["config.json", "model.safetensors"]


def test_a_repo_id_with_a_space_is_one_line_from_the_command(tmp_path, capsys):
    from lriad_desktop.cli.commands import main

    rc = main(["models", "download", "Qwen/Qwen 3-VL", "--to", str(tmp_path / "m")])
    err = capsys.readouterr().err.strip()
    assert rc != 0 and "Traceback" not in err and len(err.splitlines()) == 1
    assert "'Qwen/Qwen 3-VL' is not a repo id" in err and not (tmp_path / "m").exists()


def test_a_connection_lost_for_good_is_one_message_without_the_clients_retry_chatter(small_model, tmp_path):
    """The hub cuts the connection in the middle of the weights and is gone: huggingface_hub retries (each
    retry logged twice), then gives up; the command says so once."""
    import os
    import subprocess
    import sys

    (small_model / "model.safetensors").write_bytes(os.urandom(3 * 1024 * 1024))
    with FakeHub({REPO: FakeRepo(small_model)}) as hub:
        hub.drop_once["model.safetensors"] = 1024 * 1024
        hub.gone_after_drop = True
        env = {**os.environ, "HF_ENDPOINT": hub.url, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        env.pop("HF_HUB_OFFLINE", None)
        res = subprocess.run([sys.executable, "-m", "lriad_desktop", "models", "download", REPO, "--to",
                              str(tmp_path / "m"), "--no-verify"], capture_output=True, text=True, env=env,
                             timeout=300)
    assert res.returncode == 2
    lines = [line for line in res.stderr.splitlines() if line.strip() and not line.startswith("0 B of")]
    assert lines == ["error: The connection to the hub was lost while downloading model.safetensors; everything "
                     "received so far is kept: download again to carry on from there"], res.stderr
    assert (tmp_path / "m" / "config.json").is_file()
