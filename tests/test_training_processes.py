"""`lriad train --num-processes 2`: two real CPU processes (accelerate's launcher, torchrun, gloo) train the tiny
model with trl's GRPO and a LoRA, end to end through the command line, against a real SQLite store.

The result is the one-process run's: the same events, an adapter folder of the same files and tensors, an
inactive version row with the same figures that activates and inspects. Only rank 0 touches the store (a
`sitecustomize` hook records every SQLite connection each process opens). A SIGKILL of either rank leaves the
store, the reviews and the active version as `test_training_kills.py` requires.

Measured on 2 Intel Xeon cores shared with other agents: the four tests 1.8 min at a load average of 8 (two-process
run 49 s, Cancel 25 s, each kill 17 s); 21 min at a load average of 20 (each run loads the model twice and starts
torchrun).
"""

import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from PIL import Image
from safetensors import safe_open

from lriad_desktop.core.backends.engine import Inspector, validate_adapter_folder
from lriad_desktop.core.training_runs.recovery import TRAINING_RECORD, reconcile_training
from lriad_desktop.core.store.review_store import ReviewStore
from lriad_desktop.core.training_runs.protocol import ExitCode, decode_event
from test_improve import _train_cmd, make_store

pytestmark = pytest.mark.slow

# Imported by every Python process that has this folder on its path: logs each SQLite connection with its rank.
CONNECTION_LOG_HOOK = """
import os, sqlite3
_connect = sqlite3.connect
def _logged(database, *args, **kwargs):
    with open(os.environ["LRIAD_TEST_SQLITE_LOG"], "a", encoding="utf-8") as log:
        log.write(f"{os.environ.get('RANK', '-')}\\t{database}\\n")
    return _connect(database, *args, **kwargs)
sqlite3.connect = _logged
"""


def _store_with_base(tmp_path, tiny_model_dir):
    store = make_store(tmp_path, n_flag=2, n_accept=2)
    base = store.add_model_version("lriad-tiny", str(tiny_model_dir))
    store.activate_model_version(base.id)
    db = store.path
    store.close()
    return db, base.id


def _hooked_env(tmp_path):
    hook = tmp_path / "hook"
    hook.mkdir(exist_ok=True)
    (hook / "sitecustomize.py").write_text(CONNECTION_LOG_HOOK, encoding="utf-8")
    log = tmp_path / "sqlite-connections.tsv"
    log.write_text("", encoding="utf-8")
    path = os.pathsep.join(filter(None, [str(hook), os.environ.get("PYTHONPATH", "")]))
    return {**os.environ, "PYTHONPATH": path, "LRIAD_TEST_SQLITE_LOG": str(log)}, log


def _run(cmd, env):
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    events = [decode_event(line) for line in proc.stdout.splitlines() if line.strip()]
    return proc, events


def _tensors(adapter: Path) -> dict[str, tuple]:
    with safe_open(str(adapter / "adapter_model.safetensors"), "pt") as fh:
        return {k: tuple(fh.get_tensor(k).shape) for k in fh.keys()}


def test_two_cpu_processes_train_like_one_and_only_rank_0_opens_the_store(tmp_path, tiny_model_dir):
    db, base_id = _store_with_base(tmp_path, tiny_model_dir)
    env, connections = _hooked_env(tmp_path)
    one_out, two_out = tmp_path / "adapters" / "lriad-tiny-v2", tmp_path / "adapters" / "lriad-tiny-v3"

    one, one_events = _run(_train_cmd(db, tiny_model_dir, one_out, steps=2), env)
    assert one.returncode == ExitCode.DONE, one.stderr[-3000:]
    connections.write_text("", encoding="utf-8")
    two, two_events = _run(_train_cmd(db, tiny_model_dir, two_out, steps=2) + ["--num-processes", "2"], env)
    assert two.returncode == ExitCode.DONE, two.stderr[-3000:]

    # the same protocol: the same events in the same order, no stray output from the other rank
    assert [e.kind for e in two_events] == [e.kind for e in one_events] == \
        ["data", "eval", "setup", "step", "step", "saved", "eval", "done"]
    setup_one = next(e for e in one_events if e.kind == "setup")
    setup_two = next(e for e in two_events if e.kind == "setup")
    assert (setup_one.processes, setup_two.processes) == (1, 2)
    assert setup_two.recipe == setup_one.recipe and setup_two.rows == setup_one.rows
    assert [e.max_steps for e in two_events if e.kind == "step"] == [2, 2]

    # the same adapter: the same files, configuration and tensors (names and shapes)
    assert sorted(p.name for p in two_out.iterdir()) == sorted(p.name for p in one_out.iterdir())
    assert json.loads((two_out / "adapter_config.json").read_text()) == \
        json.loads((one_out / "adapter_config.json").read_text())
    assert _tensors(two_out) == _tensors(one_out)
    assert json.loads((two_out / TRAINING_RECORD).read_text())["processes"] == 2
    validate_adapter_folder(two_out)

    # the same version row, registered by rank 0 alone: inactive, with the same figures; it activates and inspects
    with ReviewStore.open(db) as store:
        versions = {v.name: v for v in store.model_versions()}
        runs = store.training_runs()
        assert store.active_model_version().id == base_id
        one_v, two_v = versions[one_out.name], versions[two_out.name]
        assert (two_v.status, two_v.parent_id, two_v.adapter_path) == (one_v.status, base_id, str(two_out))
        assert set(two_v.metrics) == set(one_v.metrics)
        assert [r.status for r in runs] == ["done", "done"]
        store.activate_model_version(two_v.id)
        assert store.active_model_version().id == two_v.id
    image = sorted((tmp_path / "line3").glob("*.png"))[0]
    inspector = Inspector(tiny_model_dir, two_out, device="cpu", max_new_tokens=12)
    try:
        finding = inspector.inspect(Image.open(image).convert("RGB"), "metal washer", str(image))
        assert finding.image_path == str(image) and finding.model_version == inspector.model_version
    finally:
        inspector.close()

    ranks = [line.split("\t")[0] for line in connections.read_text().splitlines()]
    assert ranks and set(ranks) == {"0"}  # rank 0 opened the store (the hook works); rank 1 never did


def _workers(launcher_pid: int) -> dict[str, int]:
    """The launcher's child processes by their RANK (torchrun's agent runs inside `lriad train`)."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) != launcher_pid:
                continue
            environ = (stat.parent / "environ").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        for item in environ:
            if item.startswith(b"RANK="):
                found[item[5:].decode()] = int(stat.parent.name)
    return found


def _review_rows(db):
    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return con.execute("SELECT * FROM reviews ORDER BY id").fetchall()


@pytest.mark.parametrize("rank", ["1", "0"])
def test_a_killed_rank_leaves_the_store_and_the_active_version_consistent(tmp_path, tiny_model_dir, rank):
    db, base_id = _store_with_base(tmp_path, tiny_model_dir)
    reviews = _review_rows(db)
    adapters, temp = tmp_path / "adapters", tmp_path / "tmp"
    temp.mkdir()
    out = adapters / "lriad-tiny-v2"
    cmd = _train_cmd(db, tiny_model_dir, out, steps=40) + ["--num-processes", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env={**os.environ, "TMPDIR": str(temp)})
    lines = []
    try:
        while not any('"event": "step"' in line for line in lines):
            line = proc.stdout.readline()
            assert line, f"the run ended before its first step: {lines}"
            lines.append(line)
        workers = _workers(proc.pid)
        assert set(workers) == {"0", "1"}
        os.kill(workers[rank], signal.SIGKILL)
        rest, _ = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    kinds = [decode_event(line).kind for line in lines + rest.splitlines() if line.strip()]
    assert proc.returncode not in (None, ExitCode.DONE) and "done" not in kinds and "saved" not in kinds
    if rank == "1":  # rank 0 lived to say so and closed its run
        assert kinds[-1] in ("error", "cancelled")
    deadline = time.time() + 60  # the agent stops the other rank too; its lock goes with it
    while _workers(proc.pid) and time.time() < deadline:
        time.sleep(0.5)

    assert _review_rows(db) == reviews
    with ReviewStore.open(db) as store:
        assert store.active_model_version().id == base_id
        reconcile_training(store, [adapters], "found at the app's start")
        versions = store.model_versions()
        runs = store.training_runs()
    assert [v.name for v in versions] == ["lriad-tiny"] and not out.exists()
    assert len(runs) == 1 and runs[0].status in ({"failed", "cancelled"} if rank == "1" else {"interrupted"})
    assert sorted(p.name for p in adapters.iterdir()) == []  # no temp folder, lock file or unlisted adapter
    assert not list(temp.glob("lriad*"))


def test_cancel_stops_every_rank_after_the_same_step_and_exit_codes_are_the_main_processes(tmp_path, tiny_model_dir):
    """The app's Cancel (SIGTERM to `lriad train`) reaches both ranks through torchrun: the run ends cancelled
    (exit 3), as one process does; a run refused before training (exit 2) lets the other rank go at once."""
    db, base_id = _store_with_base(tmp_path, tiny_model_dir)
    out = tmp_path / "adapters" / "lriad-tiny-v2"
    proc = subprocess.Popen(_train_cmd(db, tiny_model_dir, out, steps=40) + ["--num-processes", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    lines = []
    try:
        while not any('"event": "step"' in line for line in lines):
            line = proc.stdout.readline()
            assert line, f"the run ended before its first step: {lines}"
            lines.append(line)
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    kinds = [decode_event(line).kind for line in lines + rest.splitlines() if line.strip()]
    assert proc.returncode == ExitCode.CANCELLED and kinds[-1] == "cancelled" and "saved" not in kinds
    with ReviewStore.open(db) as store:
        assert [r.status for r in store.training_runs()] == ["cancelled"]
        assert store.active_model_version().id == base_id and len(store.model_versions()) == 1
    assert not out.exists()

    out.mkdir(parents=True)  # an existing folder: refused by rank 0 before any training
    refused, events = _run(_train_cmd(db, tiny_model_dir, out, steps=2) + ["--num-processes", "2"], dict(os.environ))
    assert refused.returncode == ExitCode.BAD_INPUT and [e.kind for e in events] == ["error"]
    assert "already exists" in events[0].message
