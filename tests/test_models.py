"""Getting a model: listing what is on disk (HF cache in its real layout included) and downloading
with the real huggingface_hub client from a hub on loopback (progress, cancel, resume, a dropped
connection, a full disk, offline)."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import pytest

from lriad_desktop.core.backends.engine import validate_model_folder
from lriad_desktop.core.models.download import (PARTIAL_DIR, DownloadCancelled, DownloadError, HubUnreachable,
                                               check_disk_space, download_model, plan_download, run_download)
from lriad_desktop.core.models.listing import (DEMO_MODEL_NOTE, DOWNLOAD_MARKER, Machine, Source, fit_on, list_models,
                                       memory_needed, smoke_inspect)
from fake_hub import FakeHub, FakeRepo
from training.bundled_model.tiny_model import TinyModelSpec, build_family_model

MB = 1024 * 1024
REPO = "Qwen-test/Tiny-VL"


@pytest.fixture(scope="session")
def served_model(tmp_path_factory) -> Path:
    """A real (random-init) Qwen3-VL folder whose weights are ~24 MB: larger than the client's 10 MB read
    chunks, so a cancel or a dropped connection can happen in the middle of the file."""
    spec = TinyModelSpec(text_hidden=384, text_layers=4, text_heads=4, text_kv_heads=2, text_intermediate=768,
                         vision_hidden=64, vision_depth=2, vision_heads=2, vision_intermediate=128, vocab_size=600)
    folder = build_family_model("qwen3_vl", tmp_path_factory.mktemp("served") / "Tiny-VL", spec)
    (folder / "README.md").write_text("# Tiny-VL\nA random-init test model.\n")
    (folder / "pytorch_model.bin").write_bytes(b"pickle weights are never fetched")
    assert (folder / "model.safetensors").stat().st_size > 20 * MB
    return folder


def _same_files(a: Path, b: Path, names) -> bool:
    return all(hashlib.sha256((a / n).read_bytes()).digest() == hashlib.sha256((b / n).read_bytes()).digest()
               for n in names)


# --- listing -----------------------------------------------------------------------------------
def _put_in_hf_cache(cache: Path, repo_id: str, folder: Path, commit: str = "a" * 40) -> Path:
    """The hub cache's real layout: blobs by sha256, a snapshot of symlinks, refs/main."""
    root = cache / ("models--" + repo_id.replace("/", "--"))
    (root / "blobs").mkdir(parents=True)
    (root / "refs").mkdir()
    snapshot = root / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for f in folder.iterdir():
        if f.is_file():
            data = f.read_bytes()
            blob = root / "blobs" / hashlib.sha256(data).hexdigest()
            blob.write_bytes(data)
            (snapshot / f.name).symlink_to(os.path.relpath(blob, snapshot))
    (root / "refs" / "main").write_text(commit)
    return snapshot


@pytest.mark.skipif(sys.platform == "win32", reason="symlinks")
def test_models_list_json_finds_a_model_in_the_hf_cache_by_repo_id(tmp_path, tiny_model_dir, monkeypatch, capsys):
    from lriad_desktop.cli.commands import main

    hf_home = tmp_path / "hf-home"
    snapshot = _put_in_hf_cache(hf_home / "hub", "acme/Inspector-VL", tiny_model_dir)
    text_only = tmp_path / "text-only"
    text_only.mkdir()
    (text_only / "config.json").write_text(json.dumps({"model_type": "qwen2"}))
    _put_in_hf_cache(hf_home / "hub", "acme/Text-LM", text_only, commit="b" * 40)
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(hf_home))
    assert main(["models", "list", "--json", "--no-fit"]) == 0
    rows = json.loads(capsys.readouterr().out)
    cached = [r for r in rows if r["source"] == Source.HF_CACHE]
    assert [r["name"] for r in cached] == ["acme/Inspector-VL"]  # the text-only model is not offered
    row = cached[0]
    assert row["path"] == str(snapshot) and row["usable"] and row["family"] == "Qwen2.5-VL"
    assert row["frame"] == "model_pixels" and row["parameters"] > 100_000 and row["size_bytes"] > 100_000
    bundled = next(r for r in rows if r["source"] == Source.BUNDLED)
    assert bundled["note"] == DEMO_MODEL_NOTE and bundled["parameters"] == 6_335_680
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "elsewhere"))  # HF_HUB_CACHE wins over HF_HOME
    assert not [e for e in list_models() if e.source == Source.HF_CACHE]


def test_list_shows_models_folder_added_folders_and_what_is_wrong(tmp_path, tiny_model_dir, monkeypatch):
    own = tmp_path / "models"
    (own / "broken").mkdir(parents=True)
    (own / "broken" / "config.json").write_text(json.dumps({"model_type": "qwen2_5_vl"}))
    (own / "half").mkdir()
    (own / "half" / DOWNLOAD_MARKER).write_text(json.dumps({"repo_id": "org/half"}))
    entries = list_models([str(tiny_model_dir), str(tmp_path / "gone")], own_folder=own, cache_dir=tmp_path / "none")
    by_name = {e.name: e for e in entries}
    assert by_name["broken"].source == Source.MODELS_FOLDER and "no model weights" in by_name["broken"].problem
    assert "download not finished" in by_name["org/half"].problem
    assert by_name[tiny_model_dir.name].usable and by_name[tiny_model_dir.name].source == Source.ADDED
    assert "not found" in by_name["gone"].problem
    again = list_models([str(tiny_model_dir), str(tiny_model_dir)], own_folder=own, cache_dir=tmp_path / "none")
    assert len([e for e in again if e.name == tiny_model_dir.name]) == 1


def test_fit_estimates():
    seven_b = 8_290_000_000
    gpu24 = Machine("RTX 4090", 23 * 1024 ** 3, 24 * 1024 ** 3, 64 * 1024 ** 3)
    assert fit_on(seven_b, gpu24).fits is True and "RTX 4090" in fit_on(seven_b, gpu24).text
    assert fit_on(seven_b, Machine("T4", 14 * 1024 ** 3, 16 * 1024 ** 3)).fits is False
    cpu = fit_on(seven_b, Machine(ram_total_bytes=16 * 1024 ** 3))
    assert cpu.fits is False and "no GPU" in cpu.text
    assert fit_on(None, gpu24).fits is None
    assert memory_needed(seven_b) < memory_needed(seven_b, on_gpu=False)


# --- downloading --------------------------------------------------------------------------------
WANTED = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "processor_config.json",
          "generation_config.json", "chat_template.jinja", "README.md")


def test_download_shows_progress_and_ends_in_a_validated_folder(served_model, tmp_path):
    target = tmp_path / "models" / "Tiny-VL"
    reports = []
    with FakeHub({REPO: FakeRepo(served_model)}) as hub:
        plan = plan_download(REPO, target, endpoint=hub.url)
        assert plan.revision == FakeRepo(served_model).commit
        assert {f.path for f in plan.files} == {n for n in WANTED if (served_model / n).exists()}  # no .bin
        folder = run_download(plan, reports.append)
    assert folder == target and _same_files(served_model, target, [f.path for f in plan.files])
    assert not (target / "pytorch_model.bin").exists() and not (target / PARTIAL_DIR).exists()
    assert not (target / DOWNLOAD_MARKER).exists()
    assert json.loads((target / "lriad_download.json").read_text())["repo_id"] == REPO
    assert reports[0].done_bytes == 0 and reports[-1].done_bytes == reports[-1].total_bytes == plan.total_bytes
    assert all(a.done_bytes <= b.done_bytes for a, b in zip(reports, reports[1:]))
    assert "of" in reports[-1].text() and reports[-1].bytes_per_s > 0
    assert validate_model_folder(target).model_type == "qwen3_vl"
    result = smoke_inspect(target, device="cpu", max_new_tokens=4)
    assert result.ok and "loads on cpu" in result.text
    assert [e for e in list_models(own_folder=tmp_path / "models", cache_dir=tmp_path) if e.name == REPO][0].usable


def test_cancel_mid_file_then_resume_fetches_only_the_rest(served_model, tmp_path):
    target = tmp_path / "Tiny-VL"
    weights = (served_model / "model.safetensors").stat().st_size
    stop = {"now": False}

    def progress(p):
        if p.file == "model.safetensors" and p.done_bytes > p.total_bytes - weights:
            stop["now"] = True  # the first 10 MB of the weights are on disk: press Cancel

    with FakeHub({REPO: FakeRepo(served_model)}, throttle_s=0.002) as hub:
        plan = plan_download(REPO, target, endpoint=hub.url)
        with pytest.raises(DownloadCancelled):
            run_download(plan, progress, cancelled=lambda: stop["now"])
        part = target / PARTIAL_DIR / "model.safetensors.part"
        kept = part.stat().st_size
        assert 0 < kept < weights and not (target / "model.safetensors").exists()
        assert (target / "config.json").is_file() and (target / DOWNLOAD_MARKER).is_file()
        assert "download not finished" in list_models(own_folder=tmp_path, cache_dir=tmp_path)[-1].problem
        served_before = hub.bytes_served
        run_download(plan_download(REPO, target, endpoint=hub.url))  # resume
        resumed = hub.resolve_requests("model.safetensors")[-1]
        assert resumed.range == f"bytes={kept}-"
        # only the rest came again (plus the small config.json the plan reads, and pieces still in flight)
        assert hub.bytes_served - served_before <= weights - kept + MB < weights
        assert len(hub.resolve_requests("config.json")) == 3  # each plan reads it; it was downloaded once
    assert _same_files(served_model, target, ["model.safetensors", "config.json"])
    assert validate_model_folder(target).model_type == "qwen3_vl"


def test_a_dropped_connection_carries_on_from_the_byte_it_reached(served_model, tmp_path):
    with FakeHub({REPO: FakeRepo(served_model)}) as hub:
        hub.drop_once["model.safetensors"] = 15 * MB
        folder = download_model(REPO, tmp_path / "m", endpoint=hub.url)
        gets = [r for r in hub.resolve_requests("model.safetensors") if r.method == "GET"]
    assert [r.range for r in gets] == [None, f"bytes={10 * MB}-"]  # the client's retry asks for the rest
    assert _same_files(served_model, folder, ["model.safetensors"])


def test_no_space_before_the_start(served_model, tmp_path):
    repo = FakeRepo(served_model, listed_sizes={"model.safetensors": 10 ** 15})  # a petabyte of weights
    with FakeHub({REPO: repo}) as hub:
        plan = plan_download(REPO, tmp_path / "m", endpoint=hub.url)
        with pytest.raises(DownloadError, match="needs 1000000.0 GB more"):
            check_disk_space(plan)
        assert not hub.resolve_requests("model.safetensors")  # nothing large was fetched


@pytest.mark.skipif(not sys.platform.startswith("linux") or not os.access("/dev/full", os.W_OK),
                    reason="needs /dev/full")
def test_a_full_disk_mid_download_keeps_what_arrived(served_model, tmp_path):
    target = tmp_path / "m"
    with FakeHub({REPO: FakeRepo(served_model)}) as hub:
        plan = plan_download(REPO, target, endpoint=hub.url)
        (target / PARTIAL_DIR).mkdir(parents=True)
        part = target / PARTIAL_DIR / "model.safetensors.part"
        part.symlink_to("/dev/full")  # every write there fails with ENOSPC, as on a full disk
        with pytest.raises(DownloadError, match="disk holding .* is full. Everything received so far is kept"):
            run_download(plan)
        assert (target / "config.json").is_file() and (target / DOWNLOAD_MARKER).is_file()
        part.unlink()  # space freed
        run_download(plan)
    assert validate_model_folder(target).model_type == "qwen3_vl"


def test_offline_gives_the_hf_download_command(tmp_path, monkeypatch):
    import socket

    with socket.socket() as s:  # a loopback port nobody listens on: connection refused
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    with pytest.raises(HubUnreachable) as err:
        plan_download("Qwen/Qwen3-VL-4B-Instruct", tmp_path / "m", endpoint=closed)
    message = str(err.value)
    assert "hf download Qwen/Qwen3-VL-4B-Instruct --local-dir Qwen3-VL-4B-Instruct" in message
    assert "copy the folder" in message and not (tmp_path / "m").exists()
    monkeypatch.setenv("LRIAD_DOWNLOADS_OFF", "1")  # the user started the app with HF_HUB_OFFLINE=1
    with pytest.raises(HubUnreachable, match="switched off: HF_HUB_OFFLINE=1"):
        plan_download("Qwen/Qwen3-VL-4B-Instruct", tmp_path / "m", endpoint=closed)


def test_hub_answers_become_one_message(served_model, tmp_path):
    text_only = tmp_path / "text"
    text_only.mkdir()
    (text_only / "config.json").write_text(json.dumps({"model_type": "qwen2"}))
    (text_only / "model.safetensors").write_bytes((served_model / "model.safetensors").read_bytes()[:4096])
    repos = {REPO: FakeRepo(served_model), "org/gated": FakeRepo(served_model, gated=True),
             "org/text": FakeRepo(text_only)}
    with FakeHub(repos) as hub:
        with pytest.raises(DownloadError, match="no model 'org/missing'"):
            plan_download("org/missing", tmp_path / "a", endpoint=hub.url)
        with pytest.raises(DownloadError, match="gated.*hf auth login"):
            plan_download("org/gated", tmp_path / "b", endpoint=hub.url)
        with pytest.raises(DownloadError, match="'qwen2' model.*supported families"):
            plan_download("org/text", tmp_path / "c", endpoint=hub.url)
        with pytest.raises(DownloadError, match="ORGANISATION/NAME"):
            plan_download("just-a-name", tmp_path / "d", endpoint=hub.url)
        assert not hub.resolve_requests("model.safetensors")


def test_models_download_command(served_model, tmp_path, capsys):
    from lriad_desktop.cli.commands import main

    with FakeHub({REPO: FakeRepo(served_model)}) as hub:
        os.environ["HF_ENDPOINT"] = hub.url
        try:
            rc = main(["models", "download", REPO, "--to", str(tmp_path / "m"), "--json", "--device", "cpu"])
        finally:
            del os.environ["HF_ENDPOINT"]
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rc == 0 and lines[-1]["event"] == "done" and lines[-1]["verified"] is True
    assert any(e["event"] == "progress" and e["done_bytes"] == e["total_bytes"] for e in lines)
    assert main(["models", "download"]) == 0 and "Qwen/Qwen3.5-2B" in capsys.readouterr().out  # the catalog
