"""`lriad train` (a real tiny model, trl's GRPO trainer, a real SQLite store) killed with SIGKILL at 10 moments,
from before its first event to between the "after" evaluation and the end: every time the store is intact, the
active model is the one it was, no review is lost, and once the app's start has reconciled, nothing is left behind:
no `running` row, no hidden temp folder or lock file, no adapter folder that no version lists."""

import os
import random
import signal
import sqlite3
import subprocess
import time

import pytest

from lriad_desktop.core.backends.engine import validate_adapter_folder
from lriad_desktop.core.training_runs.recovery import reconcile_training
from lriad_desktop.core.store.review_store import ReviewStore
from test_improve import _train_cmd, make_store

pytestmark = pytest.mark.slow

# (the event the kill waits for, how many of them, the most seconds it then waits at random)
MOMENTS = [("", 0, 1.5), ("data", 1, 3.0), ("eval", 1, 0.0), ("setup", 1, 2.0), ("step", 1, 0.0),
           ("step", 1, 4.0), ("step", 2, 0.05), ("saved", 1, 0.0), ("saved", 1, 2.0), ("eval", 2, 0.0)]


def _kill_at(cmd, env, event, nth, wait_s):
    """Start a run, SIGKILL it `wait_s` after its `nth` `event` line (or after its start); the events it printed."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    seen, lines = 0, []
    try:
        while event and seen < nth:
            line = proc.stdout.readline()
            if not line:
                raise AssertionError(f"the run ended before its {event} event: {lines}")
            lines.append(line)
            seen += f'"event": "{event}"' in line
        time.sleep(wait_s)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=60)
    return [line.split('"event": "')[1].split('"')[0] for line in lines]


def _review_rows(db):
    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return con.execute("SELECT * FROM reviews ORDER BY id").fetchall()


def test_a_trainer_killed_at_10_moments_leaves_the_store_and_the_active_model_consistent(tmp_path, tiny_model_dir):
    store = make_store(tmp_path, n_flag=2, n_accept=2)
    base = store.add_model_version("lriad-tiny", str(tiny_model_dir))
    store.activate_model_version(base.id)
    db = store.path
    store.close()
    reviews = _review_rows(db)
    adapters, temp = tmp_path / "adapters", tmp_path / "tmp"
    temp.mkdir()
    env = {**os.environ, "TMPDIR": str(temp)}
    rng = random.Random(18)
    outcomes = []
    for i, (event, nth, most) in enumerate(MOMENTS):
        out = adapters / f"lriad-tiny-v{i + 2}"
        printed = _kill_at(_train_cmd(db, tiny_model_dir, out, steps=2), env, event, nth, rng.uniform(0, most))
        left = sorted(p.name for p in adapters.iterdir()) if adapters.is_dir() else []
        assert _review_rows(db) == reviews  # nothing lost, the file intact
        with ReviewStore.open(db) as store:
            assert store.active_model_version().id == base.id
            registered_before = out.name in {v.name for v in store.model_versions()}
            found = reconcile_training(store, [adapters], "found at the app's start")
            versions = store.model_versions()
            runs = store.training_runs()
        assert not [r for r in runs if r.status == "running"]
        names = [v.name for v in versions]
        assert len(names) == len(set(names))  # a version is registered once
        for v in versions[1:]:
            validate_adapter_folder(v.adapter_path)  # every listed version is usable
        on_disk = sorted(p.name for p in adapters.iterdir()) if adapters.is_dir() else []
        assert on_disk == sorted(names[1:])  # no temp folder, lock file or unlisted adapter
        assert not list(temp.glob("lriad*"))  # no work folder in the system temp folder either
        outcomes.append((f"{event or 'start'}#{nth}", printed[-1] if printed else "-", left,
                         "registered" if registered_before else "recovered" if found.recovered else "none"))
    for outcome in outcomes:
        print(*outcome)
    assert {o[3] for o in outcomes} >= {"none", "registered"}  # kills before and after the version was listed
