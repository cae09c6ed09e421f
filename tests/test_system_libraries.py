"""A Linux desktop that lacks the X11 libraries Qt needs gets the one apt line, not Qt's abort."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from lriad_desktop.ui.window.system_libraries import install_hint, missing_libraries, wants_x11


def _fake_ldd(folder: Path, missing: list[str]) -> Path:
    ldd = folder / "ldd"
    lines = "".join(f'echo "\t{name} => not found"\n' for name in missing)
    ldd.write_text(f"#!/bin/sh\necho \"\tlibxcb.so.1 => /usr/lib/libxcb.so.1 (0x0)\"\n{lines}")
    ldd.chmod(0o755)
    return ldd


def test_missing_libraries_come_from_the_linker_and_the_cursor_library(tmp_path):
    ldd = _fake_ldd(tmp_path, ["libxcb-icccm.so.4", "libxcb-keysyms.so.1", "libxcb-icccm.so.4"])
    found = missing_libraries(tmp_path / "libqxcb.so", ldd=str(ldd), find_library=lambda name: None)
    assert found == ["libxcb-cursor.so.0", "libxcb-icccm.so.4", "libxcb-keysyms.so.1"]
    assert missing_libraries(tmp_path / "libqxcb.so", ldd=str(_fake_ldd(tmp_path, [])),
                             find_library=lambda name: f"lib{name}.so.0") == []
    hint = install_hint(found)
    assert "sudo apt-get install -y libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1" in hint


def test_only_an_x11_session_is_checked():
    assert wants_x11({"DISPLAY": ":0"}, "linux")
    assert not wants_x11({"DISPLAY": ":0", "QT_QPA_PLATFORM": "offscreen"}, "linux")
    assert wants_x11({"QT_QPA_PLATFORM": "xcb"}, "linux")
    assert not wants_x11({"WAYLAND_DISPLAY": "wayland-0", "XDG_SESSION_TYPE": "wayland", "DISPLAY": ":0"}, "linux")
    assert not wants_x11({"DISPLAY": ":0"}, "darwin")
    assert not wants_x11({}, "linux")


def test_the_app_prints_the_apt_line_and_exits_instead_of_aborting(tmp_path):
    """`lriad` on an X11 desktop whose linker can't find the xcb libraries (a fresh Debian desktop)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _fake_ldd(bin_dir, ["libxcb-icccm.so.4"])
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "WAYLAND_DISPLAY")}
    env.update(DISPLAY=":97", PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", HOME=str(tmp_path),
               XDG_DATA_HOME=str(tmp_path / "data"), XDG_CONFIG_HOME=str(tmp_path / "config"))
    run = subprocess.run([sys.executable, "-m", "lriad_desktop", "gui"], capture_output=True, text=True, env=env,
                         timeout=120)
    assert run.returncode == 2
    assert "sudo apt-get install -y" in run.stderr and "libxcb-icccm4" in run.stderr
    assert "Traceback" not in run.stderr and "Aborted" not in run.stderr
