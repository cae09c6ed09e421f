"""The hot folder (real watchdog observers on a real folder): complete files only, in landing order."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from lriad_desktop.core.line.hot_folder import HotFolder, HotFolderError, is_landing_image, is_temporary_name

SAMPLES = Path(__file__).resolve().parents[1] / "resources" / "samples"


def _collect(folder: HotFolder, seconds: float) -> list[Path]:
    got: list[Path] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        got += folder.wait(0.1)
    return got


def _slow_copy(src: Path, dest: Path, chunks: int = 5, pause_s: float = 0.5) -> None:
    data = src.read_bytes()
    step = len(data) // chunks + 1
    with open(dest, "wb") as fh:
        for i in range(0, len(data), step):
            fh.write(data[i:i + step])
            fh.flush()
            os.fsync(fh.fileno())
            time.sleep(pause_s)


def test_names_writers_use_while_writing_are_not_images_yet():
    for name in ("frame.png.part", ".frame.png", "~frame.png", "frame.tmp", "frame.png.crdownload", "frame.png~"):
        assert is_temporary_name(name), name
        assert not is_landing_image(Path(name))
    assert is_landing_image(Path("frame_0001.PNG"))
    assert not is_landing_image(Path("notes.txt"))


def test_files_already_there_come_first_oldest_first(tmp_path):
    for i, name in enumerate(["b.jpg", "a.jpg", "c.jpg"]):
        (tmp_path / name).write_bytes((SAMPLES / "metal_hole.jpg").read_bytes())
        os.utime(tmp_path / name, ns=(1_000_000_000 * (i + 1), 1_000_000_000 * (i + 1)))
    (tmp_path / "readme.txt").write_text("not an image")
    with HotFolder(tmp_path, settle_s=0.1) as folder:
        assert _collect(folder, 1.0) == [tmp_path / "b.jpg", tmp_path / "a.jpg", tmp_path / "c.jpg"]


def test_landing_order_and_nothing_handed_over_twice(tmp_path):
    with HotFolder(tmp_path, settle_s=0.2) as folder:
        for name in ("one.jpg", "two.jpg", "three.jpg"):
            (tmp_path / name).write_bytes((SAMPLES / "bottle_good.jpg").read_bytes())
            time.sleep(0.05)
        assert _collect(folder, 1.5) == [tmp_path / n for n in ("one.jpg", "two.jpg", "three.jpg")]


@pytest.mark.parametrize("polling", [False, True], ids=["events", "polling"])
def test_a_slow_copy_is_handed_over_once_after_it_is_complete(tmp_path, polling):
    """Pauses longer than the settle time: inotify's close event holds it back; polling relies on the settle
    time alone, so that case uses a settle time longer than the pauses."""
    import threading

    src = SAMPLES / "pcb_missing_part.jpg"
    settle = 0.3 if not polling else 1.2
    closed_at: list[float] = []

    def copy() -> None:
        _slow_copy(src, dest, 5, 0.5)
        closed_at.append(time.monotonic())

    with HotFolder(tmp_path, settle_s=settle, polling=polling, poll_interval_s=0.2) as folder:
        if not polling and not folder.reports_closes:
            pytest.skip("this platform's watcher reports no file closes")
        dest = tmp_path / "slow.jpg"
        handed: list[tuple[float, Path]] = []
        writer = threading.Thread(target=copy)
        writer.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (writer.is_alive() or time.monotonic() < closed_at[0] + settle + 1.5):
            handed += [(time.monotonic(), p) for p in folder.wait(0.1)]
        writer.join()
    assert [p for _, p in handed] == [dest]
    assert handed[0][0] >= closed_at[0]  # not before the writer was done
    assert dest.read_bytes() == src.read_bytes()


def test_a_temporary_file_renamed_into_place_is_handed_over_at_the_rename(tmp_path):
    with HotFolder(tmp_path, settle_s=0.2) as folder:
        part = tmp_path / "frame.jpg.part"
        part.write_bytes((SAMPLES / "fabric_good.jpg").read_bytes())
        assert _collect(folder, 0.8) == []
        part.rename(tmp_path / "frame.jpg")
        assert _collect(folder, 1.0) == [tmp_path / "frame.jpg"]


def test_sub_folders_count_and_the_done_folder_does_not(tmp_path):
    done = tmp_path / "done"
    done.mkdir()
    with HotFolder(tmp_path, settle_s=0.1, exclude=[done]) as folder:
        (tmp_path / "line2").mkdir()
        (tmp_path / "line2" / "a.jpg").write_bytes((SAMPLES / "fabric_good.jpg").read_bytes())
        (done / "b.jpg").write_bytes((SAMPLES / "fabric_good.jpg").read_bytes())
        assert _collect(folder, 1.0) == [tmp_path / "line2" / "a.jpg"]


def test_a_folder_moved_in_whole_brings_its_images(tmp_path):
    watched, outside = tmp_path / "in", tmp_path / "outside"
    watched.mkdir()
    (outside / "batch").mkdir(parents=True)
    for name in ("x.jpg", "y.jpg"):
        (outside / "batch" / name).write_bytes((SAMPLES / "washer_scratch.jpg").read_bytes())
    with HotFolder(watched, settle_s=0.1) as folder:
        (outside / "batch").rename(watched / "batch")
        assert sorted(_collect(folder, 1.0)) == [watched / "batch" / "x.jpg", watched / "batch" / "y.jpg"]


def test_a_folder_that_is_not_there_is_one_clear_error(tmp_path):
    with pytest.raises(HotFolderError, match="does not exist"):
        HotFolder(tmp_path / "missing").start()
    (tmp_path / "file.jpg").write_bytes(b"x")
    with pytest.raises(HotFolderError, match="Not a folder"):
        HotFolder(tmp_path / "file.jpg").start()
