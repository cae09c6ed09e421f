"""A YOLO export is staged in a hidden `.NAME.*` folder and swapped in at the end; an export killed midway left
that folder behind (172 MB each time). The next export removes staging folders whose export is gone (their
OS lock is free) and leaves alone the one a running export is filling."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from PIL import Image

from lriad_desktop.core.evaluation.export import export_reviewed
from lriad_desktop.core.inspection.finding import Box, Defect, Verdict
from lriad_desktop.core.store.review import Review, ReviewKind
from lriad_desktop.core.store.review_store import ReviewStore

REPO = Path(__file__).resolve().parents[1]
HOLD = ("import sys, time\n"
        "from lriad_desktop.core.atomic_files import atomic_folder\n"
        "with atomic_folder(sys.argv[1]) as stage:\n"
        "    (stage / 'images').mkdir()\n"
        "    (stage / 'images' / 'big.bin').write_bytes(b'x' * 1_000_000)\n"
        "    print(stage, flush=True)\n"
        "    time.sleep(600)\n")


def _export_in_progress(target: Path) -> tuple[subprocess.Popen, Path]:
    """A real process in the middle of filling the staging folder of `target`."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(target)], stdout=subprocess.PIPE, text=True,
                            cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    return proc, Path(proc.stdout.readline().strip())


def _store(tmp_path: Path) -> ReviewStore:
    store = ReviewStore.open(tmp_path / "r.sqlite3")
    Image.new("RGB", (60, 40)).save(tmp_path / "a.png")
    image = store.add_image(tmp_path / "a.png", "washer")
    store.save_review(image.id, Review(ReviewKind.FLAG, Verdict.ANOMALOUS, (Defect("scratch", Box(1, 1, 20, 20)),)))
    return store


def test_a_killed_exports_staging_is_cleaned_by_the_next_and_a_running_ones_is_not(tmp_path):
    target = tmp_path / "yolo"
    killed_first, stage_beside = _export_in_progress(target)  # the first export: staged beside the folder
    killed_first.send_signal(signal.SIGKILL)
    killed_first.wait(timeout=30)
    store = _store(tmp_path)
    export_reviewed(store, "yolo", target)
    killed_again, stage_inside = _export_in_progress(target)  # a later one: staged inside it
    killed_again.send_signal(signal.SIGKILL)
    killed_again.wait(timeout=30)
    assert not stage_beside.exists()  # the second export cleaned what the first left
    assert stage_inside.parent == target and (stage_inside / "images" / "big.bin").is_file()
    running, live_stage = _export_in_progress(target)
    try:
        assert not stage_inside.exists() and live_stage.parent == target  # cleaned by the next one, once it began
        result = export_reviewed(store, "yolo", target)
        assert live_stage.is_dir() and (live_stage / "images" / "big.bin").is_file()  # the running one's
        assert result.images == 1 and (target / "labels").is_dir()
    finally:
        running.send_signal(signal.SIGKILL)
        running.wait(timeout=30)
        store.close()
    hidden = sorted(p.name for p in list(target.iterdir()) + list(tmp_path.iterdir()) if p.name.startswith("."))
    assert len(hidden) == 2  # the last killed one's folder and its lock file, until the next export
    export_reviewed(ReviewStore.open(tmp_path / "r.sqlite3"), "yolo", target)
    assert not [p for p in list(target.iterdir()) + list(tmp_path.iterdir()) if p.name.startswith(".")]
