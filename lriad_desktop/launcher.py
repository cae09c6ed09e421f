"""The process entry point of `lriad`, the frozen app and `python -m lriad_desktop`.

Prepares the process before anything heavy is imported: multiprocessing in a frozen build,
standard streams that exist (a windowed build has none, and transformers' logging and tqdm
write to them), offline Hugging Face libraries, and logging. `LRIAD_DEBUG=1` turns on debug
logging and, in a windowed Windows build, opens a console for it.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Sequence

# Nothing at run time may reach a model hub or send telemetry; the one exception is a download the
# user starts in Model → Models… or with `lriad models download` (core.models.download).
OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "1",
}
LOG_NAME = "lriad.log"


def debug_enabled() -> bool:
    return os.environ.get("LRIAD_DEBUG", "").strip().lower() in {"1", "true", "yes", "on"}


def log_path() -> Path:
    """Where a windowed app's output goes: `<user data>/logs/lriad.log`."""
    from lriad_desktop.core.paths import user_data_dir

    return user_data_dir() / "logs" / LOG_NAME


def _open_log():
    try:
        path = log_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        return open(path, "a", encoding="utf-8", errors="replace", buffering=1)
    except OSError:  # read-only or full disk: output is dropped rather than crashing the app
        return open(os.devnull, "w", encoding="utf-8")


def _windows_console() -> bool:
    """Open a console for a windowed Windows build (LRIAD_DEBUG=1); True when one is attached."""
    if sys.platform != "win32":
        return False
    import ctypes

    kernel32 = ctypes.windll.kernel32
    if not (kernel32.AttachConsole(-1) or kernel32.AllocConsole()):  # the parent's console, else a new one
        return False
    sys.stdout = open("CONOUT$", "w", encoding="utf-8", errors="replace", buffering=1)
    sys.stderr = open("CONOUT$", "w", encoding="utf-8", errors="replace", buffering=1)
    return True


def prepare_streams() -> None:
    """Give the process a stdout and stderr: a console when debugging, else the log file."""
    if sys.stdout is not None and sys.stderr is not None:
        return
    if debug_enabled() and _windows_console():
        return
    log = None
    if sys.stdout is None:
        log = _open_log()
        sys.stdout = log
    if sys.stderr is None:
        sys.stderr = log or _open_log()


def configure_logging() -> None:
    level = logging.DEBUG if debug_enabled() else logging.WARNING
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if debug_enabled():
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "info")


def main(argv: Sequence[str] | None = None) -> int:
    import multiprocessing

    multiprocessing.freeze_support()  # first: a frozen child process must not start the app again
    prepare_streams()
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}:
        os.environ.setdefault("LRIAD_DOWNLOADS_OFF", "1")  # the user's choice, not ours: no downloads either
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
    configure_logging()
    from lriad_desktop.cli.commands import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
