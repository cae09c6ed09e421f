"""Reconciling training runs with the disk (real SQLite, real adapter folders, real OS locks): stale runs,
orphan adapters, temp folders; anything a live run holds is left alone; an adapter save on a full disk."""

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from lriad_desktop.core.atomic_files import FileWriteError
from lriad_desktop.core.file_locks import RunLock, lock_path
from lriad_desktop.core.training_runs.recovery import reconcile_training, temp_prefix
from lriad_desktop.core.store.review_store import ReviewStore

from full_disk import small_disk  # noqa: F401 - the fixture

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def saved_adapter(tiny_model_dir, tmp_path_factory):
    """A LoRA adapter of the tiny model saved as the app saves one (with its training record)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForImageTextToText

    from training.recipes.grpo import write_adapter_atomically

    model = get_peft_model(AutoModelForImageTextToText.from_pretrained(tiny_model_dir),
                           LoraConfig(r=2, target_modules=["q_proj"]))
    out = tmp_path_factory.mktemp("adapter") / "made"
    write_adapter_atomically(model, out, {"steps": 2, "minutes": 0.1, "base": str(tiny_model_dir)})
    return out


def _children(folder):
    return sorted(p.name for p in folder.iterdir())


def test_stale_runs_become_interrupted_and_a_live_run_is_left_alone(tmp_path):
    store = ReviewStore.open(tmp_path / "r.sqlite3")
    adapters = tmp_path / "adapters"
    dead = store.add_training_run(None, 3, {"out": str(adapters / "v1")})
    live = store.add_training_run(None, 3, {"out": str(adapters / "v2")})
    legacy = store.add_training_run(None, 3, {"lr": 1e-5})  # a row from before runs recorded their folder
    gone = store.add_training_run(None, 3, {"out": str(tmp_path / "unplugged" / "v9")})  # its folder is gone
    done = store.add_training_run(None, 3, {"out": str(adapters / "v0")})
    store.finish_training_run(done.id, "done")
    holder = RunLock(adapters / "v2")
    assert holder.acquire() and not RunLock(adapters / "v2").acquire()  # exclusive, even in one process
    assert not RunLock(adapters / "v2").acquire(wait_s=0.2)  # still held after a wait
    found = reconcile_training(store, [adapters], "found at the app's start")
    runs = {r.id: r for r in store.training_runs()}
    assert found.interrupted == (dead.id, legacy.id, gone.id)
    assert runs[dead.id].status == runs[legacy.id].status == runs[gone.id].status == "interrupted"
    assert not (tmp_path / "unplugged").exists()  # reconciling never creates a run's folder
    assert "ended without finishing" in runs[dead.id].metrics["reason"] and runs[dead.id].finished_at
    assert "at the app's start" in runs[dead.id].metrics["reason"]
    assert runs[live.id].status == "running" and runs[done.id].status == "done"
    holder.release()
    assert not lock_path(adapters / "v2").exists()
    assert reconcile_training(store, [adapters]).interrupted == (live.id,)  # its process is gone now
    assert reconcile_training(store, [adapters]).summary() == ""  # nothing left to put right
    store.close()


def test_orphan_adapters_are_recovered_or_removed_and_temp_folders_go(tmp_path, saved_adapter):
    from lriad_desktop.core.store.adapter_versions import ModelVersion

    store = ReviewStore.open(tmp_path / "r.sqlite3")
    base = store.add_model_version("lriad-tiny", "/models/lriad-tiny")
    adapters = tmp_path / "adapters"
    adapters.mkdir()
    run = store.add_training_run(base.id, 7, {"out": str(adapters / "lriad-tiny-v2")})
    shutil.copytree(saved_adapter, adapters / "lriad-tiny-v2")  # saved, then killed before it was registered
    half = store.add_training_run(base.id, 7, {"out": str(adapters / "lriad-tiny-v3")})
    for name in ("lriad-tiny-v3", "from-another-store"):  # damaged after the save: never usable
        shutil.copytree(saved_adapter, adapters / name)
        weights = adapters / name / "adapter_model.safetensors"
        os.truncate(weights, weights.stat().st_size // 2)
    shutil.copytree(saved_adapter, adapters / "registered")
    os.truncate(adapters / "registered" / "adapter_model.safetensors", 100)
    store.add_model_version("registered", "/models/lriad-tiny", str(adapters / "registered"))
    shutil.copytree(saved_adapter, adapters / "mine", ignore=shutil.ignore_patterns("lriad_training.json"))
    (adapters / (temp_prefix(adapters / "lriad-tiny-v4", "save-") + "k2j4")).mkdir()  # killed mid-save
    (adapters / (temp_prefix(adapters / "lriad-tiny-v4", "work-") + "x8")).mkdir()
    legacy = adapters / ".lriad-tiny-v5.ab12cd34"  # an older version's temp folder, half written
    legacy.mkdir()
    (legacy / "adapter_config.json").write_text("{}")
    (adapters / ".hidden.notours").mkdir()  # not a run's: left alone
    lock_path(adapters / "lriad-tiny-v4").write_text("")  # the dead run's lock file
    live = RunLock(adapters / "lriad-tiny-v6")
    assert live.acquire()
    busy_temp = adapters / (temp_prefix(adapters / "lriad-tiny-v6", "save-") + "zz")
    busy_temp.mkdir()
    found = reconcile_training(store, [adapters], "found at the app's start")
    assert found.recovered == (str(adapters / "lriad-tiny-v2"),) and found.interrupted == (run.id, half.id)
    assert _children(adapters) == [".hidden.notours", ".lriad-tiny-v6.lock", busy_temp.name, "from-another-store",
                                   "lriad-tiny-v2", "mine", "registered"]
    assert len(found.removed) == 4 and "recovered adapter lriad-tiny-v2" in found.summary()
    versions = store.model_versions()
    recovered: ModelVersion = versions[-1]
    assert [v.name for v in versions] == ["lriad-tiny", "registered", "lriad-tiny-v2"]
    assert recovered.recovered and not recovered.active and recovered.adapter_path == str(adapters / "lriad-tiny-v2")
    assert recovered.parent_id == base.id and recovered.data_revision == 7 and recovered.metrics["steps"] == 2
    assert recovered.base_path == json.loads((saved_adapter / "lriad_training.json").read_text())["base"]
    interrupted, _ = store.training_runs()
    assert interrupted.status == "interrupted" and interrupted.result_version_id == recovered.id
    assert "listed as an inactive version" in interrupted.metrics["reason"]
    live.release()
    again = reconcile_training(store, [adapters])
    assert again.removed == (str(busy_temp),) and not again.recovered  # registered once, never twice
    store.close()


def test_old_style_work_folders_in_the_temp_folder_go_once_a_day_old(tmp_path):
    store = ReviewStore.open(tmp_path / "r.sqlite3")
    temp = tmp_path / "tmp"
    old, fresh, other = temp / "lriad-grpo-a1", temp / "lriad-grpo-b2", temp / "someone-else"
    for folder in (old, fresh, other):
        folder.mkdir(parents=True)
    two_days_ago = time.time() - 2 * 86400
    os.utime(old, (two_days_ago, two_days_ago))
    os.utime(other, (two_days_ago, two_days_ago))
    assert reconcile_training(store, [], temp_root=temp).removed == (str(old),)
    assert _children(temp) == ["lriad-grpo-b2", "someone-else"]
    store.close()


def test_a_lock_held_by_a_process_that_was_killed_is_free(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", "import sys\nfrom lriad_desktop.core.file_locks import RunLock\n"
                               f"assert RunLock({str(tmp_path / 'v1')!r}).acquire()\nprint('held', flush=True)\n"
                               "sys.stdin.readline()\n"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": REPO})
    assert holder.stdout.readline().strip() == "held"
    assert not RunLock(tmp_path / "v1").acquire()
    holder.kill()
    holder.communicate(timeout=30)
    lock = RunLock(tmp_path / "v1")
    assert lock.acquire()  # the OS dropped the dead process's lock; its file is still there
    lock.release()


def test_an_adapter_save_on_a_full_disk_is_not_enough_disk_space_and_leaves_nothing(small_disk, saved_adapter,
                                                                                    tiny_model_dir):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForImageTextToText

    from training.recipes.grpo import write_adapter_atomically

    model = get_peft_model(AutoModelForImageTextToText.from_pretrained(tiny_model_dir),
                           LoraConfig(r=8, target_modules=["q_proj", "v_proj", "o_proj"]))
    out = small_disk.root / "adapters" / "v2"
    out.parent.mkdir()
    small_disk.fill(leave=12 * 1024)  # room for the small files, not for the weights
    with pytest.raises(FileWriteError) as failed:
        write_adapter_atomically(model, out, {"steps": 1})
    assert str(failed.value) == f"Not enough disk space to save the adapter in {out}"
    assert _children(out.parent) == []


def test_a_training_run_reconciles_its_folder_first_and_refuses_a_folder_a_live_run_writes(tmp_path, saved_adapter,
                                                                                          tiny_model_dir, capsys):
    from lriad_desktop.core.training_runs.protocol import ExitCode, RunFailed
    from training.recipes.improve import improve

    db = tmp_path / "r.sqlite3"
    adapters = tmp_path / "adapters"
    with ReviewStore.open(db) as store:
        stale = store.add_training_run(None, 1, {"out": str(adapters / "v2")})
        shutil.copytree(saved_adapter, adapters / "v2")  # killed after saving, before registering
        (adapters / (temp_prefix(adapters / "v2", "work-") + "q1")).mkdir()
    events = []
    assert improve(db, tiny_model_dir, adapters / "v3", emit=events.append) == ExitCode.BAD_INPUT  # no flags yet
    assert "before this run: 1 interrupted training run closed; recovered adapter v2" in capsys.readouterr().err
    with ReviewStore.open(db) as store:
        (version,) = store.model_versions()
        (run,) = store.training_runs()
    assert version.recovered and run.id == stale.id and run.status == "interrupted"
    assert "found when the next training run started" in run.metrics["reason"]
    assert _children(adapters) == ["v2"]
    live = RunLock(adapters / "v3")
    assert live.acquire()
    assert improve(db, tiny_model_dir, adapters / "v3", emit=events.append) == ExitCode.BAD_INPUT
    assert events[-1] == RunFailed(f"Another training run is writing {adapters / 'v3'}; choose a new adapter folder")
    live.release()


@pytest.mark.slow
def test_a_run_that_fills_the_disk_saving_its_adapter_is_one_line_and_keeps_the_active_model(tmp_path, small_disk,
                                                                                            tiny_model_dir):
    from lriad_desktop.core.training_runs.protocol import ExitCode, RunFailed
    from test_improve import RECIPE, make_store
    from training.recipes.improve import improve

    store = make_store(tmp_path, n_flag=2, n_accept=2)
    base = store.add_model_version("lriad-tiny", str(tiny_model_dir))
    store.activate_model_version(base.id)
    db = store.path
    store.close()
    out = small_disk.root / "adapters" / "v2"
    out.parent.mkdir()
    small_disk.fill(leave=12 * 1024)  # the adapters' drive is full: the save is the first write that needs room
    events = []
    assert improve(db, tiny_model_dir, out, recipe=RECIPE, emit=events.append) == ExitCode.FAILED
    assert events[-1] == RunFailed(f"Not enough disk space to save the adapter in {out}")
    assert [e.kind for e in events].count("error") == 1
    with ReviewStore.open(db) as store:
        assert store.active_model_version().id == base.id and len(store.model_versions()) == 1
        (run,) = store.training_runs()
    assert run.status == "failed" and run.metrics["error"] == events[-1].message
    assert _children(out.parent) == []  # no half-saved adapter, work folder or lock file
