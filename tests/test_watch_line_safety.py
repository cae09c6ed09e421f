"""The hot folder on the line, where nothing may be lost or done twice: a file that can't be read or is empty
gets one error line and a record (not a silent skip); findings the broker never got survive a killed watcher
and are sent at its next start; a done folder that is the watched folder or above it is refused; a second
`lriad watch` on one folder is refused by an OS lock. Each case runs `lriad watch` as a real process, on real
files, with a real mosquitto where MQTT is involved."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from lriad_desktop.core.line.journal import JOURNAL_FILE, LineJournal
from mqtt_broker import Mosquitto, Subscriber, free_port
from test_hot_folder import SAMPLES
from test_watch import _Lines

# As root, mode 000 does not stop a read: the watcher then runs without the capabilities that let root
# read any file (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH), so the permission bits hold for it as for anyone.
AS_IS: list[str] = []
if hasattr(os, "geteuid") and os.geteuid() == 0:
    AS_IS = ["setpriv", "--inh-caps=-dac_override,-dac_read_search",
             "--bounding-set=-dac_override,-dac_read_search"] if shutil.which("setpriv") else ["no-setpriv"]


def _watch(tmp_path: Path, tiny_model_dir: Path, folder: Path, *extra: str, prefix: list[str] = ()) -> subprocess.Popen:
    return subprocess.Popen(
        [*prefix, sys.executable, "-m", "lriad_desktop", "watch", str(folder), "--model", str(tiny_model_dir),
         "--max-new-tokens", "8", "--device", "cpu", "--db", str(tmp_path / "reviews.sqlite3"), "--settle", "0.2",
         *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _stop(proc: subprocess.Popen) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=60)


def test_an_unreadable_or_empty_file_gets_one_error_line_and_a_record(tmp_path, tiny_model_dir):
    if AS_IS == ["no-setpriv"]:
        pytest.skip("running as root without setpriv: mode 000 can't be made to hold for the watcher")
    watched = tmp_path / "in"
    watched.mkdir()
    shutil.copy(SAMPLES / "fabric_good.jpg", watched / "good.jpg")
    shutil.copy(SAMPLES / "washer_scratch.jpg", watched / "locked.jpg")
    (watched / "locked.jpg").chmod(0)
    (watched / "empty.png").write_bytes(b"")
    proc = _watch(tmp_path, tiny_model_dir, watched, prefix=AS_IS)
    out, err = _Lines(proc.stdout), _Lines(proc.stderr)
    try:
        assert "good.jpg" in out.next(180)
        locked = err.next(60, f"error: {watched / 'locked.jpg'}")
        empty = err.next(60, f"error: {watched / 'empty.png'}")  # after the grace an empty file gets
    finally:
        rc = _stop(proc)
    assert "can't be read (permission denied)" in locked and "empty (0 bytes)" in empty
    errors = [line for line in err.all if line.startswith("error:")]
    assert len(errors) == 2 and rc == 1  # one line each, and the exit says something failed
    assert err.all[-1] == "stopped: 1 image(s) inspected, 2 could not be"
    journal = LineJournal(tmp_path / JOURNAL_FILE)
    recorded = {Path(e.path).name: e.error for e in journal.errors()}
    journal.close()
    assert set(recorded) == {"locked.jpg", "empty.png"} and "permission denied" in recorded["locked.jpg"]


def test_findings_the_broker_never_got_survive_a_killed_watcher(tmp_path, tiny_model_dir):
    port = free_port()  # nobody listens there yet: the broker is down
    watched = tmp_path / "in"
    watched.mkdir()
    shutil.copy(SAMPLES / "washer_scratch.jpg", watched / "a.jpg")
    first = _watch(tmp_path, tiny_model_dir, watched, "--mqtt", f"127.0.0.1:{port}", "--json")
    out, err = _Lines(first.stdout), _Lines(first.stderr)
    try:
        assert "a.jpg" in out.next(180)  # inspected and recorded; its message waits for the broker
    finally:
        first.send_signal(signal.SIGKILL)  # killed with the broker down: nothing flushed, nothing said
        first.wait(timeout=30)
    (tmp_path / "broker").mkdir()
    broker = Mosquitto(tmp_path / "broker", port)
    problem = broker.start()
    if problem:
        broker.stop()
        pytest.skip(f"no MQTT broker for this test: {problem}")
    sub = Subscriber(port, "lriad/finding")
    second = _watch(tmp_path, tiny_model_dir, watched, "--mqtt", f"127.0.0.1:{port}")
    err2 = _Lines(second.stderr)
    try:
        messages = sub.take(1, timeout=120)
        err2.next(240, f"{watched / 'a.jpg'}: already inspected")  # not inspected again, and sent all the same
    finally:
        _stop(second)
        sub.close()
        broker.stop()
    assert Path(messages[0]["image"]).name == "a.jpg" and messages[0]["verdict"]
    assert any("1 finding(s) an earlier watch could not deliver are sent first" in line for line in err2.all)
    journal = LineJournal(tmp_path / JOURNAL_FILE, str(watched.resolve()))
    assert journal.unsent() == []  # acknowledged, so forgotten
    journal.close()


@pytest.mark.parametrize("where", ["itself", "above"])
def test_a_done_folder_that_is_the_watched_folder_or_above_it_is_refused(tmp_path, tiny_model_dir, where):
    watched = tmp_path / "line" / "in"
    watched.mkdir(parents=True)
    done = watched if where == "itself" else tmp_path / "line"
    proc = _watch(tmp_path, tiny_model_dir, watched, "--move-to", str(done))
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2 and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and err.startswith(f"error: --move-to {done} ")


def test_a_second_watch_on_the_same_folder_is_refused(tmp_path, tiny_model_dir):
    watched = tmp_path / "in"
    watched.mkdir()
    first = _watch(tmp_path, tiny_model_dir, watched)
    err = _Lines(first.stderr)
    try:
        err.next(180, "watching ")
        second = _watch(tmp_path, tiny_model_dir, watched)
        _out, second_err = second.communicate(timeout=120)
    finally:
        first.send_signal(signal.SIGKILL)  # the OS drops the lock of a killed watcher
        first.wait(timeout=30)
    assert second.returncode == 2
    assert second_err.strip().splitlines() == [
        "error: Another watch (lriad watch or the app's Watch Folder) is already watching "
        f"{watched.resolve()}: two would inspect and publish every image twice (stop the other one first)"]
    third = _watch(tmp_path, tiny_model_dir, watched)
    try:
        _Lines(third.stderr).next(180, "watching ")
    finally:
        _stop(third)
