"""What Qt's X11 window needs from a Linux desktop, checked before Qt tries to open one.

Qt >= 6.5 aborts the whole process ("no Qt platform plugin could be initialized") when its xcb plugin
can't load, after printing a hint that a newcomer rarely reads. A fresh Debian or Ubuntu desktop lacks
libxcb-cursor0 and, on minimal installs, a few more xcb libraries. So before the window opens, the app
asks the dynamic linker what the plugin lacks and, if anything, says which packages to install, in one line.
"""

from __future__ import annotations

import ctypes.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable, Mapping

# The shared libraries Qt's xcb plugin loads (linked, or opened at start like libxcb-cursor), and the
# Debian/Ubuntu package that holds each.
DEBIAN_PACKAGES: dict[str, str] = {
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-xinerama.so.0": "libxcb-xinerama0",
    "libxcb-xinput.so.0": "libxcb-xinput0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-util.so.1": "libxcb-util1",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libOpenGL.so.0": "libopengl0",
    "libfontconfig.so.1": "libfontconfig1",
    "libdbus-1.so.3": "libdbus-1-3",
    "libglib-2.0.so.0": "libglib2.0-0",
}
# Opened by the plugin at start rather than linked, so `ldd` can't see it missing.
OPENED_AT_START = ("xcb-cursor",)
_NOT_FOUND = re.compile(r"^\s*(\S+)\s+=>\s+not found", re.MULTILINE)


def xcb_plugin() -> Path | None:
    """The xcb platform plugin of the installed PySide6, or None where there is none (macOS, Windows)."""
    try:
        import PySide6  # the package only: no Qt library is loaded by this import
    except ImportError:
        return None
    plugin = Path(PySide6.__file__).parent / "Qt" / "plugins" / "platforms" / "libqxcb.so"
    return plugin if plugin.is_file() else None


def wants_x11(env: Mapping[str, str], platform: str = sys.platform) -> bool:
    """Whether Qt will try its X11 (xcb) plugin in this environment."""
    if not platform.startswith("linux"):
        return False
    chosen = env.get("QT_QPA_PLATFORM", "").split(":")[0].strip().lower()
    if chosen:
        return chosen == "xcb"
    if env.get("WAYLAND_DISPLAY") and env.get("XDG_SESSION_TYPE", "").lower() == "wayland":
        return False
    return bool(env.get("DISPLAY"))


def missing_libraries(plugin: Path, ldd: str = "ldd",
                      find_library: Callable[[str], str | None] = ctypes.util.find_library) -> list[str]:
    """The shared libraries `plugin` needs that this system lacks (sonames, sorted; empty when all are there
    or when `ldd` can't be run, so a check that can't look never blocks the app)."""
    missing: set[str] = set()
    if shutil.which(ldd) is not None:
        try:
            out = subprocess.run([ldd, str(plugin)], capture_output=True, text=True, timeout=20, check=False).stdout
        except (OSError, subprocess.SubprocessError):
            out = ""
        missing.update(_NOT_FOUND.findall(out))
    for name in OPENED_AT_START:
        if find_library(name) is None:
            missing.add(f"lib{name}.so.0")
    return sorted(missing)


def install_hint(missing: list[str]) -> str:
    """One message for the inspector: what is missing and the one apt line that installs it."""
    packages = sorted({DEBIAN_PACKAGES.get(name, name) for name in missing})
    return ("error: Qt can't open a window on this desktop: it lacks the X11 libraries "
            f"{', '.join(missing)}.\n"
            f"On Debian or Ubuntu install them with:\n  sudo apt-get install -y {' '.join(packages)}\n"
            "then start lriad again. (Other distributions: the packages holding those libraries.)")


def check_window_libraries(env: Mapping[str, str] | None = None) -> str | None:
    """None when Qt can open a window here; else the message saying what to install."""
    env = os.environ if env is None else env
    if not wants_x11(env):
        return None
    plugin = xcb_plugin()
    if plugin is None:
        return None
    missing = missing_libraries(plugin)
    return install_hint(missing) if missing else None
