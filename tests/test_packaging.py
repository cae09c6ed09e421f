"""What the packaged app relies on: the self-test, the process launcher and desktop integration.

The frozen build itself is checked by `scripts/build_app.sh` (it runs the frozen --self-test).
"""

import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lriad_desktop import launcher
from lriad_desktop.core.paths import bundled_model_dir
from lriad_desktop.selftest import run_self_test

ROOT = Path(__file__).resolve().parents[1]


def test_self_test_passes_on_the_bundled_model_and_prints_one_line(tmp_path):
    env = {**os.environ, "LRIAD_DATA_DIR": str(tmp_path / "data")}
    proc = subprocess.run([sys.executable, "-m", "lriad_desktop", "--self-test"], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=600)
    lines = proc.stdout.splitlines()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert len(lines) == 1 and lines[0].startswith("lriad self-test OK")
    for part in ("model lriad-tiny", "metal_hole.jpg", "anomaly map on EfficientNet-Lite0", "store round trip",
                 "1 GRPO step"):
        assert part in lines[0]
    assert not (tmp_path / "data").exists()  # the user's store and settings are never touched


def test_self_test_names_the_failing_step_for_a_missing_model(tmp_path):
    out = io.StringIO()
    assert run_self_test(model=tmp_path / "no-such-model", out=out) == 1
    line = out.getvalue()
    assert line.count("\n") == 1
    assert line.startswith("lriad self-test FAILED while loading the model:") and "no-such-model" in line


def test_self_test_reports_corrupt_weights(tmp_path, capsys):
    model = tmp_path / "broken"
    shutil.copytree(bundled_model_dir(), model)
    weights = model / "model.safetensors"
    with open(weights, "r+b") as fh:
        fh.truncate(6_000_000)
    out = io.StringIO()
    assert run_self_test(model=model, out=out) == 1
    assert out.getvalue() == (f"lriad self-test FAILED while loading the model: {weights} is cut short "
                              f"(6,000,000 of {(bundled_model_dir() / 'model.safetensors').stat().st_size:,} bytes): "
                              "copy it again\n")
    assert "Traceback" not in capsys.readouterr().err


def test_self_test_reports_a_later_failure_and_stops():
    ran = []

    def ok(ctx):
        ran.append("ok")
        return "fine"

    def broken(ctx):
        raise OSError(28, "No space left on device")

    def never(ctx):
        ran.append("never")
        return ""

    out = io.StringIO()
    assert run_self_test(out=out, checks=(("first", ok), ("the review store", broken), ("last", never))) == 1
    assert ran == ["ok"]
    assert out.getvalue() == "lriad self-test FAILED while the review store: [Errno 28] No space left on device\n"


def test_windowed_process_gets_streams_in_the_log_file(monkeypatch, tmp_path):
    monkeypatch.setenv("LRIAD_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(sys, "stdout", None)
    monkeypatch.setattr(sys, "stderr", None)
    launcher.prepare_streams()
    try:
        print("hello from a windowed app")
        sys.stderr.write("and its warnings\n")
        sys.stdout.flush()
        log = (tmp_path / "data" / "logs" / "lriad.log").read_text()
    finally:
        sys.stdout.close()
    assert "hello from a windowed app" in log and "and its warnings" in log


def test_unwritable_log_falls_back_to_nothing_rather_than_crashing(monkeypatch, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("LRIAD_DATA_DIR", str(blocker))
    monkeypatch.setattr(sys, "stdout", None)
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    launcher.prepare_streams()
    try:
        print("dropped")
        assert sys.stdout.name == os.devnull
    finally:
        sys.stdout.close()


def test_launcher_keeps_every_hub_library_offline(monkeypatch, tmp_path):
    for key in launcher.OFFLINE_ENV:
        monkeypatch.delenv(key, raising=False)
    rc = launcher.main(["train", "--db", str(tmp_path / "none.sqlite3"), "--out", str(tmp_path / "adapter")])
    assert rc == 2  # the frozen app's `train` dispatch: no store yet is bad input, not a crash
    assert all(os.environ[key] == value for key, value in launcher.OFFLINE_ENV.items())


@pytest.mark.skipif(sys.platform != "linux", reason="freedesktop menu entries are Linux-only")
def test_desktop_entry_install_and_uninstall(tmp_path):
    app = tmp_path / "my apps" / "lriad"
    app.parent.mkdir()
    app.write_text("#!/bin/sh\n")
    app.chmod(0o755)
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "share")}
    script = ROOT / "packaging" / "install_desktop.sh"
    subprocess.run(["bash", str(script), str(app)], check=True, env=env, capture_output=True)
    entry = (tmp_path / "share" / "applications" / "lriad-desktop.desktop").read_text()
    assert f'Exec="{app}" gui %F' in entry and f"TryExec={app}" in entry and "Icon=lriad-desktop" in entry
    assert "MimeType=image/png;image/jpeg;" in entry
    assert (tmp_path / "share" / "icons" / "hicolor" / "scalable" / "apps" / "lriad-desktop.svg").is_file()
    subprocess.run(["bash", str(script), "--uninstall"], check=True, env=env, capture_output=True)
    assert not (tmp_path / "share" / "applications" / "lriad-desktop.desktop").exists()
    missing = subprocess.run(["bash", str(script), str(tmp_path / "nowhere")], env=env, capture_output=True, text=True)
    assert missing.returncode == 2 and "no executable" in missing.stderr
