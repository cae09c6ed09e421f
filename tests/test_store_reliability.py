"""The review store under races, kills, locks, damage and a full disk (real SQLite, real processes):
no raw sqlite3 error reaches a caller, two writers never collide, and no acknowledged write is lost."""

import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

from lriad_desktop.core.inspection.finding import Box, Defect, Finding, Verdict
from lriad_desktop.core.store.review import Review, ReviewHistory, ReviewKind
from lriad_desktop.core.store.review_store import ReviewStore, StoreBusy, StoreError

from full_disk import small_disk  # noqa: F401 - the fixture

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHA = "ab" * 32


def _finding():
    return Finding(Verdict.ANOMALOUS, (Defect("scratch", Box(1, 2, 30, 40)),), ("look",), "raw", "m1",
                   image_size=(64, 48))


def test_two_writers_adding_the_same_new_image_get_the_one_row(tmp_path):
    """The interleaving that raised `UNIQUE constraint failed`: writer A looks the image up (not there), the
    other writer inserts it and commits while A waits for the lock, then A goes on."""
    ReviewStore.open(tmp_path / "r.sqlite3").close()
    other = sqlite3.connect(tmp_path / "r.sqlite3", isolation_level=None, timeout=10)
    path = str((tmp_path / "a.png").resolve())
    go, waiting = threading.Event(), threading.Event()
    result = {}

    def add():  # writer A, on its own thread with its own connection (as the app's inspection worker)
        try:
            with ReviewStore.open(tmp_path / "r.sqlite3") as first:
                raw = getattr(first._db, "_connection", first._db)  # to see A's statements as SQLite runs them
                raw.set_trace_callback(lambda sql: waiting.set() if sql.startswith("BEGIN") else None)
                go.wait(30)
                result["record"] = first.add_image(path, sha256=SHA)
        except BaseException as err:  # noqa: BLE001 - reported below
            result["error"] = err

    thread = threading.Thread(target=add)
    thread.start()
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO images (sha256, path, object_name, added_at) VALUES (?, ?, 'nut', 'then')",
                  (SHA, path))
    go.set()
    assert waiting.wait(30), f"writer A never reached its write: {result}"
    other.execute("COMMIT")  # A's lookup found nothing; the row appears while A waits for the lock
    thread.join(30)
    assert "error" not in result, repr(result.get("error"))
    assert result["record"].object_name == "nut" and result["record"].added_at == "then"
    assert [r[0] for r in other.execute("SELECT count(*) FROM images")] == [1]
    other.close()


WRITER = r"""
import sys
from lriad_desktop.core.inspection.finding import Box, Defect, Finding, Verdict
from lriad_desktop.core.store.review import Review, ReviewHistory, ReviewKind
from lriad_desktop.core.store.review_store import ReviewStore

db, tag, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
store = ReviewStore.open(db)
print("open", flush=True)
for i in range(count):
    # as the app writes: the image (the same paths in every writer), its inspection, then the review
    image = store.add_image(f"/line/{i % 40:03d}.png", "washer", sha256=f"{i % 40:064x}")
    finding = Finding(Verdict.ANOMALOUS, (Defect("scratch", Box(i, 1, i + 9, 9)),), ("s",), "raw", "m",
                      image_size=(64, 48))
    inspection = store.record_inspection(image.id, finding)
    review = store.save_review(image.id, Review(ReviewKind.FLAG, Verdict.ANOMALOUS, finding.defects,
                                                f"{tag}:{i}", inspection.id), reviewer=tag)
    print("saved", review.id, image.id, f"{tag}:{i}", flush=True)
"""


def _writer(db, tag, count=400):
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(db), tag, str(count)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": REPO})
    assert proc.stdout.readline().strip() == "open", proc.stderr.read()
    return proc


def _read_acks(proc, until):
    """Read `saved` lines until `until` of them came (or the writer ended); returns them."""
    acks = []
    while len(acks) < until:
        line = proc.stdout.readline()
        if not line:
            break
        _, review_id, image_id, note = line.split()
        acks.append((int(review_id), int(image_id), note))
    return acks


def test_writers_killed_twenty_times_lose_no_acknowledged_review(tmp_path):
    """Two writers commit as the app does into one store, adding the same images; one of them is SIGKILLed at a
    random moment twenty times over. Every review a writer reported as saved is there, intact."""
    db = tmp_path / "reviews.sqlite3"
    ReviewStore.open(db).close()
    rng = random.Random(18)
    acknowledged = []
    steady = _writer(db, "steady", count=100_000)
    for kill in range(20):
        victim = _writer(db, f"victim{kill}")
        acknowledged += _read_acks(victim, rng.randint(1, 12))
        if rng.random() < 0.5:
            time.sleep(rng.random() * 0.01)  # sometimes mid-transaction rather than just after a commit
        assert victim.poll() is None, f"writer {kill} died on its own: {victim.communicate()[1]}"
        os.kill(victim.pid, signal.SIGKILL)
        victim.communicate(timeout=30)
        acknowledged += _read_acks(steady, 3)  # the other writer goes on through every kill
        assert steady.poll() is None, f"the steady writer died: {steady.communicate()[1]}"
    steady.kill()
    steady.communicate(timeout=30)
    with ReviewStore.open(db) as store:
        assert store._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        for review_id, image_id, note in acknowledged:
            (record,) = [r for r in store.review_history(image_id) if r.id == review_id]
            assert record.review.note == note and record.review.defects[0].label == "scratch"
        images = store._db.execute("SELECT count(*), count(DISTINCT path) FROM images").fetchone()
        assert images[0] == images[1] <= 40  # one row per image, however many writers added it
    assert len(acknowledged) >= 20 + 60


def test_a_store_held_by_another_program_is_store_busy_not_a_raw_error(tmp_path):
    db = tmp_path / "r.sqlite3"
    store = ReviewStore.open(db)
    image = store.add_image(tmp_path / "a.png", sha256=SHA)
    history = ReviewHistory(store)
    history.apply(image.id, Review(ReviewKind.FLAG, Verdict.ANOMALOUS), "Flag")
    holder = subprocess.Popen([sys.executable, "-c", "import sqlite3, sys\n"
                               f"db = sqlite3.connect({str(db)!r}, isolation_level=None)\n"
                               "db.execute('BEGIN IMMEDIATE')\nprint('held', flush=True)\nsys.stdin.readline()\n"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        store.set_busy_timeout(0.05)
        with pytest.raises(StoreBusy, match=f"The review store {db} is busy"):
            store.save_review(image.id, Review(ReviewKind.FLAG, Verdict.NORMAL))
        with pytest.raises(StoreBusy):
            history.undo()
        assert history.can_undo and store.counts().reviews == 1  # the edit is still there to undo
        assert store.counts().images == 1  # reading is never blocked by a writer (WAL)
    finally:
        holder.communicate("go\n", timeout=30)
    assert history.undo().text == "Flag" and store.counts().reviews == 0  # free again
    store.save_review(image.id, Review(ReviewKind.FLAG, Verdict.NORMAL))
    assert store.counts().reviews == 1
    store.close()


def test_a_damaged_store_is_a_store_error_on_every_call(tmp_path):
    db = tmp_path / "r.sqlite3"
    store = ReviewStore.open(db)
    for i in range(60):
        image = store.add_image(tmp_path / f"{i}.png", "nut", sha256=f"{i:064x}")
        store.record_inspection(image.id, _finding())
    store._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    with open(db, "r+b") as fh:  # overwrite every page but the header with garbage
        fh.seek(4096)
        fh.write(os.urandom(os.path.getsize(db) - 4096))
    calls = [lambda s: s.counts(), lambda s: s.reviewed_states(), lambda s: s.known_labels(),
             lambda s: s.lookup_paths([str(tmp_path / "3.png")]), lambda s: s.model_versions(),
             lambda s: s.add_image(tmp_path / "new.png", sha256=SHA),
             lambda s: s.save_review(1, Review(ReviewKind.FLAG, Verdict.NORMAL))]
    try:
        store = ReviewStore.open(db)
    except StoreError:
        return  # refused at the door: fine, it is one clear line too
    for call in calls:
        with pytest.raises(StoreError):
            call(store)
    store.close()


def test_a_full_disk_is_one_line_and_keeps_every_earlier_review(small_disk):
    db = small_disk.root / "reviews.sqlite3"
    store = ReviewStore.open(db)
    image = store.add_image(small_disk.root / "a.png", sha256=SHA)
    kept = store.save_review(image.id, Review(ReviewKind.FLAG, Verdict.NORMAL, note="kept"))
    small_disk.fill()
    with pytest.raises(StoreError, match=f"Not enough disk space to write the review store {db}"):
        for i in range(200):  # the WAL has some room left in its pages: write until it has none
            store.save_review(image.id, Review(ReviewKind.FLAG, Verdict.NORMAL, note="x" * 2000 + str(i)))
    store.close()
    small_disk.empty()
    with ReviewStore.open(db) as store:
        assert store.review_history(image.id)[0] == kept
        assert store._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
