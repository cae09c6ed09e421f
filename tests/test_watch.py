"""Watching a folder on the line: a real model, a real store, real files landing; `lriad watch` in a subprocess
publishing to a real mosquitto."""

from __future__ import annotations

import json
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from lriad_desktop.core.store.review_store import ReviewStore
from lriad_desktop.core.line.watch import FolderWatch, WatchedImage, move_into
from mqtt_broker import Subscriber, start_broker
from test_hot_folder import SAMPLES, _slow_copy


def _watch_until(watch: FolderWatch, n: int, timeout: float = 60.0) -> tuple[list[WatchedImage], list[str]]:
    seen: list[WatchedImage] = []
    notes: list[str] = []
    deadline = time.monotonic() + timeout
    watch.run(seen.append, notes.append, should_stop=lambda: len(seen) >= n or time.monotonic() > deadline,
              poll_s=0.1)
    assert len(seen) == n, (seen, notes)
    return seen, notes


def test_each_image_is_inspected_once_across_restarts(tmp_path, inspector):
    watched, db = tmp_path / "washer", tmp_path / "reviews.sqlite3"
    watched.mkdir()
    for name in ("washer_scratch.jpg", "bottle_good.jpg"):
        shutil.copy(SAMPLES / name, watched / name)
    (watched / "notes.png").write_text("not an image")

    seen, notes = _watch_until(FolderWatch(inspector, db, watched, settle_s=0.1), 3)
    assert any(line.startswith("watching ") for line in notes)
    by_name = {Path(w.path).name: w for w in seen}
    assert by_name["notes.png"].finding is None and "not an image" in by_name["notes.png"].error
    for name in ("washer_scratch.jpg", "bottle_good.jpg"):
        assert by_name[name].finding is not None and by_name[name].inspection_id is not None
    assert by_name["washer_scratch.jpg"].finding.object_name == "washer"  # guessed from the folder

    # while nothing watched, one more lands; the next start takes it and only it
    shutil.copy(SAMPLES / "metal_hole.jpg", watched / "metal_hole.jpg")
    seen, _ = _watch_until(FolderWatch(inspector, db, watched, settle_s=0.1, object_name="metal plate"), 4)
    again = {Path(w.path).name: w for w in seen}
    assert again["washer_scratch.jpg"].skipped == "already inspected"
    assert again["bottle_good.jpg"].skipped == "already inspected"
    assert again["metal_hole.jpg"].finding.object_name == "metal plate"
    assert again["notes.png"].error  # a file that can't be read is tried again (it may have been fixed)
    with ReviewStore.open(db) as store:
        states = store.lookup_paths([str(watched / n) for n in ("washer_scratch.jpg", "bottle_good.jpg",
                                                                 "metal_hole.jpg")])
        assert all(s.finding is not None for s in states.values()) and len(states) == 3
    import sqlite3

    with sqlite3.connect(db) as raw:
        assert raw.execute("SELECT count(*) FROM inspections").fetchone()[0] == 3  # none twice


def test_inspected_images_move_to_the_done_folder_and_the_store_follows(tmp_path, inspector):
    watched, done, db = tmp_path / "in", tmp_path / "in" / "done", tmp_path / "reviews.sqlite3"
    (watched / "line2").mkdir(parents=True)
    shutil.copy(SAMPLES / "washer_scratch.jpg", watched / "line2" / "w.jpg")
    # inspected by an earlier run that stopped before moving it
    _watch_until(FolderWatch(inspector, db, watched, settle_s=0.1), 1)
    done.mkdir()
    shutil.copy(SAMPLES / "washer_scratch.jpg", done / "x.jpg")  # the done folder is not watched
    shutil.copy(SAMPLES / "fabric_good.jpg", watched / "x.jpg")

    seen, _ = _watch_until(FolderWatch(inspector, db, watched, settle_s=0.1, move_to=done), 2)
    by_name = {Path(w.path).name: w for w in seen}
    assert by_name["w.jpg"].skipped == "already inspected" and by_name["w.jpg"].moved_to == str(done / "line2" / "w.jpg")
    assert by_name["x.jpg"].finding is not None and by_name["x.jpg"].moved_to == str(done / "x-1.jpg")  # no overwrite
    assert not (watched / "x.jpg").exists() and (done / "x.jpg").read_bytes() == (SAMPLES / "washer_scratch.jpg").read_bytes()
    with ReviewStore.open(db) as store:
        moved = store.lookup_paths([str(done / "line2" / "w.jpg"), str(done / "x-1.jpg")])
        assert len(moved) == 2 and all(s.finding is not None for s in moved.values())
        assert store.lookup_paths([str(watched / "line2" / "w.jpg")]) == {}


def test_move_into_keeps_sub_folders_and_never_overwrites(tmp_path):
    src = tmp_path / "in" / "a" / "f.png"
    src.parent.mkdir(parents=True)
    src.write_bytes(b"1")
    (tmp_path / "done" / "a").mkdir(parents=True)
    (tmp_path / "done" / "a" / "f.png").write_bytes(b"0")
    assert move_into(src, tmp_path / "in", tmp_path / "done") == tmp_path / "done" / "a" / "f-1.png"
    assert (tmp_path / "done" / "a" / "f.png").read_bytes() == b"0"


class _Lines:
    """A process's output lines, read on a thread so the test can wait for them with a timeout."""

    def __init__(self, stream) -> None:  # noqa: ANN001 - a text stream
        self.lines: queue.SimpleQueue[str] = queue.SimpleQueue()
        self.all: list[str] = []
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream) -> None:  # noqa: ANN001
        for line in stream:
            self.all.append(line.rstrip("\n"))
            self.lines.put(line.rstrip("\n"))

    def next(self, timeout: float, startswith: str = "") -> str:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no line{' ' + startswith if startswith else ''} within {timeout:.0f} s")
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if line.startswith(startswith):
                return line

    def none_within(self, seconds: float) -> bool:
        try:
            self.lines.get(timeout=seconds)
        except queue.Empty:
            return True
        return False


def test_lriad_watch_publishes_each_finding_over_mqtt(tmp_path, tiny_model_dir):
    """The issue's done-when: three images moved in one by one give three findings on stdout and three MQTT
    messages; a file copied in slowly is inspected once, after it is complete."""
    broker = start_broker(tmp_path)
    sub = Subscriber(broker.port, "lriad/x/finding")
    watched, outside, done = tmp_path / "in", tmp_path / "camera", tmp_path / "done"
    watched.mkdir()
    outside.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "lriad_desktop", "watch", str(watched), "--json", "--mqtt", broker.address,
         "--topic", "lriad/x", "--model", str(tiny_model_dir), "--max-new-tokens", "8", "--device", "cpu",
         "--db", str(tmp_path / "reviews.sqlite3"), "--move-to", str(done), "--settle", "0.3"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = _Lines(proc.stdout), _Lines(proc.stderr)
    try:
        err.next(120, "watching ")
        findings = []
        for name in ("washer_scratch.jpg", "bottle_good.jpg", "pcb_missing_part.jpg"):
            shutil.copy(SAMPLES / name, outside / name)
            (outside / name).rename(watched / name)  # moved in, as a camera's software does
            findings.append(json.loads(out.next(60)))
        assert [Path(f["image_path"]).name for f in findings] == ["washer_scratch.jpg", "bottle_good.jpg",
                                                                 "pcb_missing_part.jpg"]
        assert all(f["verdict"] in ("normal", "anomalous", "unparsed") for f in findings)
        assert [f["moved_to"] for f in findings] == [str(done / f) for f in ("washer_scratch.jpg", "bottle_good.jpg",
                                                                             "pcb_missing_part.jpg")]
        messages = sub.take(3, timeout=30)
        assert [Path(m["image"]).name for m in messages] == ["washer_scratch.jpg", "bottle_good.jpg",
                                                            "pcb_missing_part.jpg"]
        assert [m["verdict"] for m in messages] == [f["verdict"] for f in findings]
        assert all(m["model_version"] == findings[0]["model_version"] and m["time"] for m in messages)

        copier = threading.Thread(target=_slow_copy, args=(SAMPLES / "metal_hole.jpg", watched / "slow.jpg", 5, 0.4))
        copier.start()
        copier.join()
        slow = json.loads(out.next(60))
        assert Path(slow["image_path"]).name == "slow.jpg" and (done / "slow.jpg").read_bytes() == \
            (SAMPLES / "metal_hole.jpg").read_bytes()
        assert Path(sub.take(1, timeout=30)[0]["image"]).name == "slow.jpg"
        assert out.none_within(2.0)  # once, not again as it grew
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=30)
        sub.close()
        broker.stop()
    time.sleep(0.2)
    assert rc == 0, err.all
    assert any("MQTT: connected to" in line for line in err.all), err.all
    assert err.all[-1] == "stopped: 4 image(s) inspected, 0 could not be"
    assert not any("Traceback" in line for line in err.all)


def test_lriad_watch_bad_arguments_are_one_line(tmp_path, tiny_model_dir):
    def run(*args):
        return subprocess.run([sys.executable, "-m", "lriad_desktop", "watch", *map(str, args), "--model",
                               str(tiny_model_dir), "--db", str(tmp_path / "r.sqlite3")], capture_output=True,
                              text=True, timeout=120)

    res = run(tmp_path / "missing")
    assert res.returncode == 2 and res.stderr.strip().startswith("error: The folder to watch does not exist")
    res = run(tmp_path, "--mqtt", "host:port")
    assert res.returncode == 2 and "the port must be a number" in res.stderr and "Traceback" not in res.stderr


def test_a_broker_that_is_down_does_not_stop_the_watch(tmp_path, tiny_model_dir):
    """Ctrl+C (SIGINT) stops it; what the broker never got is counted."""
    from mqtt_broker import free_port

    watched = tmp_path / "in"
    watched.mkdir()
    shutil.copy(SAMPLES / "fabric_good.jpg", watched / "a.jpg")
    proc = subprocess.Popen(
        [sys.executable, "-m", "lriad_desktop", "watch", str(watched), "--mqtt", f"127.0.0.1:{free_port()}",
         "--model", str(tiny_model_dir), "--max-new-tokens", "8", "--device", "cpu",
         "--db", str(tmp_path / "reviews.sqlite3"), "--settle", "0.2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = _Lines(proc.stdout), _Lines(proc.stderr)
    try:
        assert "a.jpg" in out.next(120)  # the table line
        err.next(30, "MQTT: the broker at")
    finally:
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(timeout=30)
    time.sleep(0.2)
    assert rc == 0, err.all
    assert any("1 finding(s) were not delivered" in line for line in err.all), err.all
